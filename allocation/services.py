"""Writes of the allocation app.

- Registration (报备): first entry wins, race-free. The customer row and its ownership are
  created in one transaction; identity advisory locks and unique constraints decide the race.
- Reassignment requests (转移申请): one transition function over an explicit table; an
  approved request moves the customer through the ownership writer.
- Allocation (分配) from the pool: one by one, in bulk balanced by value tier, or
  distributed automatically by free capacity; always through the ownership writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from allocation import selectors
from allocation.models import (
    OPEN_STATES,
    REGISTRATION_TRANSITIONS,
    AllocationBatch,
    AllocationMethod,
    HistoryAction,
    ReassignmentRequest,
    Registration,
    RegistrationOutcome,
    RequestHistory,
    RequestKind,
    RequestState,
)
from crm import rows
from crm import services as crm_services
from crm.duplicates import DuplicateMatch
from crm.errors import DomainError
from crm.models import Customer, Industry, Role, Team, User
from crm.notifications import notify
from crm.selectors import customers_changeable_by
from ownership import services as ownership
from ownership.models import OutOfTerritoryPolicy
from ownership.selectors import policy_for_owner
from ownership.territories import selectors as territories
from ownership.territories.rules import Resolution

SOFT_MATCH = "soft_match"


@dataclass(frozen=True)
class RegistrationForm:
    display_name: str
    credit_code: str = ""
    address: str = ""
    phone: str = ""
    industry: Industry | None = None
    size_band: str = ""
    source: str = "other"
    first_contact_name: str = ""
    first_contact_phone: str = ""
    evidence: str = ""


@dataclass
class RegistrationResult:
    outcome: str
    customer: Customer | None = None
    registration: Registration | None = None
    matches: list[DuplicateMatch] = field(default_factory=list)
    owned: int = 0
    cap: int = 0
    message: str = ""
    # awaiting: the earlier registration that waits for approval.
    pending: Registration | None = None
    # in_pool: whether the rep may claim it (it may be another team's pool), and whose pool.
    claimable: bool = True
    pool: str = ""


def _record(
    *,
    actor: User,
    form: RegistrationForm,
    outcome: str,
    submitted_at: Any,
    customer: Customer | None,
    shown: Iterable[DuplicateMatch] = (),
    confirmed: bool = False,
    resolution: Resolution | None = None,
) -> Registration:
    registration = Registration(
        rep=actor,
        submitted_at=submitted_at,
        outcome=outcome,
        customer=customer,
        entered_name=form.display_name[:200],
        entered_credit_code=form.credit_code[:32],
        entered_phone=form.phone[:32],
        entered_address=form.address[:255],
        first_contact_name=form.first_contact_name[:100],
        first_contact_phone=form.first_contact_phone[:32],
        evidence=form.evidence,
        soft_matches_shown=[
            {
                "customer_id": m.customer.pk,
                "name": m.customer.display_name,
                "score": m.score,
                "reasons": m.reasons,
            }
            for m in shown
        ],
        confirmed_different=confirmed,
        territory_id=resolution.territory_id if resolution else None,
        territory_label=resolution.territory_label[:300] if resolution else "",
    )
    rows.insert(registration)
    if resolution is not None and resolution.team_ids:
        registration.responsible_teams.set(resolution.team_ids)
    return registration


def _territory_policy(actor: User, resolution: Resolution | None) -> str:
    """What a registration by `actor` does under the territory rules: allow (as without
    territories), approval or route. Only a rep whose team (or a team above it) is not
    responsible for the customer's territory meets the territory's policy."""
    if resolution is None or territories.user_team_covers(actor, resolution):
        return OutOfTerritoryPolicy.ALLOW
    return resolution.policy or OutOfTerritoryPolicy.ALLOW


def _teams_label(team_ids: Iterable[int]) -> str:
    ids = list(team_ids)
    teams = territories.teams_by_id(ids)
    return _("、").join(teams[pk].name for pk in ids if pk in teams)


def _pool_of(team_ids: Iterable[int]) -> str:
    label = _teams_label(team_ids)
    if not label:
        return _("the national pool")
    return _("the pool of %(teams)s") % {"teams": label}


def registration_submit(
    *,
    actor: User,
    form: RegistrationForm,
    confirmed_distinct: Iterable[int] = (),
) -> RegistrationResult:
    """Register a customer for `actor`. Outcomes: registered, collision (someone else owns
    it), in_pool (continue as a claim), own, soft_match (confirm "a different company"),
    cap_reached; and, outside the rep's team's territory (ownership.territories): pending
    (created, not owned, held out of the pool until a manager of the responsible team
    decides), routed (created in the responsible team's pool) or awaiting (another rep's
    registration of the company is pending). Bad input raises
    crm.services.CustomerInvalid; nothing is half saved."""
    # One rule set answers for the whole registration: the form's facts are resolved here,
    # and the created customer's (the same facts) again by the territory receiver of crm's
    # signal, which then neither asks which set is in force nor sees another one.
    with territories.rule_set_pinned():
        return _submit(actor=actor, form=form, confirmed=list(confirmed_distinct))


def _submit(*, actor: User, form: RegistrationForm, confirmed: list[int]) -> RegistrationResult:
    submitted_at = timezone.now()
    resolution = territories.resolve(
        territories.facts_of_form(
            address=form.address, industry=form.industry, size_band=form.size_band
        )
    )
    territory_policy = _territory_policy(actor, resolution)
    # The rep stays locked to the end: their holding, counted once here, cannot change
    # meanwhile, and ownership_register below reuses the lock, the policy and the count.
    with ownership.rep_locked(actor) as locked:
        try:
            # A routed customer is never the rep's: their cap does not matter. A pending
            # one would be: the cap applies now and again at approval.
            if territory_policy != OutOfTerritoryPolicy.ROUTE:
                locked.check_holding_cap()
        except ownership.HoldingCapReached as error:
            return RegistrationResult(
                outcome=RegistrationOutcome.CAP_REACHED,
                owned=error.owned,
                cap=error.cap,
                message=error.message,
            )
        try:
            customer = crm_services.customer_create(
                actor=actor,
                display_name=form.display_name,
                credit_code=form.credit_code,
                address=form.address,
                phone=form.phone,
                industry=form.industry,
                size_band=form.size_band,
                source=form.source,
                confirmed_distinct=confirmed,
            )
        except crm_services.DuplicateCustomer as duplicate:
            return _existing(actor=actor, form=form, submitted_at=submitted_at, error=duplicate)
        except crm_services.PossibleDuplicate as possible:
            return RegistrationResult(outcome=SOFT_MATCH, matches=possible.matches)
        if form.first_contact_name.strip():
            crm_services.contact_add(
                actor=actor,
                customer=customer,
                name=form.first_contact_name,
                mobile=form.first_contact_phone,
            )
        shown = _confirmed_matches(customer, confirmed)
        if territory_policy != OutOfTerritoryPolicy.ALLOW:
            assert resolution is not None
            registration = _record(
                actor=actor,
                form=form,
                outcome=RegistrationOutcome.PENDING
                if territory_policy == OutOfTerritoryPolicy.APPROVAL
                else RegistrationOutcome.ROUTED,
                submitted_at=submitted_at,
                customer=customer,
                shown=shown,
                confirmed=bool(confirmed),
                resolution=resolution,
            )
            if registration.outcome == RegistrationOutcome.PENDING:
                _notify_registration_pending(registration, resolution)
                return RegistrationResult(
                    outcome=RegistrationOutcome.PENDING,
                    customer=customer,
                    registration=registration,
                )
            pool = _pool_of(resolution.team_ids)
            registration.ledger_event = ownership.ownership_pool_entry(
                actor=actor,
                customer=customer,
                reason=_(
                    "Registered by %(rep)s outside their team's territory: routed to %(pool)s "
                    "(%(territory)s)."
                )
                % {"rep": actor, "pool": pool, "territory": resolution.territory_label},
                cause=registration,
            )
            registration.save(update_fields=["ledger_event"])
            return RegistrationResult(
                outcome=RegistrationOutcome.ROUTED,
                customer=customer,
                registration=registration,
                pool=pool,
            )
        registration = _record(
            actor=actor,
            form=form,
            outcome=RegistrationOutcome.REGISTERED,
            submitted_at=submitted_at,
            customer=customer,
            shown=shown,
            confirmed=bool(confirmed),
        )
        event = ownership.ownership_register(
            actor=actor,
            customer=customer,
            evidence=form.evidence,
            cause=registration,
            locked=locked,
            created_here=True,
        )
        return RegistrationResult(
            outcome=RegistrationOutcome.REGISTERED,
            customer=event.customer,
            registration=registration,
        )


def _confirmed_matches(customer: Customer, confirmed: list[int]) -> list[DuplicateMatch]:
    from crm.models import PossibleDuplicate

    if not confirmed:
        return []
    records = PossibleDuplicate.objects.filter(customer=customer, candidate_id__in=confirmed)
    return [
        DuplicateMatch(customer=row.candidate, tier="soft", score=row.score, reasons=row.reasons)
        for row in records.select_related("candidate")
    ]


def _existing(
    *, actor: User, form: RegistrationForm, submitted_at: Any, error: Any
) -> RegistrationResult:
    match: DuplicateMatch = error.matches[0]
    customer = match.customer
    pending = selectors.pending_registration_of(customer) if customer.owner_id is None else None
    claimable = True
    pool = ""
    if pending is not None:
        # Invariant 4: who registered it, their team and when; nothing of the customer.
        outcome = RegistrationOutcome.AWAITING
        if pending.rep_id == actor.pk:
            message = _("Your registration of this customer awaits approval.")
        else:
            message = _("Registered by %(rep)s on %(date)s, awaiting approval.") % {
                "rep": pending.rep,
                "date": date_format(timezone.localtime(pending.submitted_at), "DATE_FORMAT"),
            }
    elif customer.owner_id is None:
        outcome = RegistrationOutcome.IN_POOL
        claimable = selectors.in_pool_of(actor, customer)
        pool = selectors.pool_label(customer)
        if claimable:
            message = _("This customer is in the public pool; you can claim it.")
        else:
            message = _("This customer is in %(pool)s; only that team's reps can claim it.") % {
                "pool": pool
            }
    elif customer.owner_id == actor.pk:
        outcome = RegistrationOutcome.OWN
        message = _("You already own this customer.")
    else:
        outcome = RegistrationOutcome.COLLISION
        message = _("This customer is already owned by %(owner)s.") % {"owner": customer.owner}
    registration = _record(
        actor=actor, form=form, outcome=outcome, submitted_at=submitted_at, customer=customer
    )
    return RegistrationResult(
        outcome=outcome,
        customer=customer,
        registration=registration,
        matches=error.matches,
        message=message,
        pending=pending,
        claimable=claimable,
        pool=pool,
    )


# --- Registrations held back by a territory: approval or rejection -----------------------


class RegistrationError(DomainError):
    pass


class RegistrationNotAllowed(RegistrationError):
    pass


class RegistrationAlreadyDecided(RegistrationError):
    """A change the transition table does not allow (deciding twice)."""


class RegistrationRepAtCap(RegistrationError):
    pass


DEFAULT_PENDING_REGISTRATION_DAYS = 7


def pending_registration_days() -> int:
    """Days a pending registration may wait before the queue marks it overdue (setting
    PENDING_REGISTRATION_DAYS). Nothing expires: the precedence is the rep's and only a
    manager's decision settles it."""
    return int(getattr(settings, "PENDING_REGISTRATION_DAYS", DEFAULT_PENDING_REGISTRATION_DAYS))


def pending_hold_message(customer: Customer) -> str:
    """Why a pending registration's customer cannot be claimed or allocated."""
    return _(
        "%(customer)s is not in the pool: its registration awaits approval by a manager of "
        "the responsible team."
    ) % {"customer": customer}


def check_registration_transition(from_outcome: str, to_outcome: str) -> None:
    if to_outcome not in REGISTRATION_TRANSITIONS.get(from_outcome, frozenset()):
        raise RegistrationAlreadyDecided(
            _("This registration no longer awaits approval: %(outcome)s.")
            % {"outcome": RegistrationOutcome(from_outcome).label}
        )


def registration_transition(
    *, registration_id: int, to_outcome: str, actor: User, reason: str
) -> Registration:
    """THE change of a pending registration: lock the row, refuse what the table does not
    allow, then settle the customer through the ownership writer in the same transaction —
    to the rep (approved: ledger `registered`) or into the responsible team's pool
    (rejected: ledger `released` from nobody). That ledger event, with this registration as
    its cause, is the decision's history row; the registration points to it."""
    with transaction.atomic():
        locked = (
            Registration.objects.select_for_update(of=("self",))
            .select_related("rep", "customer")
            .get(pk=registration_id)
        )
        check_registration_transition(locked.outcome, to_outcome)
        customer = locked.customer
        assert customer is not None  # a pending registration always has its customer
        # The hold ends with the pending outcome: written first, so that the writer below
        # (which refuses held customers) sees the customer free in this transaction.
        locked.outcome = to_outcome
        locked.save(update_fields=["outcome"])
        if to_outcome == RegistrationOutcome.REGISTERED:
            event = ownership.ownership_register(
                actor=actor, owner=locked.rep, customer=customer, evidence=reason, cause=locked
            )
        else:
            event = ownership.ownership_pool_entry(
                actor=actor, customer=customer, reason=reason, cause=locked
            )
        locked.ledger_event = event
        locked.save(update_fields=["ledger_event"])
        return locked


def _decidable(actor: User, registration: Registration) -> None:
    if not selectors.can_decide_registration(actor, registration):
        raise RegistrationNotAllowed(_("You cannot decide on this registration."))


def registration_approve(
    *, actor: User, registration: Registration, note: str = ""
) -> Registration:
    """A manager of the responsible team approves: the rep owns the customer from now (the
    registration keeps its earlier precedence time). The rep's holding cap applies now;
    at the cap, nothing changes and the registration stays pending."""
    _decidable(actor, registration)
    note = (note or "").strip()
    reason = _("Registration of %(date)s approved by %(manager)s for %(territory)s.") % {
        "date": date_format(timezone.localtime(registration.submitted_at), "DATETIME_FORMAT"),
        "manager": actor,
        "territory": registration.territory_label,
    }
    if note:
        reason = f"{reason} {note}"
    with transaction.atomic():
        try:
            decided = registration_transition(
                registration_id=registration.pk,
                to_outcome=RegistrationOutcome.REGISTERED,
                actor=actor,
                reason=reason,
            )
        except ownership.HoldingCapReached as error:
            raise RegistrationRepAtCap(
                _(
                    "Not approved: %(name)s already owns %(owned)d customers and the holding "
                    "cap is %(cap)d. The registration stays pending: reject it, or approve "
                    "once %(name)s has room."
                )
                % {"name": registration.rep, "owned": error.owned, "cap": error.cap}
            ) from error
        _notify_registration_decided(decided, actor, note)
        return decided


def registration_reject(*, actor: User, registration: Registration, note: str) -> Registration:
    """A manager of the responsible team rejects, saying why: the customer enters that team's
    pool (a ledger entry records it) and the rep is told."""
    _decidable(actor, registration)
    note = (note or "").strip()
    if not note:
        raise RegistrationError(_("Say why you reject the registration."))
    teams = list(registration.responsible_teams.values_list("pk", flat=True))
    reason = _(
        "Registration by %(rep)s rejected by %(manager)s; the customer is in %(pool)s. "
        "Reason: %(note)s"
    ) % {"rep": registration.rep, "manager": actor, "note": note, "pool": _pool_of(teams)}
    with transaction.atomic():
        decided = registration_transition(
            registration_id=registration.pk,
            to_outcome=RegistrationOutcome.REJECTED,
            actor=actor,
            reason=reason,
        )
        _notify_registration_decided(decided, actor, note)
        return decided


def _registration_deciders(team_ids: Iterable[int]) -> list[User]:
    """The managers of the responsible teams (and above); administrators when none."""
    managers = list(territories.managers_of(team_ids))
    if managers:
        return managers
    return list(User.objects.filter(role=Role.ADMIN, is_active=True))


def _notify_registration_pending(registration: Registration, resolution: Resolution) -> None:
    notify(
        recipients=[
            person
            for person in _registration_deciders(resolution.team_ids)
            if person.pk != registration.rep_id
        ],
        kind="registration_to_approve",
        context={
            "registration": registration,
            "rep": registration.rep,
            "team": registration.rep.team,
            "territory": registration.territory_label,
            "teams": _teams_label(resolution.team_ids),
            "days": pending_registration_days(),
        },
        url=reverse("registration_queue"),
        dedup_key=f"registration:{registration.pk}",
    )


def _notify_registration_decided(registration: Registration, actor: User, note: str) -> None:
    teams = list(registration.responsible_teams.values_list("pk", flat=True))
    notify(
        recipients=[registration.rep] if registration.rep_id != actor.pk else [],
        kind="registration_decided",
        context={
            "registration": registration,
            "actor": actor,
            "note": note,
            "pool": _pool_of(teams),
        },
        url=reverse("registration_outcome", args=[registration.pk]),
        dedup_key=f"registration:{registration.pk}:{registration.outcome}",
    )


# --- Reassignment requests (转移申请) ------------------------------------------------------


class ReassignmentError(DomainError):
    pass


class IllegalTransition(ReassignmentError):
    """A move the transition table does not allow (e.g. approving a withdrawn request)."""

    def __init__(self, message: str, *, from_state: str, to_state: str) -> None:
        super().__init__(message)
        self.from_state = from_state
        self.to_state = to_state


class OpenRequestExists(ReassignmentError):
    pass


class NotAllowed(ReassignmentError):
    pass


class ReceiverAtCap(ReassignmentError):
    pass


class RequestInvalid(ReassignmentError):
    """Bad input: `errors` maps form fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


# The only legal moves. Everything else raises IllegalTransition.
TRANSITIONS: dict[str, frozenset[str]] = {
    RequestState.PENDING: frozenset(
        {
            RequestState.APPROVED,
            RequestState.REJECTED,
            RequestState.WITHDRAWN,
            RequestState.EXPIRED,
        }
    ),
    RequestState.APPROVED: frozenset({RequestState.APPLIED}),
    RequestState.REJECTED: frozenset(),
    RequestState.WITHDRAWN: frozenset(),
    RequestState.EXPIRED: frozenset(),
    RequestState.APPLIED: frozenset(),
}
# States that end the wait for a decision (decided_at is set on entering them).
DECIDED_STATES = frozenset(
    {RequestState.APPROVED, RequestState.REJECTED, RequestState.WITHDRAWN, RequestState.EXPIRED}
)
TRANSITION_ACTIONS: dict[str, str] = {
    RequestState.APPROVED: HistoryAction.APPROVED,
    RequestState.REJECTED: HistoryAction.REJECTED,
    RequestState.WITHDRAWN: HistoryAction.WITHDRAWN,
    RequestState.EXPIRED: HistoryAction.EXPIRED,
    RequestState.APPLIED: HistoryAction.APPLIED,
}
DEFAULT_EXPIRY_DAYS = 14


def request_expiry_days() -> int:
    """Days a request may wait for its approvals (setting REASSIGNMENT_REQUEST_EXPIRY_DAYS)."""
    return int(getattr(settings, "REASSIGNMENT_REQUEST_EXPIRY_DAYS", DEFAULT_EXPIRY_DAYS))


def check_transition(from_state: str, to_state: str) -> None:
    if to_state not in TRANSITIONS.get(from_state, frozenset()):
        raise IllegalTransition(
            _("This request is %(state)s; it cannot become %(target)s.")
            % {
                "state": RequestState(from_state).label,
                "target": RequestState(to_state).label,
            },
            from_state=from_state,
            to_state=to_state,
        )


def request_transition(
    *,
    request_id: int,
    to_state: str,
    actor: User | None,
    comment: str = "",
    now: datetime | None = None,
) -> tuple[ReassignmentRequest, bool]:
    """THE state change of a request: lock the row, no-op when already in `to_state`,
    refuse what the table does not allow, write the history row in the same transaction.
    Returns the request and whether anything changed."""
    now = now or timezone.now()
    with transaction.atomic():
        request = ReassignmentRequest.objects.select_for_update().get(pk=request_id)
        if request.state == to_state:
            return request, False
        check_transition(request.state, to_state)
        from_state = request.state
        request.state = to_state
        fields = ["state"]
        if to_state in DECIDED_STATES:
            request.decided_at = now
            fields.append("decided_at")
        request.save(update_fields=fields)
        RequestHistory.objects.create(
            request=request,
            from_state=from_state,
            to_state=to_state,
            action=TRANSITION_ACTIONS[to_state],
            actor=actor,
            comment=comment,
            at=now,
        )
        return request, True


def _lock_request(request_id: int) -> ReassignmentRequest:
    return (
        ReassignmentRequest.objects.select_for_update(of=("self",))
        .select_related("customer", "from_owner", "to_rep", "source_team", "target_team")
        .get(pk=request_id)
    )


def _request_url(request: ReassignmentRequest) -> str:
    return reverse("request_detail", args=[request.pk])


def _approvers_due(request: ReassignmentRequest) -> list[User]:
    people = []
    for side in sorted(request.missing_sides()):
        team = request.source_team if side == "source" else request.target_team
        manager = selectors.team_manager(team)
        if manager is not None:
            people.append(manager)
    return people


def _notify_submitted(request: ReassignmentRequest, actor: User) -> None:
    if request.state != RequestState.PENDING:
        return
    approvers = [person for person in _approvers_due(request) if person.pk != actor.pk]
    context = {"transfer": request}
    notify(
        recipients=approvers,
        kind="reassignment_to_approve",
        context=context,
        url=_request_url(request),
        dedup_key=f"request:{request.pk}",
    )
    approver_ids = {person.pk for person in approvers}
    parties = [
        person
        for person in (request.from_owner, request.to_rep)
        if person.pk != actor.pk and person.pk not in approver_ids
    ]
    notify(
        recipients=parties,
        kind="reassignment_submitted",
        context=context,
        url=_request_url(request),
        dedup_key=f"request:{request.pk}",
    )


def _notify_decided(request: ReassignmentRequest, actor: User | None, comment: str = "") -> None:
    """Everyone involved learns the outcome once (per outcome), in their language."""
    people: dict[int, User] = {}
    candidates = [
        request.requested_by,
        request.from_owner,
        request.to_rep,
        request.source_approved_by,
        request.target_approved_by,
        selectors.team_manager(request.source_team),
    ]
    if request.needs_target_approval:
        candidates.append(selectors.team_manager(request.target_team))
    for person in candidates:
        if person is not None and (actor is None or person.pk != actor.pk):
            people[person.pk] = person
    notify(
        recipients=people.values(),
        kind="reassignment_decided",
        context={"transfer": request, "actor": actor, "comment": comment},
        url=_request_url(request),
        dedup_key=f"request:{request.pk}:{request.state}",
    )


def _record_approvals(
    request: ReassignmentRequest, *, actor: User, sides: set[str], comment: str, now: datetime
) -> None:
    fields: list[str] = []
    for side in sorted(sides):
        setattr(request, f"{side}_approved_by", actor)
        setattr(request, f"{side}_approved_at", now)
        fields += [f"{side}_approved_by", f"{side}_approved_at"]
        RequestHistory.objects.create(
            request=request,
            from_state=request.state,
            to_state=request.state,
            action=HistoryAction.APPROVED_SOURCE
            if side == "source"
            else HistoryAction.APPROVED_TARGET,
            actor=actor,
            comment=comment,
            at=now,
        )
    request.save(update_fields=fields)


def _apply(
    request: ReassignmentRequest, *, actor: User, comment: str, now: datetime
) -> ReassignmentRequest:
    """All approvals are in: approved → the ownership writer moves the customer (ledger
    kind `transferred`, cause = this request, clock restarts) → applied. One transaction:
    a refusal (cap, owner changed, receiver leaving) undoes the approval too."""
    request_transition(
        request_id=request.pk, to_state=RequestState.APPROVED, actor=actor, comment=comment, now=now
    )
    to_rep = request.to_rep
    policy = policy_for_owner(to_rep)
    owned = ownership.owned_count(to_rep, policy)
    if owned + 1 > policy.max_owned:
        raise ReceiverAtCap(
            _(
                "Not approved: %(name)s already owns %(owned)d customers and the holding cap is "
                "%(cap)d. The request stays pending: reject it, or approve once %(name)s has "
                "room."
            )
            % {"name": to_rep, "owned": owned, "cap": policy.max_owned}
        )
    event = ownership.ownership_transfer(
        actor=actor,
        customer=request.customer,
        to_rep=to_rep,
        reason=request.reason,
        cause=request,
        from_owner=request.from_owner,
    )
    request.applied_event = event
    request.save(update_fields=["applied_event"])
    applied, _changed = request_transition(
        request_id=request.pk, to_state=RequestState.APPLIED, actor=actor, now=now
    )
    return applied


def _request_create(
    *,
    actor: User,
    customer: Customer,
    kind: str,
    to_rep: User,
    reason: str,
    evidence: str = "",
    expected_owner: User | None = None,
    now: datetime | None = None,
) -> ReassignmentRequest:
    now = now or timezone.now()
    reason = (reason or "").strip()
    evidence = (evidence or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = _("Say why the customer should change owner.")
    if kind == RequestKind.ASK and not evidence:
        errors["evidence"] = _(
            "Describe your evidence: when and how you were in contact with this customer."
        )
    if errors:
        raise RequestInvalid(errors)
    locked = (
        Customer.objects.select_for_update(of=("self",))
        .select_related("owner", "owner__team")
        .get(pk=customer.pk)
    )
    if locked.merged_into_id is not None:
        raise NotAllowed(_("This customer record was merged into another one."))
    current = locked.owner
    if current is None:
        raise NotAllowed(
            _("%(customer)s is in the public pool: claim it there, no transfer is needed.")
            % {"customer": locked}
        )
    if expected_owner is not None and current.pk != expected_owner.pk:
        raise NotAllowed(_("Only the owner can offer this customer to a colleague."))
    if current.pk == to_rep.pk:
        raise NotAllowed(_("%(name)s already owns this customer.") % {"name": to_rep})
    ownership.check_eligible_owner(to_rep)
    ownership.check_not_departing(to_rep)
    open_request = ReassignmentRequest.objects.filter(customer=locked, state__in=OPEN_STATES)
    if open_request.exists():
        raise OpenRequestExists(
            _(
                "There is already an open request for this customer; wait for its decision "
                "or for it to expire."
            )
        )
    source_team = current.team
    target_team = to_rep.team
    request = ReassignmentRequest(
        customer=locked,
        kind=kind,
        requested_by=actor,
        from_owner=current,
        to_rep=to_rep,
        source_team=source_team,
        target_team=target_team,
        needs_target_approval=(source_team.pk if source_team else None)
        != (target_team.pk if target_team else None),
        reason=reason,
        evidence=evidence,
        created_at=now,
        expires_at=now + timedelta(days=request_expiry_days()),
    )
    try:
        with transaction.atomic():
            request.save(force_insert=True)
    except IntegrityError as error:
        # The partial unique index decided a race the check above could not see.
        raise OpenRequestExists(_("There is already an open request for this customer.")) from error
    RequestHistory.objects.create(
        request=request,
        from_state="",
        to_state=RequestState.PENDING,
        action=HistoryAction.SUBMITTED,
        actor=actor,
        comment=reason,
        at=now,
    )
    return request


def request_offer(
    *, actor: User, customer: Customer, to_rep: User, reason: str, now: datetime | None = None
) -> ReassignmentRequest:
    """The owner offers a customer to a colleague; the managers approve."""
    with transaction.atomic():
        request = _request_create(
            actor=actor,
            customer=customer,
            kind=RequestKind.OFFER,
            to_rep=to_rep,
            reason=reason,
            expected_owner=actor,
            now=now,
        )
        _notify_submitted(request, actor)
        return request


def request_ask(
    *,
    actor: User,
    customer: Customer,
    reason: str,
    evidence: str,
    now: datetime | None = None,
) -> ReassignmentRequest:
    """A rep asks for a customer owned by someone else (from the collision page or the
    customer page), with a reason and evidence."""
    if not actor.is_rep:
        raise NotAllowed(_("Only sales reps can ask for a customer."))
    with transaction.atomic():
        request = _request_create(
            actor=actor,
            customer=customer,
            kind=RequestKind.ASK,
            to_rep=actor,
            reason=reason,
            evidence=evidence,
            now=now,
        )
        _notify_submitted(request, actor)
        return request


def request_move(
    *,
    actor: User,
    customer: Customer,
    to_rep: User,
    reason: str,
    now: datetime | None = None,
) -> ReassignmentRequest:
    """A manager moves a customer of their teams to another rep. Within the teams they
    manage it is approved implicitly (and applied at once), yet recorded like any other;
    into another team it waits for that team's manager."""
    now = now or timezone.now()
    if not (actor.is_manager or actor.is_crm_admin):
        raise NotAllowed(_("Only managers can move customers between reps."))
    if not customers_changeable_by(actor).filter(pk=customer.pk).exists():
        raise NotAllowed(_("You can only move customers of the teams you manage."))
    with transaction.atomic():
        request = _request_create(
            actor=actor,
            customer=customer,
            kind=RequestKind.MOVE,
            to_rep=to_rep,
            reason=reason,
            now=now,
        )
        sides = selectors.approval_sides(actor, request) & request.missing_sides()
        if sides:
            _record_approvals(request, actor=actor, sides=sides, comment="", now=now)
        if not request.missing_sides():
            request = _apply(request, actor=actor, comment="", now=now)
            _notify_decided(request, actor)
        else:
            _notify_submitted(request, actor)
        return request


def request_approve(
    *, actor: User, request: ReassignmentRequest, comment: str = "", now: datetime | None = None
) -> ReassignmentRequest:
    """Record the actor's approval(s); when none is missing any more, apply the transfer.
    The receiving rep's holding cap is checked here, at approval time."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock_request(request.pk)
        sides = selectors.approval_sides(actor, locked)
        if not sides:
            raise NotAllowed(_("You cannot approve this request."))
        check_transition(locked.state, RequestState.APPROVED)
        due = sides & locked.missing_sides()
        if not due:
            raise NotAllowed(
                _("You have already approved this request; it waits for the other team's manager.")
            )
        _record_approvals(locked, actor=actor, sides=due, comment=comment.strip(), now=now)
        if locked.missing_sides():
            return locked
        applied = _apply(locked, actor=actor, comment=comment.strip(), now=now)
        _notify_decided(applied, actor, comment.strip())
        return applied


def request_reject(
    *, actor: User, request: ReassignmentRequest, comment: str, now: datetime | None = None
) -> ReassignmentRequest:
    if not (comment or "").strip():
        raise RequestInvalid({"comment": _("Say why you reject the request.")})
    with transaction.atomic():
        locked = _lock_request(request.pk)
        if not selectors.approval_sides(actor, locked):
            raise NotAllowed(_("You cannot reject this request."))
        rejected, _changed = request_transition(
            request_id=locked.pk,
            to_state=RequestState.REJECTED,
            actor=actor,
            comment=comment.strip(),
            now=now,
        )
        _notify_decided(rejected, actor, comment.strip())
        return rejected


def request_withdraw(
    *, actor: User, request: ReassignmentRequest, comment: str = "", now: datetime | None = None
) -> ReassignmentRequest:
    with transaction.atomic():
        locked = _lock_request(request.pk)
        if locked.requested_by_id != actor.pk:
            raise NotAllowed(_("Only the person who made the request can withdraw it."))
        withdrawn, _changed = request_transition(
            request_id=locked.pk,
            to_state=RequestState.WITHDRAWN,
            actor=actor,
            comment=(comment or "").strip(),
            now=now,
        )
        _notify_decided(withdrawn, actor, (comment or "").strip())
        return withdrawn


@dataclass
class BulkApproval:
    done: list[ReassignmentRequest] = field(default_factory=list)
    refused: list[tuple[ReassignmentRequest, str]] = field(default_factory=list)


def requests_approve_many(
    *, actor: User, requests: Iterable[ReassignmentRequest], comment: str = ""
) -> BulkApproval:
    """Approve several; each in its own transaction, so one refusal leaves the others."""
    outcome = BulkApproval()
    for request in requests:
        try:
            outcome.done.append(request_approve(actor=actor, request=request, comment=comment))
        except DomainError as error:
            outcome.refused.append((request, error.message))
    return outcome


def requests_expire(*, now: datetime) -> int:
    """Expire every pending request past its date: one set-based UPDATE and one bulk
    INSERT of history rows, in one transaction. Idempotent (a second run finds nothing)
    and safe to run twice at once (rows locked by the other run are skipped)."""
    check_transition(RequestState.PENDING, RequestState.EXPIRED)
    with transaction.atomic():
        due = list(
            ReassignmentRequest.objects.select_for_update(skip_locked=True)
            .filter(state=RequestState.PENDING, expires_at__lte=now)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not due:
            return 0
        ReassignmentRequest.objects.filter(pk__in=due, state=RequestState.PENDING).update(
            state=RequestState.EXPIRED, decided_at=now
        )
        RequestHistory.objects.bulk_create(
            RequestHistory(
                request_id=pk,
                from_state=RequestState.PENDING,
                to_state=RequestState.EXPIRED,
                action=HistoryAction.EXPIRED,
                actor=None,
                at=now,
            )
            for pk in due
        )
        expired = ReassignmentRequest.objects.filter(pk__in=due).select_related(
            "customer",
            "requested_by",
            "from_owner",
            "to_rep",
            "source_team",
            "target_team",
            "source_approved_by",
            "target_approved_by",
        )
        for request in expired:
            _notify_decided(request, None)
        return len(due)


# --- Allocation from the pool (分配) -------------------------------------------------------


class AllocationError(DomainError):
    pass


@dataclass
class AllocationOutcome:
    batch: AllocationBatch | None = None
    allocated: list[tuple[Customer, User]] = field(default_factory=list)
    refused: list[tuple[Customer, str]] = field(default_factory=list)
    left_in_pool: list[Customer] = field(default_factory=list)

    @property
    def left_message(self) -> str:
        if not self.left_in_pool:
            return ""
        return ngettext(
            "%(count)d customer stays in the pool: no rep has free capacity for it.",
            "%(count)d customers stay in the pool: no rep has free capacity for them.",
            len(self.left_in_pool),
        ) % {"count": len(self.left_in_pool)}


def _check_allocator(actor: User, team: Team) -> set[int]:
    """The rep ids `actor` may allocate to in `team` (NotAllowed if none of their teams)."""
    if not selectors.allocation_teams(actor).filter(pk=team.pk).exists():
        raise NotAllowed(_("You cannot allocate customers for this team."))
    return set(selectors.team_reps(team).values_list("pk", flat=True))


def _notify_allocated(batch: AllocationBatch, allocated: list[tuple[Customer, User]]) -> None:
    by_rep: dict[int, list[Customer]] = {}
    reps: dict[int, User] = {}
    for customer, rep in allocated:
        by_rep.setdefault(rep.pk, []).append(customer)
        reps[rep.pk] = rep
    for rep_id, customers in by_rep.items():
        notify(
            recipients=[reps[rep_id]],
            kind="customers_allocated",
            context={
                "actor": batch.actor,
                "count": len(customers),
                "names": [customer.display_name for customer in customers[:10]],
                "more": max(0, len(customers) - 10),
            },
            url=reverse("home"),
            dedup_key=f"allocation:{batch.pk}",
        )


def allocate_one(*, actor: User, team: Team, customer: Customer, rep: User) -> AllocationBatch:
    """Give one pool customer to one rep of the team (ledger kind `allocated`)."""
    rep_ids = _check_allocator(actor, team)
    if rep.pk not in rep_ids:
        raise NotAllowed(_("%(name)s is not a rep of this team.") % {"name": rep})
    with transaction.atomic():
        batch = AllocationBatch.objects.create(
            actor=actor, team=team, method=AllocationMethod.MANUAL, requested=1, allocated=1
        )
        ownership.ownership_allocate(
            actor=actor,
            customer=customer,
            to_rep=rep,
            reason=str(AllocationMethod.MANUAL.label),
            cause=batch,
        )
        _notify_allocated(batch, [(customer, rep)])
    return batch


def allocate_customers(
    *,
    actor: User,
    team: Team,
    assignments: Sequence[tuple[Customer, User]],
    method: str,
    left_in_pool: Sequence[Customer] = (),
) -> AllocationOutcome:
    """Carry out a plan: each allocation through the ownership writer in its own
    transaction (as claims are), so a customer claimed meanwhile or a rep who reached the
    cap is refused alone and reported; the batch records what happened."""
    rep_ids = _check_allocator(actor, team)
    batch = AllocationBatch.objects.create(
        actor=actor,
        team=team,
        method=method,
        requested=len(assignments) + len(left_in_pool),
    )
    outcome = AllocationOutcome(batch=batch, left_in_pool=list(left_in_pool))
    reason = str(AllocationMethod(method).label)
    for customer, rep in assignments:
        if rep.pk not in rep_ids:
            outcome.refused.append(
                (customer, _("%(name)s is not a rep of this team.") % {"name": rep})
            )
            continue
        try:
            ownership.ownership_allocate(
                actor=actor, customer=customer, to_rep=rep, reason=reason, cause=batch
            )
        except ownership.OwnershipError as error:
            outcome.refused.append((customer, error.message))
        else:
            outcome.allocated.append((customer, rep))
    batch.allocated = len(outcome.allocated)
    batch.left_in_pool = len(outcome.left_in_pool) + len(outcome.refused)
    batch.save(update_fields=["allocated", "left_in_pool"])
    _notify_allocated(batch, outcome.allocated)
    return outcome


def allocate_bulk(
    *, actor: User, team: Team, customers: Sequence[Customer], reps: Sequence[User]
) -> AllocationOutcome:
    """Bulk allocation balanced by value tier over the chosen reps (see fairness.balance);
    the same plan the preview showed, recomputed from current figures."""
    plan, _profiles = selectors.bulk_plan(team, customers, [rep.pk for rep in reps])
    by_id = {customer.pk: customer for customer in customers}
    people = {rep.pk: rep for rep in reps}
    return allocate_customers(
        actor=actor,
        team=team,
        assignments=[(by_id[cid], people[rid]) for cid, rid in plan.assignments],
        method=AllocationMethod.BULK,
        left_in_pool=[by_id[cid] for cid in plan.left_over],
    )


def distribute_pool_customers(
    *, actor: User, team: Team, customers: Iterable[Customer], now: datetime | None = None
) -> AllocationOutcome:
    """Automatic distribution of inbound pool customers over the team's reps: weighted
    round robin by free capacity, skipping inactive, departing and capped reps. Customers
    no one has room for stay in the pool, and the outcome says so."""
    _check_allocator(actor, team)
    chosen = list(customers)
    plan, profiles = selectors.distribution_plan(team, chosen, now)
    reps = {profile.rep.pk: profile.rep for profile in profiles}
    by_id = {customer.pk: customer for customer in chosen}
    outcome = allocate_customers(
        actor=actor,
        team=team,
        assignments=[(by_id[cid], reps[rid]) for cid, rid in plan.assignments],
        method=AllocationMethod.AUTO,
        left_in_pool=[by_id[cid] for cid in plan.left_over],
    )
    for customer in chosen:
        if customer.owner_id is not None:
            outcome.refused.append(
                (customer, _("%(customer)s is no longer in the pool.") % {"customer": customer})
            )
    return outcome


def requests_follow_merge(
    sender: object, *, merged: Customer, survivor: Customer, actor: User | None, **kwargs: object
) -> int:
    """A merge moves the merged record's open requests to the survivor (crm sends the
    signal in the merge's transaction). Only one request may be open per customer: when the
    survivor already has one, the merged record's request is withdrawn instead."""
    now = timezone.now()
    moved = 0
    requests = ReassignmentRequest.objects.select_for_update().filter(
        customer=merged, state__in=OPEN_STATES
    )
    for request in requests:
        if ReassignmentRequest.objects.filter(customer=survivor, state__in=OPEN_STATES).exists():
            request_transition(
                request_id=request.pk,
                to_state=RequestState.WITHDRAWN,
                actor=actor,
                comment=_(
                    "Withdrawn: the customer was merged into %(name)s, "
                    "which already has an open request."
                )
                % {"name": survivor},
                now=now,
            )
            continue
        request.customer = survivor
        request.save(update_fields=["customer"])
        RequestHistory.objects.create(
            request=request,
            from_state=request.state,
            to_state=request.state,
            action=HistoryAction.MOVED,
            actor=actor,
            comment=_("Moved from %(merged)s, merged into %(survivor)s.")
            % {"merged": merged, "survivor": survivor},
            at=now,
        )
        moved += 1
    return moved
