"""The one writer of ownership. Every change of `Customer.owner` goes through `_change_owner`:
lock the customer row, re-check the rules, append one ledger event, update the owner fields
and revoke owner-dependent grants, all in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from crm import prepared, rows
from crm.errors import DomainError
from crm.models import Customer, EmploymentState, FunnelStage, Role, User
from ownership import holds
from ownership.clock import PolicyValues
from ownership.ledger import hash_of
from ownership.models import EventKind, OwnershipEvent
from ownership.selectors import policy_for_owner, with_customer_territory

# Kinds after which the ownership clock starts again from zero.
CLOCK_RESTARTING_KINDS = {
    EventKind.REGISTERED,
    EventKind.CLAIMED,
    EventKind.ALLOCATED,
    EventKind.TRANSFERRED,
    EventKind.RULED,
    EventKind.HANDED_OVER,
}


class OwnershipError(DomainError):
    pass


class NotInPool(OwnershipError):
    pass


class NotTheOwner(OwnershipError):
    pass


class HoldingCapReached(OwnershipError):
    def __init__(self, message: str, *, owned: int, cap: int) -> None:
        super().__init__(message)
        self.owned = owned
        self.cap = cap


class CooldownActive(OwnershipError):
    def __init__(self, message: str, *, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class DailyClaimCapReached(OwnershipError):
    def __init__(self, message: str, *, claimed: int, cap: int) -> None:
        super().__init__(message)
        self.claimed = claimed
        self.cap = cap


class OwnerNotEligible(OwnershipError):
    pass


class CustomerMerged(OwnershipError):
    pass


# --- rule checks (each gives the friendly message; the row locks give the guarantee) -----


def _lock_rep(user: User) -> User:
    """Serialise every cap check of one rep: parallel claims queue on this row lock.

    The statement is written out on purpose: every registration and claim locks its rep,
    and building the ORM query costs more than running it."""
    table = connection.ops.quote_name(User._meta.db_table)
    locked = list(User.objects.raw(f"SELECT * FROM {table} WHERE id = %s FOR UPDATE", [user.pk]))
    if not locked:
        raise User.DoesNotExist("_lock_rep: no such user.")
    return locked[0]


def check_eligible_owner(user: User) -> None:
    if not user.is_active or user.state == EmploymentState.DEPARTED:
        raise OwnerNotEligible(
            _("%(name)s is not an active user and cannot own customers.") % {"name": user}
        )
    if user.role != Role.REP:
        raise OwnerNotEligible(_("Only sales reps can own customers."))


def check_not_departing(user: User) -> None:
    if user.state == EmploymentState.DEPARTING:
        raise OwnerNotEligible(
            _("%(name)s is leaving the company and cannot take new customers.") % {"name": user}
        )


def owned_count(user: User, policy: PolicyValues) -> int:
    """The holding the cap counts: live (unmerged) customers, won ones only if the policy
    says so. Plain SQL on purpose: every registration and claim asks, and building the ORM
    query costs more than running it (an index scan on owner_id)."""
    sql = (
        f"SELECT count(*) FROM {Customer._meta.db_table} "
        "WHERE owner_id = %s AND merged_into_id IS NULL"
    )
    params: list[int] = [user.pk]
    if not policy.count_won_in_cap:
        sql += " AND stage <> %s"
        params.append(FunnelStage.WON.value)
    with connection.cursor() as cursor:
        prepared.execute(cursor, sql, params)
        row = cursor.fetchone()
    return int(row[0])


def check_holding_cap(user: User, policy: PolicyValues, adding: int = 1) -> None:
    _refuse_over_cap(user, policy, owned_count(user, policy), adding)


def _refuse_over_cap(user: User, policy: PolicyValues, owned: int, adding: int) -> None:
    if owned + adding > policy.max_owned:
        raise HoldingCapReached(
            _(
                "%(name)s already owns %(owned)d customers; the limit is %(cap)d. "
                "Release or hand over a customer first."
            )
            % {"name": user, "owned": owned, "cap": policy.max_owned},
            owned=owned,
            cap=policy.max_owned,
        )


@dataclass
class RepLock:
    """A rep whose row the current transaction holds locked (`rep_locked`), checked eligible
    and not departing, with their effective policy: a registration checks the cap before it
    creates the customer and hands the lock to `ownership_register`, which then neither
    locks nor looks the policy up again, nor counts the holding a second time.

    `owned` is the holding counted under the lock. Nobody else can give the rep a customer
    while the row is locked; inside the block, give them customers only through this lock
    (`ownership_register(locked=...)` adds to the count) so that it stays exact."""

    rep: User
    policy: PolicyValues
    owned: int | None = None
    active: bool = True

    def check_holding_cap(self, adding: int = 1) -> None:
        if self.owned is None:
            self.owned = owned_count(self.rep, self.policy)
        _refuse_over_cap(self.rep, self.policy, self.owned, adding)


@contextmanager
def rep_locked(user: User) -> Iterator[RepLock]:
    """A transaction in which `user` is locked as a future owner (see RepLock). Raises
    OwnerNotEligible for an inactive, departed, departing or non-rep user."""
    with transaction.atomic():
        rep = _lock_rep(user)
        check_eligible_owner(rep)
        check_not_departing(rep)
        lock = RepLock(rep=rep, policy=policy_for_owner(rep))
        try:
            yield lock
        finally:
            # The row lock ends with this block: the lock must not be used after it.
            lock.active = False


def start_of_local_day(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def claims_today(user: User, now: datetime) -> int:
    return OwnershipEvent.objects.filter(
        to_owner=user, kind=EventKind.CLAIMED, occurred_at__gte=start_of_local_day(now)
    ).count()


def check_daily_claim_cap(user: User, policy: PolicyValues, now: datetime) -> None:
    claimed = claims_today(user, now)
    if claimed >= policy.max_claims_per_day:
        raise DailyClaimCapReached(
            _(
                "You have claimed %(claimed)d customers from the pool today; the daily limit is "
                "%(cap)d. Try again tomorrow."
            )
            % {"claimed": claimed, "cap": policy.max_claims_per_day},
            claimed=claimed,
            cap=policy.max_claims_per_day,
        )


def cooldown_until(customer: Customer, user: User, policy: PolicyValues) -> datetime | None:
    """End of the former-owner cooldown, if `customer` was recycled from `user` recently."""
    if policy.cooldown_days == 0:
        return None
    last = (
        OwnershipEvent.objects.filter(customer=customer, from_owner=user, kind=EventKind.RECYCLED)
        .order_by("-sequence")
        .values_list("occurred_at", flat=True)
        .first()
    )
    if last is None:
        return None
    return last + timedelta(days=policy.cooldown_days)


def check_cooldown(customer: Customer, user: User, policy: PolicyValues, now: datetime) -> None:
    until = cooldown_until(customer, user, policy)
    if until is not None and until > now:
        raise CooldownActive(
            _("This customer was recycled from you; you can claim it again from %(date)s.")
            % {"date": date_format(timezone.localtime(until), "DATETIME_FORMAT")},
            until=until,
        )


# --- the core ------------------------------------------------------------------------------


def _new_event(
    *,
    customer_id: int,
    tip: tuple[int, str] | None,
    from_owner_id: int | None,
    to_owner_id: int | None,
    kind: str,
    reason: str,
    actor_id: int | None,
    cause: models.Model | None,
    cause_label: str,
    now: datetime,
) -> OwnershipEvent:
    """An unsaved ledger event after the chain's `tip` (sequence, hash), hash included.

    The one place an event is built: the single writer and its set-based variants (recycle
    and handover batches) all chain and hash the same way."""
    sequence, prev_hash = (tip[0] + 1, tip[1]) if tip else (1, "")
    if not cause_label and cause is not None:
        cause_label = f"{cause._meta.label_lower}:{cause.pk}"
    event = OwnershipEvent(
        customer_id=customer_id,
        sequence=sequence,
        from_owner_id=from_owner_id,
        to_owner_id=to_owner_id,
        kind=kind,
        reason=reason,
        actor_id=actor_id,
        cause_type=ContentType.objects.get_for_model(cause) if cause is not None else None,
        cause_id=cause.pk if cause is not None else None,
        cause_label=cause_label[:200],
        occurred_at=now,
        prev_hash=prev_hash,
    )
    event.hash = hash_of(event)
    return event


def _append_event(
    *,
    customer: Customer,
    from_owner: User | None,
    to_owner: User | None,
    kind: str,
    reason: str,
    actor: User | None,
    cause: models.Model | None,
    cause_label: str,
    now: datetime,
    first: bool = False,
) -> OwnershipEvent:
    # The customer row is locked by the caller, so no other event of this customer can be
    # appended concurrently: reading the chain's tip here is race-free. `first`: the caller
    # created the customer in this transaction (no chain yet; the unique sequence would
    # refuse a second first event).
    tip = (
        None
        if first
        else OwnershipEvent.objects.filter(customer=customer)
        .order_by("-sequence")
        .values_list("sequence", "hash")
        .first()
    )
    event = _new_event(
        customer_id=customer.pk,
        tip=tip,
        from_owner_id=from_owner.pk if from_owner else None,
        to_owner_id=to_owner.pk if to_owner else None,
        kind=kind,
        reason=reason,
        actor_id=actor.pk if actor else None,
        cause=cause,
        cause_label=cause_label,
        now=now,
    )
    rows.insert(event)
    return event


Check = Callable[[Customer, datetime], None]


def _change_owner(
    *,
    customer_id: int,
    to_owner: User | None,
    kind: str,
    reason: str,
    actor: User | None,
    cause: models.Model | None = None,
    cause_label: str = "",
    checks: Iterable[Check] = (),
    now: datetime | None = None,
    created: Customer | None = None,
) -> OwnershipEvent:
    """`created`: the customer, inserted by the current transaction. No other transaction
    can see the row before this one commits, so it needs no lock, and it has no ledger
    events, grants or holds yet: three queries fewer for every registration. Nor does it
    get a savepoint of its own: a customer whose first owner cannot be written is of no use
    to the transaction that created it, which ends with the error too (two statements
    fewer)."""
    with transaction.atomic(savepoint=created is None):
        now = now or timezone.now()
        if created is not None:
            if created.pk != customer_id or created.owner_id is not None:
                raise OwnershipError("_change_owner: `created` must be the new, unowned customer.")
            customer = created
        else:
            customer = (
                Customer.objects.select_for_update(of=("self",))
                .select_related("owner")
                .get(pk=customer_id)
            )
        if customer.merged_into_id is not None and kind != EventKind.MERGED:
            raise CustomerMerged(_("This customer record was merged into another one."))
        for check in checks:
            check(customer, now)
        from_owner = customer.owner
        if from_owner is not None and to_owner is not None and from_owner.pk == to_owner.pk:
            raise OwnershipError(_("%(name)s already owns this customer.") % {"name": to_owner})
        event = _append_event(
            customer=customer,
            from_owner=from_owner,
            to_owner=to_owner,
            kind=kind,
            reason=reason,
            actor=actor,
            cause=cause,
            cause_label=cause_label,
            now=now,
            first=created is not None,
        )
        customer.owner = to_owner
        update = ["owner", "owned_since", "clock_started_at", "updated_at"]
        customer.owned_since = now if to_owner is not None else None
        if to_owner is None:
            customer.clock_started_at = None
        elif kind in CLOCK_RESTARTING_KINDS:
            customer.clock_started_at = now
        customer.save(update_fields=update)
        if created is None:
            _revoke_owner_grants(customer)
        # The customer as now stored (locked, owner fields set): callers need not reload it.
        event.customer = customer
        return event


def _revoke_owner_grants(customer: Customer) -> None:
    """Shares granted by an owner end with that ownership (the previous owner's very next
    request is refused because the owner column itself moved)."""
    from crm.models import CustomerUserObjectPermission

    CustomerUserObjectPermission.objects.filter(
        content_object=customer, permission__codename="view_shared_customer"
    ).delete()


# --- one function per kind of change ------------------------------------------------------


def _in_pool(customer: Customer, now: datetime) -> None:
    if customer.owner_id is not None:
        raise NotInPool(
            _("%(customer)s is no longer in the pool: %(owner)s owns it.")
            % {"customer": customer, "owner": customer.owner}
        )
    _not_held(customer, now)


def _not_held(customer: Customer, now: datetime) -> None:
    """Unowned but held out of the pool by a workflow app (ownership.holds)."""
    message = holds.hold_message(customer)
    if message:
        raise NotInPool(message)


def ownership_register(
    *,
    actor: User,
    customer: Customer,
    evidence: str = "",
    cause: models.Model | None = None,
    at: datetime | None = None,
    owner: User | None = None,
    locked: RepLock | None = None,
    created_here: bool = False,
) -> OwnershipEvent:
    """First entry (报备): the registering rep becomes the owner of a new customer.

    `at` records an earlier registration time when history is brought in from another
    system (and for demo data); the ledger keeps it as the precedence time. `owner` is the
    registering rep when someone else completes the registration (a manager approving an
    out-of-territory registration); by default the actor registers for themself.
    `locked`: the rep as already locked by the caller's transaction (`rep_locked`), whose
    eligibility, policy and holding are then not looked up again. `created_here`: the
    caller created `customer` in that same transaction, unowned and not held (see
    `_change_owner`).
    """
    if locked is not None:
        rep = owner or actor
        if not locked.active or locked.rep.pk != rep.pk:
            raise OwnershipError("ownership_register: the rep lock is not held.")
        checks: list[Check] = [lambda c, now: locked.check_holding_cap()]
        if not created_here:  # a customer created here cannot be owned or held by others yet
            checks.insert(0, _in_pool)
        event = _change_owner(
            customer_id=customer.pk,
            to_owner=locked.rep,
            kind=EventKind.REGISTERED,
            reason=evidence,
            actor=actor,
            cause=cause,
            checks=checks,
            now=at,
            created=customer if created_here else None,
        )
        if locked.owned is not None:
            locked.owned += 1
        return event
    with transaction.atomic():
        rep = _lock_rep(owner or actor)
        check_eligible_owner(rep)
        check_not_departing(rep)
        policy = policy_for_owner(rep)
        return _change_owner(
            customer_id=customer.pk,
            to_owner=rep,
            kind=EventKind.REGISTERED,
            reason=evidence,
            actor=actor,
            cause=cause,
            checks=[_in_pool, lambda c, now: check_holding_cap(rep, policy)],
            now=at,
        )


@dataclass
class ClaimOutcome:
    claimed: list[Customer] = field(default_factory=list)
    refused: list[tuple[Customer, str]] = field(default_factory=list)


def ownership_claim(*, actor: User, customer: Customer, reason: str = "") -> OwnershipEvent:
    """Claim (领取) one customer from the pool. Checks, in order: still in the pool → holding
    cap → former-owner cooldown → daily claim cap."""
    with transaction.atomic():
        rep = _lock_rep(actor)
        check_eligible_owner(rep)
        check_not_departing(rep)
        policy = policy_for_owner(rep)
        return _change_owner(
            customer_id=customer.pk,
            to_owner=rep,
            kind=EventKind.CLAIMED,
            reason=reason or _("Claimed from the pool"),
            actor=actor,
            checks=[
                _in_pool,
                lambda c, now: check_holding_cap(rep, policy),
                lambda c, now: check_cooldown(c, rep, with_customer_territory(policy, c), now),
                lambda c, now: check_daily_claim_cap(rep, policy, now),
            ],
        )


def ownership_claim_many(*, actor: User, customers: Iterable[Customer]) -> ClaimOutcome:
    """Claim several; each claim is its own transaction so one refusal does not undo others."""
    outcome = ClaimOutcome()
    for customer in customers:
        try:
            ownership_claim(actor=actor, customer=customer)
            outcome.claimed.append(customer)
        except OwnershipError as error:
            outcome.refused.append((customer, error.message))
    return outcome


def _owned_by(user: User) -> Check:
    def check(customer: Customer, now: datetime) -> None:
        if customer.owner_id != user.pk:
            raise NotTheOwner(_("You do not own this customer."))

    return check


def ownership_release(*, actor: User, customer: Customer, reason: str) -> OwnershipEvent:
    """The owner gives the customer back to the pool, with a reason."""
    if not reason.strip():
        raise OwnershipError(_("Say why you release this customer."))
    return _change_owner(
        customer_id=customer.pk,
        to_owner=None,
        kind=EventKind.RELEASED,
        reason=reason.strip(),
        actor=actor,
        checks=[_owned_by(actor)],
    )


def ownership_pool_entry(
    *, actor: User | None, customer: Customer, reason: str, cause: Any = None
) -> OwnershipEvent:
    """Record that a never-owned customer entered a pool (a registration routed to the
    responsible team's pool, or refused by its manager): the ledger says why it is there."""
    return _change_owner(
        customer_id=customer.pk,
        to_owner=None,
        kind=EventKind.RELEASED,
        reason=reason,
        actor=actor,
        cause=cause,
        checks=[_in_pool],
    )


def ownership_realign(
    *,
    actor: User,
    customer: Customer,
    expected_owner: User | None,
    to_rep: User | None,
    reason: str,
    cause: Any = None,
) -> OwnershipEvent:
    """A realignment chosen by an administrator: to the responsible team's pool, or to a
    named rep of that team. Refused if the owner changed since the preview."""
    if to_rep is not None:
        return _move_to_rep(
            actor=actor,
            customer=customer,
            to_rep=to_rep,
            kind=EventKind.TRANSFERRED,
            reason=reason,
            cause=cause,
            expect_owner=True,
            expected_owner=expected_owner,
            enforce_cap=False,
        )
    if expected_owner is None:
        raise OwnershipError(_("Only an owned customer can be realigned."))
    return _change_owner(
        customer_id=customer.pk,
        to_owner=None,
        kind=EventKind.RECYCLED,
        reason=reason,
        actor=actor,
        cause=cause,
        checks=[_still_owned_by(expected_owner)],
    )


def _still_owned_by(expected_owner: User | None) -> Check:
    """Refuses a move prepared against an owner (or the pool) that changed meanwhile."""
    expected_id = expected_owner.pk if expected_owner is not None else None

    def check(customer: Customer, now: datetime) -> None:
        if customer.owner_id != expected_id:
            raise OwnershipError(
                _("The owner of %(customer)s changed meanwhile; nothing was moved.")
                % {"customer": customer}
            )

    return check


def _move_to_rep(
    *,
    actor: User | None,
    customer: Customer,
    to_rep: User,
    kind: str,
    reason: str,
    cause: models.Model | None,
    expect_owner: bool = False,
    expected_owner: User | None = None,
    enforce_cap: bool = True,
    allow_departing: bool = False,
    extra_checks: Iterable[Check] = (),
) -> OwnershipEvent:
    with transaction.atomic():
        rep = _lock_rep(to_rep)
        check_eligible_owner(rep)
        if not allow_departing:
            check_not_departing(rep)
        policy = policy_for_owner(rep)
        checks: list[Check] = []
        if expect_owner:
            checks.append(_still_owned_by(expected_owner))
        checks.extend(extra_checks)
        if enforce_cap:
            checks.append(lambda c, now: check_holding_cap(rep, policy))
        return _change_owner(
            customer_id=customer.pk,
            to_owner=rep,
            kind=kind,
            reason=reason,
            actor=actor,
            cause=cause,
            checks=checks,
        )


def ownership_allocate(
    *, actor: User, customer: Customer, to_rep: User, reason: str = "", cause: Any = None
) -> OwnershipEvent:
    """A manager gives a pool customer to a rep (分配)."""
    return _move_to_rep(
        actor=actor,
        customer=customer,
        to_rep=to_rep,
        kind=EventKind.ALLOCATED,
        reason=reason or _("Allocated by a manager"),
        cause=cause,
        expect_owner=True,
        expected_owner=None,
        extra_checks=[_not_held],
    )


def ownership_transfer(
    *,
    actor: User,
    customer: Customer,
    to_rep: User,
    reason: str,
    cause: Any = None,
    from_owner: User | None = None,
) -> OwnershipEvent:
    """An approved reassignment (转移); refused if the owner changed since `from_owner`."""
    return _move_to_rep(
        actor=actor,
        customer=customer,
        to_rep=to_rep,
        kind=EventKind.TRANSFERRED,
        reason=reason,
        cause=cause,
        expect_owner=from_owner is not None,
        expected_owner=from_owner,
    )


def ownership_hand_over(
    *, actor: User | None, customer: Customer, to_rep: User, reason: str, cause: Any = None
) -> OwnershipEvent:
    """A departure handover moves a customer to its successor (no cap: the business must
    not stay with someone who is leaving)."""
    return _move_to_rep(
        actor=actor,
        customer=customer,
        to_rep=to_rep,
        kind=EventKind.HANDED_OVER,
        reason=reason,
        cause=cause,
        enforce_cap=False,
    )


def ownership_rule(
    *, actor: User, customer: Customer, to_owner: User | None, reason: str, cause: Any = None
) -> OwnershipEvent:
    """A binding ruling of the committee: to a rep, or to the pool."""
    if to_owner is None:
        return _change_owner(
            customer_id=customer.pk,
            to_owner=None,
            kind=EventKind.RULED,
            reason=reason,
            actor=actor,
            cause=cause,
        )
    return _move_to_rep(
        actor=actor,
        customer=customer,
        to_rep=to_owner,
        kind=EventKind.RULED,
        reason=reason,
        cause=cause,
        enforce_cap=False,
    )


def ownership_recycle(
    *, customer: Customer, reason: str, cause: Any = None, cause_label: str = "", now: datetime
) -> OwnershipEvent:
    """The periodic review returns a neglected customer to the pool (回收); by the system."""
    return _change_owner(
        customer_id=customer.pk,
        to_owner=None,
        kind=EventKind.RECYCLED,
        reason=reason,
        actor=None,
        cause=cause,
        cause_label=cause_label,
        now=now,
    )


RecycleDecision = Callable[[Customer], "tuple[str, str] | None"]


@transaction.atomic
def ownership_recycle_many(
    *,
    customer_ids: Iterable[int],
    decide: RecycleDecision,
    cause: models.Model | None = None,
    now: datetime,
) -> dict[int, OwnershipEvent]:
    """The set-based form of `ownership_recycle`, for the periodic review: the same change
    (one `recycled` ledger event chained to the customer's previous one, owner fields
    cleared, owner-dependent grants revoked, by the system) for a batch of customers in one
    transaction and a handful of statements whatever the batch size.

    The rows are locked in id order; `decide(customer)` then re-checks each locked row and
    returns (reason, cause label), or None to leave the customer alone (no longer due,
    already in the pool). Merged records are never recycled. Returns the events by customer.
    """
    locked = list(
        Customer.objects.select_for_update(of=("self",))
        .filter(pk__in=list(customer_ids), owner__isnull=False, merged_into__isnull=True)
        .order_by("pk")
    )
    decided = [(customer, decide(customer)) for customer in locked]
    chosen = [(customer, answer) for customer, answer in decided if answer is not None]
    if not chosen:
        return {}
    # The rows are locked, so no other event of these customers can be appended meanwhile.
    tips: dict[int, tuple[int, str]] = {
        customer_id: (sequence, hash_)
        for customer_id, sequence, hash_ in OwnershipEvent.objects.filter(
            customer_id__in=[customer.pk for customer, _answer in chosen]
        )
        .order_by("customer_id", "-sequence")
        .distinct("customer_id")
        .values_list("customer_id", "sequence", "hash")
    }
    events = [
        _new_event(
            customer_id=customer.pk,
            tip=tips.get(customer.pk),
            from_owner_id=customer.owner_id,
            to_owner_id=None,
            kind=EventKind.RECYCLED,
            reason=reason,
            actor_id=None,
            cause=cause,
            cause_label=cause_label,
            now=now,
        )
        for customer, (reason, cause_label) in chosen
    ]
    OwnershipEvent.objects.bulk_create(events)
    ids = [customer.pk for customer, _answer in chosen]
    Customer.objects.filter(pk__in=ids).update(
        owner=None, owned_since=None, clock_started_at=None, updated_at=now
    )
    from crm.models import CustomerUserObjectPermission

    CustomerUserObjectPermission.objects.filter(
        content_object_id__in=ids, permission__codename="view_shared_customer"
    ).delete()
    return {event.customer_id: event for event in events}


# --- grants: the exceptions to ownership -------------------------------------------------


def customer_share(*, actor: User, customer: Customer, colleague: User) -> None:
    """The owner lets a colleague read the customer. The grant ends with the ownership."""
    from guardian.shortcuts import assign_perm

    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.owner_id != actor.pk:
            raise NotTheOwner(_("Only the owner can share this customer."))
        if colleague.pk == actor.pk:
            raise OwnershipError(_("You already own this customer."))
        if not colleague.is_active:
            raise OwnerNotEligible(_("%(name)s is not an active user.") % {"name": colleague})
        assign_perm("crm.view_shared_customer", colleague, locked)


def customer_unshare(*, actor: User, customer: Customer, colleague: User) -> None:
    from guardian.shortcuts import remove_perm

    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.owner_id != actor.pk:
            raise NotTheOwner(_("Only the owner can share this customer."))
        remove_perm("crm.view_shared_customer", colleague, locked)


def ownership_hand_over_from(
    *,
    actor: User | None,
    customer: Customer,
    to_rep: User,
    from_owner: User,
    reason: str,
    cause: Any = None,
) -> OwnershipEvent:
    """`ownership_hand_over`, but only while `from_owner` still owns the customer (checked
    under the customer's row lock; otherwise OwnershipError and nothing moves): a departure
    handover task was planned for the leaving owner's customer."""
    return _move_to_rep(
        actor=actor,
        customer=customer,
        to_rep=to_rep,
        kind=EventKind.HANDED_OVER,
        reason=reason,
        cause=cause,
        expect_owner=True,
        expected_owner=from_owner,
        enforce_cap=False,
    )


def ownership_merge(
    *, actor: User | None, customer: Customer, into: Customer, reason: str, cause: Any = None
) -> OwnershipEvent:
    """A record merged into another one (a committee ruling) leaves ownership: one `merged`
    event on the merged record's own ledger (its owner, if any, to nobody), so both ledgers
    stay whole. The survivor's owner is ruled separately (`ownership_rule`)."""
    return _change_owner(
        customer_id=customer.pk,
        to_owner=None,
        kind=EventKind.MERGED,
        reason=reason,
        actor=actor,
        cause=cause,
        cause_label=_("merged into #%(id)s %(name)s") % {"id": into.pk, "name": into},
    )


@dataclass(frozen=True)
class HandOverMove:
    """One customer of a handover batch: from its (expected) leaving owner to a successor."""

    customer_id: int
    to_rep: User
    from_owner: User
    reason: str
    cause: models.Model | None = None


@dataclass
class HandOverBatch:
    events: dict[int, OwnershipEvent] = field(default_factory=dict)  # by customer id
    refused: dict[int, str] = field(default_factory=dict)  # by customer id: why not moved


def ownership_hand_over_many(
    *, actor: User | None, moves: Iterable[HandOverMove], now: datetime | None = None
) -> HandOverBatch:
    """`ownership_hand_over_from` for a bounded batch (a departure's plan or last day), with
    a constant number of queries per batch instead of a dozen per customer.

    The same rules and the same trail as the one-by-one writer: successors locked (in id
    order, so two batches never deadlock) and checked eligible and not departing (else
    OwnerNotEligible and nothing moves); customers locked (id order); a customer whose owner
    is no longer the expected one, or that was merged, is refused alone (in `refused`); one
    hash-chained `handed_over` ledger event per moved customer; owner fields set and the
    clock restarted; owner-dependent shares revoked. One transaction."""
    from crm.models import CustomerUserObjectPermission

    now = now or timezone.now()
    wanted = sorted(moves, key=lambda move: move.customer_id)
    if len({move.customer_id for move in wanted}) != len(wanted):
        raise OwnershipError("A customer appears twice in one handover batch.")
    result = HandOverBatch()
    if not wanted:
        return result
    with transaction.atomic():
        rep_ids = sorted({move.to_rep.pk for move in wanted})
        reps = {
            rep.pk: rep
            for rep in User.objects.select_for_update().filter(pk__in=rep_ids).order_by("pk")
        }
        for rep in reps.values():
            check_eligible_owner(rep)
            check_not_departing(rep)
        ids = [move.customer_id for move in wanted]
        customers = {
            customer.pk: customer
            for customer in Customer.objects.select_for_update(of=("self",))
            .filter(pk__in=ids)
            .order_by("pk")
            .only("pk", "owner_id", "merged_into_id", "display_name")
        }
        # Each customer's chain tip (the rows are locked: no event can be appended meanwhile).
        tips = {
            customer_id: (sequence, hash_)
            for customer_id, sequence, hash_ in OwnershipEvent.objects.filter(customer_id__in=ids)
            .order_by("customer_id", "-sequence")
            .distinct("customer_id")
            .values_list("customer_id", "sequence", "hash")
        }
        events: list[OwnershipEvent] = []
        moved_to: dict[int, list[int]] = {}
        for move in wanted:
            customer = customers[move.customer_id]
            to_rep = reps[move.to_rep.pk]
            if customer.merged_into_id is not None:
                result.refused[customer.pk] = _("This customer record was merged into another one.")
                continue
            if customer.owner_id != move.from_owner.pk:
                result.refused[customer.pk] = _(
                    "The owner of %(customer)s changed meanwhile; nothing was moved."
                ) % {"customer": customer}
                continue
            if customer.owner_id == to_rep.pk:
                result.refused[customer.pk] = _("%(name)s already owns this customer.") % {
                    "name": to_rep
                }
                continue
            event = _new_event(
                customer_id=customer.pk,
                tip=tips.get(customer.pk),
                from_owner_id=customer.owner_id,
                to_owner_id=to_rep.pk,
                kind=EventKind.HANDED_OVER,
                reason=move.reason,
                actor_id=actor.pk if actor else None,
                cause=move.cause,
                cause_label="",
                now=now,
            )
            events.append(event)
            moved_to.setdefault(to_rep.pk, []).append(customer.pk)
        OwnershipEvent.objects.bulk_create(events, batch_size=1000)
        for rep_id, customer_ids in moved_to.items():
            # HANDED_OVER restarts the ownership clock, as in _change_owner.
            Customer.objects.filter(pk__in=customer_ids).update(
                owner=reps[rep_id], owned_since=now, clock_started_at=now, updated_at=now
            )
        moved_ids = [event.customer_id for event in events]
        CustomerUserObjectPermission.objects.filter(
            content_object_id__in=moved_ids, permission__codename="view_shared_customer"
        ).delete()
        result.events = {event.customer_id: event for event in events}
    return result
