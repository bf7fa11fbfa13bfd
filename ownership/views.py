"""Ownership pages: the explanation of who owns a customer, since when and why."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crm.errors import DomainError
from crm.models import Role, User
from crm.roles import role_required
from crm.selectors import customer_for
from ownership import selectors, services
from ownership.models import ReviewAction
from ownership.review.anomalies import disputes_available
from ownership.review.forms import PolicyTrialForm
from ownership.review.policies import POLICY_FIELDS
from ownership.review.selectors import (
    review_outcomes_for,
    review_run_for,
    review_runs_for,
    scoped_counts,
)
from ownership.review.whatif import PolicyInvalid, global_policy_update, what_if
from ownership.tasks import run_ownership_review


def customer_ownership(request: HttpRequest, pk: int) -> HttpResponse:
    """The ownership timeline, "who owned it on date D" and the clock of one customer."""
    user: User = request.user  # type: ignore[assignment]
    customer = selectors.customer_for_ownership(user, pk)
    events = selectors.timeline_for(customer, known=[customer.owner, user])
    explanation = selectors.ownership_explanation(customer)
    clock = explanation.clock
    now = timezone.now()
    context: dict[str, object] = {
        "customer": customer,
        "events": events,
        "clock": clock,
        "days_left": clock.days_left(now),
        "territory": explanation.territory,
    }
    raw_date = request.GET.get("on", "").strip()
    if raw_date:
        day = parse_date(raw_date) if len(raw_date) == 10 else None
        if day is None:
            context["date_error"] = _("Enter a date as YYYY-MM-DD.")
        else:
            # End of that day in the user's time zone: "who owned it on D" includes D.
            moment = timezone.make_aware(datetime.combine(day, time.max))
            owner, event = selectors.owner_at(customer, moment)
            context.update({"on_date": day, "owner_on_date": owner, "event_on_date": event})
    return render(request, "ownership/customer_ownership.html", context)


@require_http_methods(["GET", "POST"])
def customer_sharing(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner shares read access with colleagues of the team (and takes it back)."""
    user: User = request.user  # type: ignore[assignment]
    customer = customer_for(user, pk)
    if customer.owner_id != user.pk:
        raise PermissionDenied
    candidates = selectors.share_candidates(user)
    if request.method == "POST":
        colleague = candidates.filter(pk=request.POST.get("colleague") or 0).first()
        action = request.POST.get("action")
        if colleague is None or action not in {"share", "unshare"}:
            messages.error(request, _("Choose a colleague from your team."))
        else:
            try:
                if action == "share":
                    services.customer_share(actor=user, customer=customer, colleague=colleague)
                    messages.success(
                        request, _("%(name)s can now read this customer.") % {"name": colleague}
                    )
                else:
                    services.customer_unshare(actor=user, customer=customer, colleague=colleague)
                    messages.success(
                        request, _("%(name)s can no longer read it.") % {"name": colleague}
                    )
            except DomainError as error:
                messages.error(request, error.message)
        return redirect("customer_sharing", pk=customer.pk)
    return render(
        request,
        "ownership/customer_sharing.html",
        {
            "customer": customer,
            "shared": selectors.shared_with(customer),
            "candidates": candidates,
        },
    )


# --- the periodic review and the policy what-if (managers, administrators) ---------------


@role_required(Role.MANAGER, Role.ADMIN)
def review_run_list(request: HttpRequest) -> HttpResponse:
    """Every review run with its totals, and per run the figures of the user's own teams."""
    user: User = request.user  # type: ignore[assignment]
    page = Paginator(review_runs_for(user), 25).get_page(request.GET.get("page"))
    runs = list(page)
    mine = scoped_counts(user, [run.pk for run in runs])
    rows = [(run, mine.get(run.pk, {})) for run in runs]
    return render(
        request,
        "ownership/review_runs.html",
        {
            "page": page,
            "rows": rows,
            "scoped": not user.is_crm_admin,
            "disputes_available": disputes_available(),
        },
    )


@role_required(Role.MANAGER, Role.ADMIN)
def review_run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: its counts, errors and the customers / reps behind them in the user's scope."""
    user: User = request.user  # type: ignore[assignment]
    run = review_run_for(user, pk)
    action = request.GET.get("action", ReviewAction.RECYCLED)
    if action not in ReviewAction.values:
        action = ReviewAction.RECYCLED
    outcomes = review_outcomes_for(user).filter(run=run, action=action).order_by("team__name", "id")
    page = Paginator(outcomes, 25).get_page(request.GET.get("page"))
    sections = [(value, label, run.count(value)) for value, label in ReviewAction.choices]
    return render(
        request,
        "ownership/review_run_detail.html",
        {
            "run": run,
            "page": page,
            "action": action,
            "action_label": ReviewAction(action).label,
            "sections": sections,
            "query": urlencode({"action": action}),
            "disputes_available": disputes_available(),
            "scoped": not user.is_crm_admin,
        },
    )


@role_required(Role.MANAGER, Role.ADMIN)
def review_outcomes(request: HttpRequest) -> HttpResponse:
    """Customers the user's teams lost (recycled) or were warned about, across runs."""
    user: User = request.user  # type: ignore[assignment]
    action = request.GET.get("action", ReviewAction.RECYCLED)
    if action not in (ReviewAction.RECYCLED, ReviewAction.WARNED):
        action = ReviewAction.RECYCLED
    outcomes = (
        review_outcomes_for(user)
        .filter(action=action, run__dry_run=False)
        .order_by("-run__started_at", "team__name", "id")
    )
    page = Paginator(outcomes, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "ownership/review_outcomes.html",
        {
            "page": page,
            "action": action,
            "actions": [
                (ReviewAction.RECYCLED, ReviewAction.RECYCLED.label),
                (ReviewAction.WARNED, ReviewAction.WARNED.label),
            ],
            "query": urlencode({"action": action}),
        },
    )


@require_POST
@role_required(Role.ADMIN)
def review_run_start(request: HttpRequest) -> HttpResponse:
    """An administrator starts a run now (a dry run by default), in the Celery worker."""
    user: User = request.user  # type: ignore[assignment]
    dry_run = request.POST.get("mode") != "real"
    # celery-types does not know delay_on_commit (Celery ≥ 5.4) yet.
    run_ownership_review.delay_on_commit(dry_run=dry_run, actor_id=user.pk)  # type: ignore[attr-defined]
    if dry_run:
        messages.success(request, _("A dry run was started; its result appears below shortly."))
    else:
        messages.success(request, _("The review was started; its result appears below shortly."))
    return redirect("review_run_list")


@role_required(Role.ADMIN)
def policy_what_if(request: HttpRequest) -> HttpResponse:
    """Try other global policy values: customers per team recycled or warned tomorrow under
    them, next to the current policy. Writes nothing (a GET form); the first visit shows
    the form prefilled from the global policy."""
    current = selectors.global_policy()
    initial = PolicyTrialForm.initial_from(current)
    if any(name in request.GET for name in POLICY_FIELDS):
        form = PolicyTrialForm(request.GET)
    else:
        form = PolicyTrialForm(initial=initial)
    return _what_if_page(request, form, current, initial)


def _what_if_page(
    request: HttpRequest,
    form: Any,
    current: Any,
    initial: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {"form": form, "policy": current}
    if form.is_bound and form.is_valid():
        values = form.values()
        context["changes"] = [
            (form.fields[name].label, initial[name], value)
            for name, value in values.items()
            if initial[name] != value
        ]
        # A full candidate scan: computed when asked for, not on every visit of the page.
        context["result"] = what_if(values=values)
    return render(request, "ownership/what_if.html", context, status=status)


@require_POST
@role_required(Role.ADMIN)
def policy_what_if_apply(request: HttpRequest) -> HttpResponse:
    """Apply tried values to the global policy, after a confirmation page."""
    user: User = request.user  # type: ignore[assignment]
    current = selectors.global_policy()
    initial = PolicyTrialForm.initial_from(current)
    form = PolicyTrialForm(request.POST)
    if not form.is_valid():
        return _what_if_page(request, form, current, initial, status=400)
    values = form.values()
    changes = [
        (form.fields[name].label, initial[name], value)
        for name, value in values.items()
        if initial[name] != value
    ]
    if not changes:
        messages.info(request, _("These are the current values: nothing to apply."))
        return redirect("policy_what_if")
    if request.POST.get("confirmed") != "yes":
        return render(
            request,
            "ownership/what_if_confirm.html",
            {"form": form, "changes": changes, "result": what_if(values=values)},
        )
    try:
        global_policy_update(actor=user, values=values)
    except PolicyInvalid as error:
        for name, problems in error.errors.items():
            for problem in problems:
                form.add_error(name if name in form.fields else None, problem)
        return _what_if_page(request, form, current, initial, status=400)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("policy_what_if")
    messages.success(request, _("The global pool policy now has the new values."))
    return redirect("policy_what_if")
