"""The parties' dispute pages: file, follow the case, add statements, withdraw, appeal,
read the ruling; and the administrators' report. The committee works in the admin.

Thin views: authorise through a selector, bind a form, call one service, turn domain
errors into messages or form errors, redirect after POST."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.errors import DomainError
from crm.models import Customer, Role, User
from crm.roles import role_required
from disputes import selectors, services
from disputes.forms import (
    AppealForm,
    FileDisputeForm,
    PickCustomerForm,
    StatementForm,
    WithdrawForm,
)
from disputes.models import Dispute, DisputeKind, RulingOutcome

PAGE_SIZE = 25


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@role_required(Role.REP, Role.MANAGER)
@require_GET
def dispute_list(request: HttpRequest) -> HttpResponse:
    """My disputes (reps: those I filed or answer; managers: their teams')."""
    user = _user(request)
    filterset, queryset, sort = selectors.dispute_list(user, request.GET)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    params.pop("sort", None)
    return render(
        request,
        "disputes/list.html",
        {
            "filter": filterset,
            "page": page,
            "query": _query_without_page(request),
            "sort_query": params.urlencode(),
            "sort": sort,
        },
    )


def _default_kind(user: User, customer: Customer, has_events: bool) -> str:
    if customer.owner_id == user.pk:
        return DisputeKind.SAME_COMPANY
    if has_events:
        return DisputeKind.WRONG_RULE
    return DisputeKind.FIRST_CONTACT


@role_required(Role.REP, admins=False)
def dispute_file(request: HttpRequest) -> HttpResponse:
    """File a dispute: from the collision page, a customer page or "my customers"
    (`?customer=` names the customer; without it the rep picks one first)."""
    user = _user(request)
    raw = request.POST.get("customer") or request.GET.get("customer") or ""
    if not raw.isdigit():
        pick = PickCustomerForm(customers=selectors.customers_disputable_by(user))
        return render(request, "disputes/pick_customer.html", {"form": pick})
    customer = selectors.disputable_customer_for(user, int(raw))
    others = selectors.other_record_candidates(customer)
    events = selectors.contestable_events(user, customer)
    kind = request.GET.get("kind", "")
    if kind not in DisputeKind.values:
        kind = _default_kind(user, customer, events.exists())
    initial: dict[str, Any] = {"kind": kind}
    other = request.GET.get("other", "")
    if other.isdigit() and any(candidate.pk == int(other) for candidate in others):
        initial["other_customer"] = int(other)
    form = FileDisputeForm(
        request.POST or None,
        request.FILES or None,
        initial=initial,
        others=others,
        events=events,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            dispute = services.dispute_file(
                actor=user,
                customer=customer,
                kind=data["kind"],
                statement=data["statement"],
                other_customer=data.get("other_customer"),
                rule_event=data.get("rule_event"),
                attachments=data.get("attachments") or [],
            )
        except services.DisputeInvalid as error:
            form.add_service_errors(error)
        except services.DisputeExists as error:
            form.add_error(None, error.message)
            if error.dispute is not None and selectors.is_party(user, error.dispute):
                messages.info(request, _("You can follow the open dispute here."))
                return redirect("dispute_detail", pk=error.dispute.pk)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request,
                _("Dispute #%(id)s filed. The committee will rule by %(date)s.")
                % {"id": dispute.pk, "date": date_format(timezone.localtime(dispute.deadline))},
            )
            return redirect("dispute_detail", pk=dispute.pk)
    return render(
        request,
        "disputes/file.html",
        {
            "form": form,
            "customer": customer,
            "has_others": bool(others),
            "has_events": events.exists(),
            "under_dispute": selectors.is_under_dispute(customer),
        },
    )


def _detail_context(user: User, dispute: Dispute) -> dict[str, Any]:
    statements = list(selectors.statements_of(dispute))
    for statement in statements:
        statement.visible_attachments = [  # type: ignore[attr-defined]
            attachment
            for attachment in statement.attachments.all()
            if not user.is_rep or attachment.uploaded_by_id == user.pk
        ]
    rulings = list(selectors.rulings_of(dispute))
    # The parties read the committee's reasons without the names of who voted what.
    reasons: dict[int, list[str]] = {}
    for vote in dispute.votes.filter(round__in=[r.round for r in rulings]).order_by("id"):
        ruling = next(r for r in rulings if r.round == vote.round)
        if vote.outcome == ruling.outcome and vote.award_to == ruling.award_to:
            reasons.setdefault(vote.round, []).append(vote.rationale)
    for ruling in rulings:
        ruling.reasons = reasons.get(ruling.round, [])  # type: ignore[attr-defined]
    return {
        "dispute": dispute,
        "statements": statements,
        "rulings": rulings,
        "history": dispute.history.select_related("actor").order_by("at", "id"),
        "is_party": selectors.is_party(user, dispute),
        "can_add_statement": selectors.can_add_statement(user, dispute),
        "can_withdraw": selectors.can_withdraw(user, dispute),
        "can_appeal": selectors.can_appeal(user, dispute),
        "merge": RulingOutcome.MERGE,
    }


@require_GET
def dispute_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    dispute = selectors.dispute_for(user, pk)
    context = _detail_context(user, dispute)
    context.update(
        {
            "statement_form": StatementForm(),
            "withdraw_form": WithdrawForm(),
            "appeal_form": AppealForm(),
        }
    )
    return render(request, "disputes/detail.html", context)


def _rerender(request: HttpRequest, dispute: Dispute, **forms: Any) -> HttpResponse:
    user = _user(request)
    context = _detail_context(user, dispute)
    context.update(
        {
            "statement_form": forms.get("statement_form") or StatementForm(),
            "withdraw_form": forms.get("withdraw_form") or WithdrawForm(),
            "appeal_form": forms.get("appeal_form") or AppealForm(),
        }
    )
    return render(request, "disputes/detail.html", context, status=200)


@require_POST
def dispute_statement(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    dispute = selectors.dispute_for(user, pk)
    form = StatementForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.dispute_add_statement(
                actor=user,
                dispute=dispute,
                text=form.cleaned_data["text"],
                attachments=form.cleaned_data.get("attachments") or [],
            )
        except services.DisputeInvalid as error:
            form.add_service_errors(error)
        except DomainError as error:
            messages.error(request, error.message)
            return redirect("dispute_detail", pk=dispute.pk)
        else:
            messages.success(request, _("Your statement was added to the case."))
            return redirect("dispute_detail", pk=dispute.pk)
    return _rerender(request, dispute, statement_form=form)


@require_POST
def dispute_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    dispute = selectors.dispute_for(user, pk)
    form = WithdrawForm(request.POST)
    if form.is_valid():
        try:
            services.dispute_withdraw(actor=user, dispute=dispute, note=form.cleaned_data["note"])
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("The dispute was withdrawn."))
    return redirect("dispute_detail", pk=dispute.pk)


@require_POST
def dispute_appeal(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    dispute = selectors.dispute_for(user, pk)
    form = AppealForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.dispute_appeal(
                actor=user,
                dispute=dispute,
                text=form.cleaned_data["text"],
                attachments=form.cleaned_data.get("attachments") or [],
            )
        except services.DisputeInvalid as error:
            form.add_service_errors(error)
        except DomainError as error:
            messages.error(request, error.message)
            return redirect("dispute_detail", pk=dispute.pk)
        else:
            messages.success(
                request, _("Your appeal was filed; other committee members rule on it.")
            )
            return redirect("dispute_detail", pk=dispute.pk)
    return _rerender(request, dispute, appeal_form=form)


@require_GET
def dispute_attachment(request: HttpRequest, pk: int) -> FileResponse:
    """Download an evidence file (always as a download, with the type detected at upload)."""
    attachment = selectors.attachment_for(_user(request), pk)
    return FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.original_name or attachment.file.name,
        content_type=attachment.content_type,
    )


@role_required(Role.COMMITTEE, Role.ADMIN)
@require_GET
def dispute_report(request: HttpRequest) -> HttpResponse:
    report = selectors.dispute_report()
    peak = max((count for _month, count in report.months), default=0) or 1
    labels = _cause_labels()
    outcomes = {value: str(label) for value, label in RulingOutcome.choices}
    return render(
        request,
        "disputes/report.html",
        {
            "report": report,
            "bars": [(month, count, round(count * 100 / peak)) for month, count in report.months],
            "causes": [(labels.get(cause, cause), n) for cause, n in report.causes],
            "outcomes": [(outcomes.get(o, o), n) for o, n in report.outcomes],
        },
    )


def _cause_labels() -> dict[str, str]:
    from ownership.models import EventKind

    labels = {value: str(label) for value, label in DisputeKind.choices}
    for value, label in EventKind.choices:
        labels[f"{DisputeKind.WRONG_RULE}:{value}"] = _("Rule contested: %(kind)s") % {
            "kind": label
        }
    return labels
