"""Departure handover pages: the manager's plan, the leaving rep's tasks, the successor's
acceptance list. Thin: authorise through a selector, bind a form, call one service, turn
domain errors into messages, redirect after POST."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from crm.errors import DomainError
from crm.models import Customer, Role, User
from crm.selectors import customer_contacts
from handover import selectors, services
from handover.forms import (
    PER_CUSTOMER_LIMIT,
    AcceptForm,
    ConfirmForm,
    DepartureForm,
    DoneForm,
    LeaverChoiceForm,
    ReassignForm,
    RefuseForm,
    SendBackForm,
)
from handover.models import OPEN_STATES, DepartureState, HandoverTask, TaskState

PAGE_SIZE = 25


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _form_errors(request: HttpRequest, form: Any) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


# --- the manager ---------------------------------------------------------------------------


def departure_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not (user.is_manager or user.is_crm_admin):
        # Reps work from their own lists: the customers handed to them, their own tasks.
        return redirect("handover_incoming")
    page = Paginator(selectors.departure_list(user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "handover/departure_list.html", {"page": page})


def departure_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not (user.is_manager or user.is_crm_admin):
        raise Http404
    reps = selectors.leavable_reps(user)
    source = request.POST if request.method == "POST" else request.GET
    chooser = LeaverChoiceForm(source if "leaver" in source else None, reps=reps)
    if not chooser.is_bound or not chooser.is_valid():
        return render(request, "handover/departure_new.html", {"chooser": chooser})
    leaver: User = chooser.cleaned_data["leaver"]
    now = timezone.now()
    candidates = selectors.successor_candidates(user, leaver)
    suggestions = selectors.successor_suggestions(leaver, candidates, now)
    customers = list(
        Customer.objects.filter(owner=leaver, merged_into__isnull=True)
        .only("id", "display_name", "stage", "value_tier")
        .order_by("-stage", "display_name", "id")
    )
    per_customer = customers if len(customers) <= PER_CUSTOMER_LIMIT else []
    form = DepartureForm(
        request.POST if request.method == "POST" else None,
        suggestions=suggestions,
        customers=per_customer,
    )
    context: dict[str, Any] = {
        "chooser": chooser,
        "leaver": leaver,
        "form": form,
        "suggestions": suggestions,
        "customer_count": len(customers),
        "stage_counts": _stage_counts(customers),
        "per_customer_limit": PER_CUSTOMER_LIMIT,
    }
    if request.method != "POST" or not form.is_valid():
        return render(request, "handover/departure_new.html", context)
    try:
        departure = services.departure_record(
            actor=user,
            leaver=leaver,
            last_day=form.cleaned_data["last_day"],
            reason=form.cleaned_data["reason"],
            successor=form.chosen_successor(),
            per_customer=form.per_customer(),
            auto_distribute=form.cleaned_data["mode"] == DepartureForm.MODE_AUTO,
            now=now,
        )
    except services.DepartureInvalid as error:
        for field, message in error.errors.items():
            form.add_error(field if field in form.fields else None, message)
        return render(request, "handover/departure_new.html", context)
    except DomainError as error:
        messages.error(request, error.message)
        return render(request, "handover/departure_new.html", context)
    messages.success(
        request,
        _("Departure of %(name)s recorded: %(count)d customers planned.")
        % {"name": leaver, "count": len(customers)},
    )
    return redirect("handover_departure_detail", pk=departure.pk)


def _stage_counts(customers: list[Customer]) -> list[tuple[int, str, int]]:
    from crm.models import FunnelStage

    counts = dict.fromkeys(FunnelStage.values, 0)
    for customer in customers:
        counts[customer.stage] += 1
    return [(stage, str(FunnelStage(stage).label), counts[stage]) for stage in FunnelStage.values]


def departure_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    departure = selectors.departure_for(user, pk)
    today = timezone.localdate()
    filterset, queryset, sort = selectors.departure_tasks(departure, request.GET)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    filters: dict[str, str] = {
        k: str(v) for k, v in request.GET.items() if k in filterset.form.fields and v
    }
    query = urlencode({**filters, "sort": sort})
    progress = selectors.departure_progress(departure, today)
    return render(
        request,
        "handover/departure_detail.html",
        {
            "departure": departure,
            "progress": progress,
            "stage_rows": _stage_rows(progress),
            "overdue": list(selectors.overdue_tasks(departure, today)[:10]),
            "filterset": filterset,
            "page": page,
            "query": query,
            "filter_query": urlencode(filters),
            "sort": sort,
            "today": today,
            "reassign_form": ReassignForm(
                candidates=selectors.successor_candidates(user, departure.leaver)
            ),
            "open_states": OPEN_STATES,
        },
    )


def _stage_rows(progress: selectors.Progress) -> list[dict[str, Any]]:
    from crm.models import FunnelStage

    rows = []
    for stage in FunnelStage.values:
        counts = progress.by_stage[stage]
        rows.append({"stage": stage, "label": FunnelStage(stage).label, **counts})
    return rows


@require_POST
def departure_reassign(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    departure = selectors.departure_for(user, pk)
    form = ReassignForm(
        request.POST, candidates=selectors.successor_candidates(user, departure.leaver)
    )
    back = reverse("handover_departure_detail", args=[departure.pk])
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(back)
    try:
        created = services.tasks_reassign(
            actor=user,
            departure=departure,
            task_ids=form.cleaned_data["tasks"],
            successor=form.cleaned_data["successor"],
        )
    except services.DepartureInvalid as error:
        for message in error.errors.values():
            messages.error(request, message)
        return redirect(back)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(back)
    except HandoverTask.DoesNotExist as error:
        raise Http404 from error
    messages.success(
        request,
        ngettext(
            "%(count)d customer proposed to %(name)s.",
            "%(count)d customers proposed to %(name)s.",
            len(created),
        )
        % {"count": len(created), "name": form.cleaned_data["successor"]},
    )
    return redirect(back)


def departure_report(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    departure = selectors.departure_for(user, pk)
    incomplete = Paginator(selectors.incomplete_tasks(departure), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    labels = dict(TaskState.choices)
    for task in incomplete:
        task.state_before_label = labels.get(  # type: ignore[attr-defined]
            getattr(task, "state_before", "") or "", ""
        )
    progress = selectors.departure_progress(departure)
    return render(
        request,
        "handover/departure_report.html",
        {
            "departure": departure,
            "report": departure.report,
            "progress": progress,
            "state_rows": [(labels[state], n) for state, n in sorted(progress.by_state.items())],
            "stage_rows": _stage_rows(progress),
            "page": incomplete,
            "finished": departure.state == DepartureState.FINISHED,
        },
    )


# --- tasks: the leaver and the successor --------------------------------------------------


def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    task = selectors.task_for(user, pk)
    is_successor = task.successor_id == user.pk
    is_leaver = task.departure.leaver_id == user.pk
    running = task.departure.state == DepartureState.IN_PROGRESS
    return render(
        request,
        "handover/task_detail.html",
        {
            "task": task,
            "contacts": list(customer_contacts(task.customer)[:10]),
            "history": selectors.task_history(task),
            "can_accept": running and is_successor and task.state == TaskState.PROPOSED,
            "can_done": running and is_leaver and task.state == TaskState.ACCEPTED,
            "can_confirm": running and is_successor and task.state == TaskState.DONE_BY_LEAVER,
            "can_manage": selectors.can_manage_departure(user, task.departure),
            "refuse_form": RefuseForm(),
            "done_form": DoneForm(),
            "confirm_form": ConfirmForm(),
            "send_back_form": SendBackForm(),
            "today": timezone.localdate(),
        },
    )


def _task_step(request: HttpRequest, pk: int, form_class: type[Any], step: Any) -> HttpResponse:
    """One POST step on a task: bind the form, call the service, message, redirect."""
    user = _user(request)
    task = selectors.task_for(user, pk)
    form = form_class(request.POST)
    back = reverse("handover_task_detail", args=[task.pk])
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(back)
    try:
        message = step(user, task, form.cleaned_data)
    except services.DepartureInvalid as error:
        for text in error.errors.values():
            messages.error(request, text)
        return redirect(back)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(back)
    messages.success(request, message)
    return redirect(request.POST.get("next", back) if _safe_next(request) else back)


def _safe_next(request: HttpRequest) -> bool:
    target = request.POST.get("next", "")
    return target in (reverse("handover_incoming"), reverse("handover_my_tasks"))


@require_POST
def task_accept(request: HttpRequest, pk: int) -> HttpResponse:
    def step(user: User, task: HandoverTask, data: dict[str, Any]) -> str:
        services.tasks_accept(actor=user, task_ids=[task.pk])
        return _("Accepted: %(customer)s.") % {"customer": task.customer}

    return _task_step(request, pk, _EmptyForm, step)


@require_POST
def task_refuse(request: HttpRequest, pk: int) -> HttpResponse:
    def step(user: User, task: HandoverTask, data: dict[str, Any]) -> str:
        services.task_refuse(actor=user, task=task, reason=data["reason"])
        return _("Refused: the manager will choose another successor for %(customer)s.") % {
            "customer": task.customer
        }

    return _task_step(request, pk, RefuseForm, step)


@require_POST
def task_done(request: HttpRequest, pk: int) -> HttpResponse:
    def step(user: User, task: HandoverTask, data: dict[str, Any]) -> str:
        services.task_mark_done(actor=user, task=task, note=data["note"])
        return _("Marked done: %(name)s will confirm it.") % {"name": task.successor}

    return _task_step(request, pk, DoneForm, step)


@require_POST
def task_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    def step(user: User, task: HandoverTask, data: dict[str, Any]) -> str:
        task = services.task_confirm(
            actor=user, task=task, happened_on=data["happened_on"], note=data["note"]
        )
        if task.state == TaskState.CANCELLED:
            return _("%(customer)s is no longer the leaver's customer: nothing moved.") % {
                "customer": task.customer
            }
        return _("Confirmed: %(customer)s is yours from now on.") % {"customer": task.customer}

    return _task_step(request, pk, ConfirmForm, step)


@require_POST
def task_send_back(request: HttpRequest, pk: int) -> HttpResponse:
    def step(user: User, task: HandoverTask, data: dict[str, Any]) -> str:
        services.task_send_back(actor=user, task=task, note=data["note"])
        return _("Sent back to %(name)s.") % {"name": task.departure.leaver}

    return _task_step(request, pk, SendBackForm, step)


class _EmptyForm(AcceptForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["tasks"]


def my_tasks(request: HttpRequest) -> HttpResponse:
    """The leaving rep's task list."""
    user = _user(request)
    tasks = selectors.leaver_tasks(user)
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "handover/my_tasks.html",
        {
            "page": page,
            "departure": selectors.open_departure_of(user),
            "today": timezone.localdate(),
        },
    )


def incoming(request: HttpRequest) -> HttpResponse:
    """The successor's acceptance list (and what waits for their confirmation)."""
    user = _user(request)
    tasks = selectors.incoming_tasks(user)
    state = request.GET.get("state", "")
    if state in TaskState.values:
        tasks = tasks.filter(state=state)
    else:
        state = ""
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "handover/incoming.html",
        {
            "page": page,
            "state": state,
            "states": TaskState.choices,
            "query": urlencode({"state": state}) if state else "",
            "today": timezone.localdate(),
            "is_rep": user.role == Role.REP,
        },
    )


@require_POST
def incoming_accept(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = AcceptForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("handover_incoming")
    ids = form.cleaned_data["tasks"]
    # Only the user's own tasks: anything else is as if it did not exist.
    if selectors.incoming_tasks(user).filter(pk__in=ids).count() != len(set(ids)):
        raise Http404
    try:
        accepted = services.tasks_accept(actor=user, task_ids=ids)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("handover_incoming")
    messages.success(
        request,
        ngettext("%(count)d customer accepted.", "%(count)d customers accepted.", len(accepted))
        % {"count": len(accepted)},
    )
    return redirect("handover_incoming")
