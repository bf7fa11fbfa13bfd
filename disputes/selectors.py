"""Permission-scoped reads of the disputes app: who may see a case, who may vote on it, which
customers are under dispute, the committee's queue and the administrators' figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from crm.models import Customer, Role, User
from crm.selectors import customers_visible_to, teams_managed_by
from disputes.models import (
    OPEN_STATES,
    PENDING_STATES,
    CommitteeMembership,
    Dispute,
    DisputeAttachment,
    DisputeKind,
    DisputeState,
    DisputeStatement,
    Ruling,
    RulingOutcome,
    Vote,
)
from ownership.models import EventKind, OwnershipEvent

if TYPE_CHECKING:
    from disputes.filters import DisputeFilter

# --- configuration (settings with defaults) ------------------------------------------------


def quorum() -> int:
    return max(1, int(getattr(settings, "DISPUTE_QUORUM", 2)))


def majority() -> float:
    """A choice wins with a share of the votes strictly above this."""
    return float(getattr(settings, "DISPUTE_MAJORITY", 0.5))


def deadline_days() -> int:
    return int(getattr(settings, "DISPUTE_DEADLINE_DAYS", 10))


def appeal_days() -> int:
    """How long after a ruling a party may appeal (once)."""
    return int(getattr(settings, "DISPUTE_APPEAL_DAYS", 7))


def appeal_deadline_days() -> int:
    return int(getattr(settings, "DISPUTE_APPEAL_DEADLINE_DAYS", 10))


def reminder_hours() -> int:
    return int(getattr(settings, "DISPUTE_REMINDER_HOURS", 48))


# Ledger kinds a rep may contest as "the rule applied to me was wrong" (their customer was
# taken by a rule or a decision), and how far back.
CONTESTABLE_KINDS = (
    EventKind.RECYCLED,
    EventKind.TRANSFERRED,
    EventKind.ALLOCATED,
    EventKind.HANDED_OVER,
)
CONTEST_WINDOW_DAYS = 90


# --- customers under dispute ---------------------------------------------------------------


def _pending_dispute_of(outer: str = "pk") -> Exists:
    return Exists(
        Dispute.objects.filter(
            Q(customer=OuterRef(outer)) | Q(other_customer=OuterRef(outer)),
            state__in=PENDING_STATES,
        )
    )


def customers_under_dispute() -> QuerySet[Customer]:
    """Customers of a case waiting for a ruling (one SQL query; usable as a subquery)."""
    return Customer.objects.filter(_pending_dispute_of())


def customer_ids_under_dispute() -> QuerySet[Customer, Any]:
    """Ids of customers the periodic review must not recycle: a subquery, never a list —
    `Customer.objects.exclude(pk__in=customer_ids_under_dispute())`."""
    return customers_under_dispute().values("pk")


def is_under_dispute(customer: Customer) -> bool:
    return Dispute.objects.filter(
        Q(customer=customer) | Q(other_customer=customer), state__in=PENDING_STATES
    ).exists()


# --- who may see a case --------------------------------------------------------------------


def disputes_visible_to(user: User) -> QuerySet[Dispute]:
    """The one scope of case reads on the web pages. Parties (the rep who filed and the
    other party) and the managers of their teams see a case; administrators see all. The
    committee works in the admin; everyone else sees nothing (404)."""
    base = Dispute.objects.all()
    if not user.is_active:
        return base.none()
    if user.is_crm_admin:
        return base
    if user.is_rep:
        return base.filter(Q(claimant=user) | Q(respondent=user))
    if user.is_manager:
        managed = teams_managed_by(user)
        return base.filter(Q(claimant_team__in=managed) | Q(respondent_team__in=managed))
    return base.none()


def dispute_for(user: User, pk: int) -> Dispute:
    """A case the user may see, or Http404 (never a hint that it exists)."""
    queryset = disputes_visible_to(user).select_related(
        "customer__owner__team",
        "other_customer__owner__team",
        "claimant__team",
        "respondent__team",
        "rule_event",
        "appealed_by",
    )
    return get_object_or_404(queryset, pk=pk)


def is_party(user: User, dispute: Dispute) -> bool:
    return user.pk in (dispute.claimant_id, dispute.respondent_id)


def can_add_statement(user: User, dispute: Dispute, now: datetime | None = None) -> bool:
    return (
        is_party(user, dispute)
        and dispute.state in PENDING_STATES
        and (now or timezone.now()) <= dispute.deadline
    )


def can_withdraw(user: User, dispute: Dispute) -> bool:
    return user.pk == dispute.claimant_id and dispute.state in (
        DisputeState.FILED,
        DisputeState.UNDER_REVIEW,
    )


def can_appeal(user: User, dispute: Dispute, now: datetime | None = None) -> bool:
    return (
        is_party(user, dispute)
        and dispute.state == DisputeState.DECIDED
        and dispute.round == 1
        and dispute.appeal_until is not None
        and (now or timezone.now()) <= dispute.appeal_until
    )


def attachment_for(user: User, pk: int) -> DisputeAttachment:
    """An attachment of a visible case. A party reads what its own side uploaded; the other
    side's files may show the other customer's details (invariant 4), so only managers of
    the parties and administrators read every file. 404 for anyone else."""
    attachment = get_object_or_404(
        DisputeAttachment.objects.select_related("dispute"),
        pk=pk,
        dispute__in=disputes_visible_to(user),
    )
    if user.is_rep and attachment.uploaded_by_id != user.pk:
        raise Http404
    return attachment


def statements_of(dispute: Dispute) -> QuerySet[DisputeStatement]:
    return (
        DisputeStatement.objects.filter(dispute=dispute)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )


def rulings_of(dispute: Dispute) -> QuerySet[Ruling]:
    return Ruling.objects.filter(dispute=dispute).select_related("decided_by").order_by("round")


# --- the rep's side: what they may file about ---------------------------------------------


def _registration_model() -> Any:
    """allocation.Registration without importing allocation (DESIGN: workflow apps do not
    import each other); None when that app is not installed."""
    try:
        return apps.get_model("allocation", "Registration")
    except LookupError:
        return None


def customers_lost_by(user: User, now: datetime | None = None) -> QuerySet[Customer]:
    """Customers taken from the user by a rule or decision recently (and not back)."""
    since = (now or timezone.now()) - timedelta(days=CONTEST_WINDOW_DAYS)
    return Customer.objects.filter(
        merged_into__isnull=True,
        pk__in=OwnershipEvent.objects.filter(
            from_owner=user, kind__in=CONTESTABLE_KINDS, occurred_at__gte=since
        ).values("customer_id"),
    ).exclude(owner=user)


def customers_disputable_by(user: User) -> QuerySet[Customer]:
    """Customers a rep may file a dispute about: those they see (their own), those they ran
    into when registering (a collision is recorded), and those taken from them recently.
    The page shows only what a duplicate answer shows of the ones they cannot see."""
    if not user.is_active or not user.is_rep:
        return Customer.objects.none()
    condition = Q(pk__in=customers_visible_to(user).values("pk")) | Q(
        pk__in=customers_lost_by(user).values("pk")
    )
    registration = _registration_model()
    if registration is not None:
        condition |= Q(
            pk__in=registration.objects.filter(rep=user, customer__isnull=False).values(
                "customer_id"
            )
        )
    return (
        Customer.objects.filter(condition, merged_into__isnull=True)
        .select_related("owner", "owner__team")
        .order_by("display_name", "pk")
    )


def disputable_customer_for(user: User, pk: int) -> Customer:
    return get_object_or_404(customers_disputable_by(user), pk=pk)


def contestable_events(user: User, customer: Customer) -> QuerySet[OwnershipEvent]:
    """Ledger events of `customer` that took it from `user` (for "the rule was wrong")."""
    since = timezone.now() - timedelta(days=CONTEST_WINDOW_DAYS)
    return (
        OwnershipEvent.objects.filter(
            customer=customer,
            from_owner=user,
            kind__in=CONTESTABLE_KINDS,
            occurred_at__gte=since,
        )
        .select_related("to_owner")
        .order_by("-sequence")
    )


def other_record_candidates(customer: Customer, limit: int = 10) -> list[Customer]:
    """Records that may be the same company as `customer`: the duplicate check's matches and
    the possible-duplicate pairs recorded at entry. Only names and owners are ever shown."""
    from crm.duplicates import customer_keys, find_duplicates
    from crm.models import PossibleDuplicate

    keys = customer_keys(Customer.objects.prefetch_related("phones").get(pk=customer.pk))
    found = [match.customer.pk for match in find_duplicates(keys, exclude=[customer.pk])]
    for pair in PossibleDuplicate.objects.filter(
        Q(customer=customer) | Q(candidate=customer)
    ).values_list("customer_id", "candidate_id"):
        found.extend(pk for pk in pair if pk != customer.pk)
    ids = list(dict.fromkeys(found))[:limit]
    rows = Customer.objects.filter(pk__in=ids, merged_into__isnull=True).select_related(
        "owner", "owner__team"
    )
    by_id = {row.pk: row for row in rows}
    return [by_id[pk] for pk in ids if pk in by_id]


def open_dispute_between(customer: Customer, other: Customer | None) -> Dispute | None:
    pair = {customer.pk, other.pk if other is not None else customer.pk}
    low, high = min(pair), max(pair)
    for dispute in Dispute.objects.filter(
        Q(customer_id__in=pair) | Q(other_customer_id__in=pair), state__in=OPEN_STATES
    ):
        ids = {dispute.customer_id, dispute.other_customer_id or dispute.customer_id}
        if (min(ids), max(ids)) == (low, high):
            return dispute
    return None


# --- the committee -------------------------------------------------------------------------


def committee_members() -> QuerySet[User]:
    return User.objects.filter(role=Role.COMMITTEE, is_active=True).order_by("pk")


def conflicted(member: User, dispute: Dispute) -> bool:
    """A member may not vote on a case they are party to or whose parties they manage."""
    parties = [p for p in (dispute.claimant, dispute.respondent) if p is not None]
    if any(p.pk == member.pk for p in parties):
        return True
    team_ids = {p.team_id for p in parties if p.team_id is not None}
    team_ids |= {t for t in (dispute.claimant_team_id, dispute.respondent_team_id) if t}
    if not team_ids:
        return False
    return teams_managed_by(member).filter(pk__in=team_ids).exists()


def first_round_voter_ids(dispute: Dispute) -> set[int]:
    return set(Vote.objects.filter(dispute=dispute, round=1).values_list("member_id", flat=True))


def can_vote(member: User, dispute: Dispute) -> bool:
    """Committee role, active, not conflicted; an appeal is heard by those who did not vote
    the first time."""
    if not member.is_active or member.role != Role.COMMITTEE:
        return False
    if conflicted(member, dispute):
        return False
    return not (dispute.round == 2 and member.pk in first_round_voter_ids(dispute))


def eligible_voters(dispute: Dispute) -> list[User]:
    return [member for member in committee_members() if can_vote(member, dispute)]


def chair_for(dispute: Dispute) -> User | None:
    """Who decides ties and overdue cases: the first eligible member marked chair; when every
    chair is conflicted (or none is named), the first eligible member."""
    eligible = {member.pk: member for member in eligible_voters(dispute)}
    for membership in CommitteeMembership.objects.filter(is_chair=True).order_by("id"):
        if membership.user_id in eligible:
            return eligible[membership.user_id]
    seats = CommitteeMembership.objects.order_by("-is_chair", "id").values_list(
        "user_id", flat=True
    )
    for user_id in seats:
        if user_id in eligible:
            return eligible[user_id]
    return next(iter(eligible.values()), None)


def has_voted(member: User, dispute: Dispute, round_: int | None = None) -> bool:
    return Vote.objects.filter(
        dispute=dispute, round=round_ or dispute.round, member=member
    ).exists()


def round_is_decided(dispute: Dispute, round_: int) -> bool:
    return Ruling.objects.filter(dispute=dispute, round=round_).exists()


def votes_visible_to(member: User, dispute: Dispute) -> QuerySet[Vote]:
    """A member sees the votes of a round once they have voted in it or it is decided;
    administrators see decided rounds only. Nobody sees an undecided round's votes blind."""
    decided_rounds = set(Ruling.objects.filter(dispute=dispute).values_list("round", flat=True))
    rounds = set(decided_rounds)
    if member.role == Role.COMMITTEE:
        rounds |= set(
            Vote.objects.filter(dispute=dispute, member=member).values_list("round", flat=True)
        )
    return (
        Vote.objects.filter(dispute=dispute, round__in=rounds)
        .select_related("member")
        .order_by("round", "created_at", "id")
    )


@dataclass(frozen=True)
class Tally:
    votes: int
    counts: dict[str, int]
    eligible: int
    quorum: int
    leader: str | None  # the winning choice key when the majority rule decides

    @property
    def quorum_reached(self) -> bool:
        return self.votes >= self.quorum

    @property
    def tied(self) -> bool:
        """Quorum reached (or everyone voted) without a majority: the chair decides."""
        if self.leader is not None or self.votes == 0:
            return False
        return self.quorum_reached or self.votes >= self.eligible


def tally(dispute: Dispute, round_: int | None = None) -> Tally:
    round_ = round_ or dispute.round
    counts = Counter(vote.choice_key for vote in Vote.objects.filter(dispute=dispute, round=round_))
    total = sum(counts.values())
    needed = quorum()
    leader = None
    if total >= needed:
        best, best_count = max(counts.items(), key=lambda item: item[1])
        unique = sum(1 for count in counts.values() if count == best_count) == 1
        if unique and best_count / total > majority():
            leader = best
    return Tally(
        votes=total,
        counts=dict(counts),
        eligible=len(eligible_voters(dispute)),
        quorum=needed,
        leader=leader,
    )


def needs_chair(dispute: Dispute, now: datetime | None = None) -> bool:
    if not dispute.is_pending:
        return False
    return dispute.is_overdue(now) or tally(dispute).tied


def committee_queue_for(member: User) -> QuerySet[Dispute]:
    """Pending cases, soonest deadline first (the admin's default order too)."""
    return (
        Dispute.objects.filter(state__in=PENDING_STATES)
        .select_related("customer", "claimant", "respondent")
        .order_by("deadline", "pk")
    )


@dataclass(frozen=True)
class QueueSummary:
    pending: int
    awaiting_my_vote: int
    overdue: int
    chair_decisions: int


def committee_summary(member: User, now: datetime | None = None) -> QueueSummary:
    """The committee home page's figures; the per-case eligibility checks are bounded by
    the number of pending cases (a committee's queue is small)."""
    now = now or timezone.now()
    pending = list(committee_queue_for(member).select_related("claimant__team", "respondent__team"))
    awaiting = chair = 0
    for dispute in pending:
        if can_vote(member, dispute) and not has_voted(member, dispute):
            awaiting += 1
        if needs_chair(dispute, now) and (chosen := chair_for(dispute)) and chosen.pk == member.pk:
            chair += 1
    return QueueSummary(
        pending=len(pending),
        awaiting_my_vote=awaiting,
        overdue=sum(1 for dispute in pending if dispute.deadline < now),
        chair_decisions=chair,
    )


# --- the lists -----------------------------------------------------------------------------

DISPUTE_SORTS: dict[str, str] = {
    "filed": "filed_at",
    "deadline": "deadline",
    "state": "state",
}
DISPUTE_DEFAULT_SORT = "-filed"


def dispute_list(
    user: User, params: Mapping[str, Any]
) -> tuple[DisputeFilter, QuerySet[Dispute], str]:
    from disputes.filters import DisputeFilter

    scoped = disputes_visible_to(user)
    filterset = DisputeFilter(params, queryset=scoped)
    queryset = filterset.qs if filterset.is_valid() else scoped.none()
    sort = params.get("sort") or DISPUTE_DEFAULT_SORT
    column = DISPUTE_SORTS.get(sort.removeprefix("-"))
    if column is None:
        sort = DISPUTE_DEFAULT_SORT
        column = DISPUTE_SORTS[sort.removeprefix("-")]
    order = F(column).desc() if sort.startswith("-") else F(column).asc()
    queryset = queryset.select_related(
        "customer", "other_customer", "claimant", "respondent"
    ).order_by(order, "-id")
    return filterset, queryset, sort


# --- the administrators' report -------------------------------------------------------------


@dataclass(frozen=True)
class DisputeReport:
    months: list[tuple[datetime, int]]
    total: int
    decided: int
    median_days_to_ruling: float | None
    upheld_share: float | None
    causes: list[tuple[str, int]]
    outcomes: list[tuple[str, int]]


def dispute_report(now: datetime | None = None, months: int = 12) -> DisputeReport:
    """Disputes per month (last `months`), median days from filing to the first ruling,
    share of final rulings that upheld the owner, top causes. A handful of grouped queries."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    start_month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _step in range(months - 1):
        start_month = (start_month - timedelta(days=1)).replace(day=1)
    per_month = dict(
        Dispute.objects.filter(filed_at__gte=start_month)
        .annotate(month=TruncMonth("filed_at"))
        .values("month")
        .annotate(n=Count("id"))
        .values_list("month", "n")
    )
    series: list[tuple[datetime, int]] = []
    month = start_month
    for _step in range(months):
        series.append((month, per_month.get(month, 0)))
        month = (month + timedelta(days=32)).replace(day=1)
    first_rulings = Ruling.objects.filter(round=1).values_list("created_at", "dispute__filed_at")
    durations = [(ruled - filed).total_seconds() / 86400 for ruled, filed in first_rulings]
    # The last ruling of each case is its final word (an appeal replaces the first).
    finals: dict[int, str] = {}
    for dispute_id, outcome in Ruling.objects.order_by("dispute_id", "round").values_list(
        "dispute_id", "outcome"
    ):
        finals[dispute_id] = outcome
    upheld = sum(1 for outcome in finals.values() if outcome == RulingOutcome.UPHOLD)
    causes: Counter[str] = Counter()
    for kind, rule_kind in Dispute.objects.values_list("kind", "rule_event__kind"):
        if kind == DisputeKind.WRONG_RULE and rule_kind:
            causes[f"{kind}:{rule_kind}"] += 1
        else:
            causes[kind] += 1
    return DisputeReport(
        months=series,
        total=Dispute.objects.count(),
        decided=len(finals),
        median_days_to_ruling=round(median(durations), 1) if durations else None,
        upheld_share=(upheld / len(finals)) if finals else None,
        causes=causes.most_common(5),
        outcomes=Counter(finals.values()).most_common(),
    )


def overdue_anomalies(as_of: datetime) -> Any:
    """The ownership review's "disputes past their deadline" section, in its own shape.
    Register with `ownership.review.anomalies.register_anomaly_source(
    ReviewAction.DISPUTE_OVERDUE, overdue_anomalies)`."""
    from django.utils.translation import gettext as _

    from ownership.models import ReviewAction
    from ownership.review.anomalies import ANOMALY_ROW_LIMIT, AnomalyItem, AnomalyList

    queryset = Dispute.objects.filter(state__in=PENDING_STATES, deadline__lt=as_of)
    result = AnomalyList(ReviewAction.DISPUTE_OVERDUE, count=queryset.count())
    rows = queryset.order_by("deadline", "pk").values_list(
        "pk", "customer_id", "respondent_id", "respondent_team_id", "deadline"
    )[:ANOMALY_ROW_LIMIT]
    for pk, customer_id, rep_id, team_id, deadline in rows:
        result.items.append(
            AnomalyItem(
                customer_id,
                rep_id,
                team_id,
                _("dispute #%(id)s was due on %(date)s")
                % {"id": pk, "date": timezone.localtime(deadline).strftime("%Y-%m-%d")},
            )
        )
    return result
