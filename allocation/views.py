"""Registration (报备), the public pool (公海), reassignment requests (转移申请), allocation
(分配) and the manager's team view: thin views over allocation/ownership services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from allocation import selectors, services
from allocation.fairness import TIERS
from allocation.filters import PoolFilter
from allocation.forms import (
    AllocateOneForm,
    AskForm,
    BulkAllocationForm,
    BulkApproveForm,
    DecisionForm,
    ReleaseForm,
    TransferForm,
    WithdrawForm,
)
from allocation.forms import RegistrationForm as RegistrationPageForm
from allocation.models import ReassignmentRequest, RegistrationOutcome, RequestState
from allocation.selectors import POOL_SORTS
from allocation.services import SOFT_MATCH, RegistrationForm, registration_submit
from crm.errors import DomainError
from crm.models import Customer, Industry, Role, Team, User
from crm.roles import role_required
from crm.selectors import (
    can_change_customer,
    customer_for,
    customer_for_change,
    visible_customer_ids,
)
from crm.services import CustomerInvalid
from ownership import selectors as ownership_selectors
from ownership import services as ownership

PAGE_SIZE = 25


@role_required(Role.REP, admins=False)
def register(request: HttpRequest) -> HttpResponse:
    """The registration page, built for a phone: one form, one answer page per outcome."""
    user: User = request.user  # type: ignore[assignment]
    form = RegistrationPageForm(request.POST or None)
    if request.method != "POST" or not form.is_valid():
        return render(request, "allocation/register.html", {"form": form})
    data = form.cleaned_data
    try:
        result = registration_submit(
            actor=user,
            form=RegistrationForm(
                display_name=data["display_name"],
                credit_code=data["credit_code"],
                address=data["address"],
                phone=data["phone"],
                industry=data["industry"],
                size_band=data["size_band"],
                source=data["source"] or "other",
                first_contact_name=data["first_contact_name"],
                first_contact_phone=data["first_contact_phone"],
                evidence=data["evidence"],
            ),
            confirmed_distinct=form.confirmed_ids(),
        )
    except CustomerInvalid as error:
        form.add_service_errors(error)
        return render(request, "allocation/register.html", {"form": form})
    except DomainError as error:
        messages.error(request, error.message)
        return render(request, "allocation/register.html", {"form": form})
    context: dict[str, Any] = {"result": result, "form": form}
    if result.outcome in (RegistrationOutcome.PENDING, RegistrationOutcome.ROUTED):
        assert result.registration is not None
        return redirect("registration_outcome", pk=result.registration.pk)
    if result.outcome == RegistrationOutcome.AWAITING:
        return render(request, "allocation/register_awaiting.html", context)
    if result.outcome == RegistrationOutcome.REGISTERED:
        assert result.customer is not None
        messages.success(
            request,
            _("Registered: %(customer)s is yours from now on.") % {"customer": result.customer},
        )
        return redirect("customer_ownership", pk=result.customer.pk)
    if result.outcome == SOFT_MATCH:
        context["candidate_ids"] = ",".join(str(m.customer.pk) for m in result.matches)
        context["match_rows"] = _match_rows(result.matches)
        return render(request, "allocation/register_soft_match.html", context)
    if result.outcome in (RegistrationOutcome.COLLISION, RegistrationOutcome.OWN):
        assert result.customer is not None
        context["clock"] = ownership_selectors.clock_for(result.customer)
        return render(request, "allocation/register_collision.html", context, status=200)
    if result.outcome == RegistrationOutcome.IN_POOL:
        return render(request, "allocation/register_in_pool.html", context)
    return render(request, "allocation/register_cap_reached.html", context)


@dataclass(frozen=True)
class _MatchRow:
    name: str
    owner: str
    team: str
    reasons: str
    similarity: str


def _match_rows(matches: list[Any]) -> list[_MatchRow]:
    """What the soft-match page lists of each candidate, as text: up to ten rows follow
    about a third of registrations, and each lookup and filter in a template loop costs
    more than composing the line here."""
    rows = []
    for match in matches:
        owner = match.customer.owner
        rows.append(
            _MatchRow(
                name=match.customer.display_name,
                owner=str(owner) if owner is not None else _("public pool"),
                team=str(owner.team) if owner is not None and owner.team_id else "",
                reasons="；".join(str(reason) for reason in match.reasons),
                similarity=_("similarity %(score)s") % {"score": match.score},
            )
        )
    return rows


@role_required(Role.REP, Role.MANAGER)
def pool(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    params = {key: request.GET.get(key, "") for key in ("q", "industry", "tier", "region", "sort")}
    queryset = selectors.filter_pool(selectors.pool_for(user), params)
    page = Paginator(queryset, 25).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in params.items() if v})
    policy = ownership_selectors.policy_for_owner(user)
    return render(
        request,
        "allocation/pool.html",
        {
            "page": page,
            "query": query,
            "params": params,
            "industries": Industry.objects.all(),
            "policy": policy,
            "claims_today": ownership.claims_today(user, timezone.now()),
            "can_claim": user.is_rep,
        },
    )


@role_required(Role.REP, admins=False)
@require_POST
def claim(request: HttpRequest) -> HttpResponse:
    """Claim one or several pool customers; each refusal gets its own message."""
    user: User = request.user  # type: ignore[assignment]
    ids = [int(value) for value in request.POST.getlist("customer") if value.isdigit()][:50]
    if not ids:
        messages.error(request, _("Choose at least one customer to claim."))
        return redirect("pool")
    customers = list(Customer.objects.filter(pk__in=ids, merged_into__isnull=True))
    if len(customers) != len(set(ids)):
        messages.error(request, _("Some of the chosen customers no longer exist."))
    # Another team's territory pool is not the rep's to claim from (the writer refuses owned
    # and held customers itself, with its own words).
    elsewhere = selectors.in_other_pools(user, ids)
    for customer in customers:
        if customer.pk in elsewhere:
            messages.error(
                request,
                _("%(customer)s is in %(pool)s; only that team's reps can claim it.")
                % {"customer": customer, "pool": selectors.pool_label(customer)},
            )
    customers = [customer for customer in customers if customer.pk not in elsewhere]
    outcome = ownership.ownership_claim_many(actor=user, customers=customers)
    for customer in outcome.claimed:
        messages.success(request, _("Claimed %(customer)s.") % {"customer": customer})
    for customer, reason in outcome.refused:
        messages.error(request, f"{customer}: {reason}")
    if len(outcome.claimed) == 1 and not outcome.refused:
        return redirect("customer_ownership", pk=outcome.claimed[0].pk)
    return redirect("pool")


@role_required(Role.REP, admins=False)
def release(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner gives a customer back to the pool, with a reason (confirmation page)."""
    user: User = request.user  # type: ignore[assignment]
    customer = customer_for_change(user, pk)
    form = ReleaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ownership.ownership_release(
                actor=user, customer=customer, reason=form.cleaned_data["reason"]
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, _("%(customer)s is back in the public pool.") % {"customer": customer}
            )
            return redirect("home")
    return render(request, "allocation/release.html", {"form": form, "customer": customer})


# --- Reassignment requests (转移申请) ------------------------------------------------------


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


# --- Registrations outside the rep's territory: outcome page, approval queue -------------


@role_required(Role.REP, admins=False)
@require_GET
def registration_outcome(request: HttpRequest, pk: int) -> HttpResponse:
    """What became of the rep's registration that a territory held back or routed: pending
    (and since when), approved, rejected, or in which team's pool it went."""
    user = _user(request)
    registration = selectors.own_registration_for(user, pk)
    teams = list(registration.responsible_teams.all())
    return render(
        request,
        "allocation/register_outcome.html",
        {
            "registration": registration,
            "teams": teams,
            "days": services.pending_registration_days(),
        },
    )


@role_required(Role.MANAGER)
@require_GET
def registration_queue(request: HttpRequest) -> HttpResponse:
    """Registrations by other teams' reps in the manager's territories, waiting for a
    decision, oldest first (the first precedence first)."""
    user = _user(request)
    page = Paginator(selectors.registration_queue(user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = list(page)
    holdings = selectors.holdings_of(row.rep for row in rows)
    now = timezone.now()
    days = services.pending_registration_days()
    return render(
        request,
        "allocation/registrations/queue.html",
        {
            "page": page,
            "rows": [_queue_row(row, holdings, now, days) for row in rows],
            "days": days,
        },
    )


def _queue_row(
    registration: Any, holdings: dict[int, selectors.Holding], now: Any, days: int
) -> dict[str, Any]:
    waited = (now - registration.submitted_at).days
    return {
        "item": registration,
        "holding": holdings.get(registration.rep_id),
        "waited": waited,
        "overdue": waited >= days,
    }


@role_required(Role.MANAGER)
@require_POST
def registration_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve, or reject with a reason (from the queue by htmx: answers with the row)."""
    user = _user(request)
    registration = selectors.registration_for_decision(user, pk)
    form = DecisionForm(request.POST)
    error = done = ""
    if not form.is_valid():
        error = _("Choose approve or reject.")
    else:
        note = form.cleaned_data["comment"]
        try:
            if form.cleaned_data["action"] == "approve":
                registration = services.registration_approve(
                    actor=user, registration=registration, note=note
                )
                done = _("Approved: %(customer)s now belongs to %(rep)s.") % {
                    "customer": registration.customer,
                    "rep": registration.rep,
                }
            else:
                registration = services.registration_reject(
                    actor=user, registration=registration, note=note
                )
                done = _("Rejected: %(customer)s went to the responsible team's pool.") % {
                    "customer": registration.customer
                }
        except DomainError as failure:
            error = failure.message
    if getattr(request, "htmx", False):
        registration = selectors.registration_for_decision(user, pk)
        holdings = selectors.holdings_of([registration.rep])
        row = _queue_row(
            registration, holdings, timezone.now(), services.pending_registration_days()
        )
        return render(
            request,
            "allocation/registrations/_queue_row.html",
            {"row": row, "row_error": error, "row_done": done},
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect("registration_queue")


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@role_required(Role.REP, Role.MANAGER)
@require_GET
def request_list(request: HttpRequest) -> HttpResponse:
    """My requests: those I sent, and those about my customers or coming to me."""
    user = _user(request)
    box = "received" if request.GET.get("box") == "received" else "sent"
    filterset, queryset, sort = selectors.my_requests(user, box, request.GET)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "allocation/requests/list.html",
        {
            "box": box,
            "filter": filterset,
            "page": page,
            "query": _query_without_page(request),
            "sort": sort,
        },
    )


@role_required(Role.MANAGER)
@require_GET
def request_queue(request: HttpRequest) -> HttpResponse:
    """The manager's approval queue: approve or reject in place (htmx), or several at once."""
    user = _user(request)
    filterset, queryset, sort = selectors.approval_queue_filtered(user, request.GET)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "allocation/requests/queue.html",
        {
            "filter": filterset,
            "page": page,
            "query": _query_without_page(request),
            "sort": sort,
        },
    )


@role_required(Role.MANAGER)
@require_POST
def request_bulk_approve(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = BulkApproveForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("request_queue")
    ids = form.cleaned_data["request"]
    # Only what is in the user's own queue: anything else is silently out of reach.
    chosen = list(selectors.approval_queue(user).filter(pk__in=ids))
    if len(chosen) != len(ids):
        messages.warning(
            request, _("Some of the chosen requests are no longer waiting for your approval.")
        )
    outcome = services.requests_approve_many(
        actor=user, requests=chosen, comment=form.cleaned_data["comment"]
    )
    for done in outcome.done:
        messages.success(request, _approval_message(done))
    for refused, reason in outcome.refused:
        messages.error(request, f"{refused.customer}: {reason}")
    return redirect("request_queue")


def _approval_message(transfer: ReassignmentRequest) -> str:
    if transfer.state == RequestState.APPLIED:
        return _("Approved: %(customer)s now belongs to %(rep)s.") % {
            "customer": transfer.customer,
            "rep": transfer.to_rep,
        }
    return _(
        "Your approval of %(customer)s is recorded; it waits for the other team's manager."
    ) % {"customer": transfer.customer}


def _detail_context(user: User, transfer: ReassignmentRequest) -> dict[str, Any]:
    return {
        "transfer": transfer,
        "history": selectors.request_history(transfer),
        "can_decide": selectors.can_decide(user, transfer),
        "can_withdraw": transfer.state == RequestState.PENDING
        and transfer.requested_by_id == user.pk,
        "customer_visible": visible_customer_ids(user, [transfer.customer_id]) != set(),
    }


@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    transfer = selectors.request_for(user, pk)
    return render(request, "allocation/requests/detail.html", _detail_context(user, transfer))


@require_POST
def request_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve or reject (with a comment). From the queue by htmx: answers with the row."""
    user = _user(request)
    transfer = selectors.request_for(user, pk)
    if not selectors.approval_sides(user, transfer):
        raise PermissionDenied
    form = DecisionForm(request.POST)
    error = ""
    done = ""
    if not form.is_valid():
        error = _("Choose approve or reject.")
    else:
        comment = form.cleaned_data["comment"]
        try:
            if form.cleaned_data["action"] == "approve":
                transfer = services.request_approve(actor=user, request=transfer, comment=comment)
                done = _approval_message(transfer)
            else:
                transfer = services.request_reject(actor=user, request=transfer, comment=comment)
                done = _("Rejected: %(customer)s stays with %(owner)s.") % {
                    "customer": transfer.customer,
                    "owner": transfer.from_owner,
                }
        except DomainError as failure:
            error = failure.message
    if getattr(request, "htmx", False):
        transfer = selectors.request_for(user, pk)
        return render(
            request,
            "allocation/requests/_queue_row.html",
            {"item": transfer, "row_error": error, "row_done": done, "swap": True},
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect("request_detail", pk=pk)


@require_POST
def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    transfer = selectors.request_for(user, pk)
    if transfer.requested_by_id != user.pk:
        raise PermissionDenied
    form = WithdrawForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    try:
        services.request_withdraw(actor=user, request=transfer, comment=comment)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The request was withdrawn."))
    return redirect("request_detail", pk=pk)


def _transfer_mode(user: User, customer: Customer) -> str:
    """offer (the owner), ask (a rep who sees someone else's customer), move (a manager of
    the owner's team), or "" (nothing to do here)."""
    if customer.owner_id is None or customer.merged_into_id is not None:
        return ""
    if user.is_rep:
        return "offer" if customer.owner_id == user.pk else "ask"
    if (user.is_manager or user.is_crm_admin) and can_change_customer(user, customer):
        return "move"
    return ""


@require_http_methods(["GET", "POST"])
def customer_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    """申请转移 from the customer page: offer, ask or move, depending on who asks."""
    user = _user(request)
    customer = customer_for(user, pk)
    mode = _transfer_mode(user, customer)
    if not mode:
        if customer.owner_id is None and user.is_rep:
            messages.info(request, _("This customer is in the public pool: claim it there."))
            return redirect("customer_detail", pk=customer.pk)
        if customer.owner_id is None and (user.is_manager or user.is_crm_admin):
            messages.info(
                request, _("This customer is in the public pool: allocate it from the pool.")
            )
            return redirect("allocation_pool")
        raise PermissionDenied
    form = TransferForm(request.POST or None, mode=mode, owner=customer.owner)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if mode == "offer":
                transfer = services.request_offer(
                    actor=user, customer=customer, to_rep=data["to_rep"], reason=data["reason"]
                )
            elif mode == "move":
                transfer = services.request_move(
                    actor=user, customer=customer, to_rep=data["to_rep"], reason=data["reason"]
                )
            else:
                transfer = services.request_ask(
                    actor=user, customer=customer, reason=data["reason"], evidence=data["evidence"]
                )
        except services.RequestInvalid as error:
            form.add_service_errors(error.errors)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _submitted_message(transfer))
            return redirect("request_detail", pk=transfer.pk)
    return render(
        request,
        "allocation/requests/transfer.html",
        {"customer": customer, "form": form, "mode": mode},
    )


def _submitted_message(transfer: ReassignmentRequest) -> str:
    if transfer.state == RequestState.APPLIED:
        return _("Done: %(customer)s now belongs to %(rep)s.") % {
            "customer": transfer.customer,
            "rep": transfer.to_rep,
        }
    return _("Request sent. The managers who must approve it have been told.")


@role_required(Role.REP, admins=False)
@require_http_methods(["GET", "POST"])
def registration_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    """申请转移 from the collision page. The rep cannot see the customer: the page shows
    only what invariant 4 allows, and the request form asks for reason and evidence."""
    user = _user(request)
    registration = selectors.collision_registration_for(user, pk)
    customer = registration.customer
    assert customer is not None
    form = AskForm(
        request.POST or None,
        initial={"evidence": registration.evidence},
    )
    if request.method == "POST" and form.is_valid():
        try:
            transfer = services.request_ask(
                actor=user,
                customer=customer,
                reason=form.cleaned_data["reason"],
                evidence=form.cleaned_data["evidence"],
            )
        except services.RequestInvalid as error:
            form.add_service_errors(error.errors)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _submitted_message(transfer))
            return redirect("request_detail", pk=transfer.pk)
    return render(
        request,
        "allocation/requests/ask_from_collision.html",
        {
            "customer": customer,
            "clock": ownership_selectors.clock_for(customer),
            "form": form,
            "registration": registration,
        },
    )


# --- Allocation (分配) ----------------------------------------------------------------------


def _team_or_none(request: HttpRequest, source: Any) -> Team | None:
    return selectors.allocation_team_for(_user(request), source.get("team"))


@role_required(Role.MANAGER)
@require_GET
def allocation_pool(request: HttpRequest) -> HttpResponse:
    """The pool as a manager allocates from it: filter, choose, ask for suggestions."""
    user = _user(request)
    team = _team_or_none(request, request.GET)
    filterset = PoolFilter(request.GET, queryset=selectors.team_pool(team))
    queryset = filterset.qs if filterset.is_valid() else selectors.team_pool(team).none()
    sort = request.GET.get("sort") or "-created"
    column = POOL_SORTS.get(sort.removeprefix("-"))
    if column is None:
        sort, column = "-created", "created_at"
    queryset = queryset.order_by(("-" if sort.startswith("-") else "") + column, "-id")
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    return render(
        request,
        "allocation/allocate/pool.html",
        {
            "team": team,
            "teams": selectors.allocation_teams(user),
            "filter": filterset,
            "page": page,
            "query": filters.urlencode(),
            "max_selection": selectors.MAX_SELECTION,
            "sort": sort,
        },
    )


@role_required(Role.MANAGER)
@require_GET
def allocation_suggest(request: HttpRequest) -> HttpResponse:
    """Suggested reps for the chosen pool customers, with every reason spelled out."""
    team = _team_or_none(request, request.GET)
    if team is None:
        messages.error(request, _("You do not manage any team yet."))
        return redirect("home")
    if request.GET.get("all"):
        filterset = PoolFilter(request.GET, queryset=selectors.team_pool(team))
        chosen = (
            list(filterset.qs.order_by("-created_at", "-id")[: selectors.MAX_SELECTION])
            if filterset.is_valid()
            else []
        )
    else:
        ids = [int(v) for v in request.GET.getlist("customer") if v.isdigit()]
        chosen = selectors.selected_pool_customers(ids, team)
    if not chosen:
        messages.error(request, _("Choose at least one customer from the pool."))
        return redirect(f"{reverse('allocation_pool')}?team={team.pk}")
    now = timezone.now()
    profiles = selectors.rep_profiles(team, now)
    rows = selectors.suggestions_for(chosen, profiles)
    build = _SuggestionRows(request, team)
    return render(
        request,
        "allocation/allocate/suggest.html",
        {
            "team": team,
            "rows": [build(row) for row in rows],
            "profiles": [
                {"profile": profile, "reasons": selectors.profile_reasons(profile)}
                for profile in profiles
            ],
            "customer_ids": [customer.pk for customer in chosen],
        },
    )


class _SuggestionRows:
    """One table row per customer: the customer and its "allocate to …" buttons with the
    reasons, as HTML.

    Built in Python rather than in the template: the page shows up to 200 customers x 3
    suggestions x their reasons, and these few thousand template nodes were most of the
    page's time (bench/allocation.py). Every text is escaped; the markup per rep is made
    once per page.
    """

    ROW = (
        '<tr id="allocate-{customer}"><td>{name}<div class="small text-body-secondary">'
        "{industry} {province}</div></td><td>{tier}</td><td>{cell}</td></tr>"
    )
    FORM = (
        '<form method="post" action="{url}" hx-post="{url}" hx-target="closest td" '
        'hx-swap="innerHTML"><input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
        '<input type="hidden" name="team" value="{team}">'
        '<input type="hidden" name="customer" value="{customer}">'
        '<ol class="list-unstyled mb-0">{items}</ol></form>'
    )
    ITEM = '<li class="mb-1">{button} <span class="small">{score}{reasons}</span></li>'
    BUTTON = (
        '<button class="btn btn-sm btn-outline-success" type="submit" name="rep" '
        'value="{rep}">{label}</button>'
    )

    def __init__(self, request: HttpRequest, team: Team) -> None:
        self.url = escape(reverse("allocation_one"))
        self.token = escape(get_token(request))
        self.team_id = team.pk
        self.allocate = _("Allocate to %(name)s")
        self.fit = _("fit score %(score)s")
        self.none = format_html(
            '<span class="text-body-secondary">{}</span>',
            _("No rep of the team has free capacity."),
        )
        self.buttons: dict[int, str] = {}

    def _button(self, rep: User) -> str:
        if rep.pk not in self.buttons:
            label = escape(self.allocate % {"name": rep})
            self.buttons[rep.pk] = self.BUTTON.format(rep=rep.pk, label=label)
        return self.buttons[rep.pk]

    def __call__(self, row: selectors.CustomerSuggestions) -> SafeString:
        customer = row.customer
        cell: str = self.none
        if row.suggestions:
            items = "".join(
                self.ITEM.format(
                    button=self._button(suggestion.profile.rep),
                    score=escape(self.fit % {"score": suggestion.score}),
                    reasons="".join(
                        ' · <span class="{}">{}</span>'.format(
                            "text-success" if reason.effect > 0 else "", escape(reason.text)
                        )
                        for reason in suggestion.reasons
                    ),
                )
                for suggestion in row.suggestions
            )
            cell = self.FORM.format(
                url=self.url,
                token=self.token,
                team=self.team_id,
                customer=customer.pk,
                items=items,
            )
        industry = customer.industry.name if customer.industry_id else ""  # type: ignore[union-attr]
        # Every interpolated text above and here went through escape().
        return mark_safe(
            self.ROW.format(
                customer=customer.pk,
                name=escape(customer.display_name),
                industry=escape(industry),
                province=escape(customer.province),
                tier=escape(customer.value_tier),
                cell=cell,
            )
        )


@role_required(Role.MANAGER)
@require_POST
def allocation_one(request: HttpRequest) -> HttpResponse:
    """Allocate one customer to one rep (from the suggestions; htmx answers with the row)."""
    user = _user(request)
    team = _team_or_none(request, request.POST)
    form = AllocateOneForm(request.POST)
    error = ""
    customer: Customer | None = None
    rep: User | None = None
    if team is None or not form.is_valid():
        error = _("Choose the customer and the rep.")
    else:
        customer = selectors.team_pool(team).filter(pk=form.cleaned_data["customer"]).first()
        rep = selectors.team_reps(team).filter(pk=form.cleaned_data["rep"]).first()
        if customer is None:
            error = _("This customer is no longer in the pool.")
        elif rep is None:
            error = _("Choose a rep of this team.")
        else:
            try:
                services.allocate_one(actor=user, team=team, customer=customer, rep=rep)
            except DomainError as failure:
                error = failure.message
    if getattr(request, "htmx", False):
        return render(
            request,
            "allocation/allocate/_allocated.html",
            {"customer": customer, "rep": rep, "error": error},
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request,
            _("%(customer)s was allocated to %(rep)s.") % {"customer": customer, "rep": rep},
        )
    return redirect(f"{reverse('allocation_pool')}?team={team.pk}" if team else "home")


@role_required(Role.MANAGER)
@require_POST
def allocation_bulk(request: HttpRequest) -> HttpResponse:
    """Bulk allocation: first the resulting distribution (preview), then on confirmation
    the same plan recomputed from current figures and carried out."""
    user = _user(request)
    team = _team_or_none(request, request.POST)
    form = BulkAllocationForm(request.POST)
    if team is None:
        raise PermissionDenied
    back = f"{reverse('allocation_pool')}?team={team.pk}"
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(back)
    data = form.cleaned_data
    customers = selectors.selected_pool_customers(data["customer"], team)
    if not customers:
        messages.error(request, _("None of the chosen customers is still in the pool."))
        return redirect(back)
    distribute = data["action"] == "distribute"
    if data["confirm"]:
        try:
            if distribute:
                outcome = services.distribute_pool_customers(
                    actor=user, team=team, customers=customers
                )
            else:
                reps = list(selectors.team_reps(team).filter(pk__in=data["rep"]))
                outcome = services.allocate_bulk(
                    actor=user, team=team, customers=customers, reps=reps
                )
        except DomainError as error:
            messages.error(request, error.message)
            return redirect(back)
        if outcome.allocated:
            messages.success(
                request,
                ngettext(
                    "%(count)d customer allocated.",
                    "%(count)d customers allocated.",
                    len(outcome.allocated),
                )
                % {"count": len(outcome.allocated)},
            )
        for customer, reason in outcome.refused:
            messages.error(request, f"{customer}: {reason}")
        if outcome.left_message:
            messages.warning(request, outcome.left_message)
        return redirect(back)
    if distribute:
        plan, profiles = selectors.distribution_plan(team, customers)
    else:
        plan, profiles = selectors.bulk_plan(team, customers, data["rep"])
    names = {customer.pk: customer for customer in customers}
    people = {profile.rep.pk: profile for profile in profiles}
    distribution = [
        {
            "profile": profile,
            "added": plan.tier_counts.get(profile.rep.pk, {}),
            "added_total": sum(plan.tier_counts.get(profile.rep.pk, {}).values()),
            "free_after": profile.free - sum(plan.tier_counts.get(profile.rep.pk, {}).values()),
        }
        for profile in profiles
    ]
    return render(
        request,
        "allocation/allocate/preview.html",
        {
            "team": team,
            "distribute": distribute,
            "distribution": distribution,
            "assignments": [
                (names[cid], people[rid].rep) for cid, rid in plan.assignments if rid in people
            ],
            "left_over": [names[cid] for cid in plan.left_over],
            "customer_ids": [customer.pk for customer in customers],
            "rep_ids": data["rep"],
            "tiers": TIERS,
        },
    )


@role_required(Role.MANAGER)
@require_GET
def team_overview(request: HttpRequest) -> HttpResponse:
    """The manager's team at a glance, with links into allocation and approvals."""
    user = _user(request)
    team = _team_or_none(request, request.GET)
    rows, pool_size = selectors.team_overview(team, timezone.now()) if team else ([], 0)
    return render(
        request,
        "allocation/team_overview.html",
        {
            "team": team,
            "teams": selectors.allocation_teams(user),
            "rows": rows,
            "pool_size": pool_size,
            "queue_size": selectors.approval_queue(user).count(),
            "registrations_size": selectors.registration_queue(user).count(),
            "tiers": TIERS,
        },
    )
