"""Reads of the allocation app: the pool, reassignment requests (who sees and who approves
them), rep profiles and allocation suggestions, the manager's team view."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from allocation.fairness import TIERS, Plan, Slot, balance, held_value, weighted_round_robin
from allocation.models import (
    ReassignmentRequest,
    Registration,
    RegistrationOutcome,
    RequestHistory,
    RequestState,
)
from crm.models import Customer, EmploymentState, FollowUp, FunnelStage, Role, Team, User
from crm.selectors import teams_managed_by, teams_under
from ownership import holds
from ownership.clock import compute_clock
from ownership.models import CustomerTerritory, EventKind, OwnershipEvent
from ownership.selectors import effective_policies
from ownership.territories import selectors as territory_selectors

if TYPE_CHECKING:
    from allocation.filters import RequestFilter

POOL_SORTS = {
    "name": "display_name",
    "created": "created_at",
    "tier": "value_tier",
    "stage": "stage",
}


def _unowned() -> QuerySet[Customer]:
    """Customers nobody owns, less those a workflow holds out of the pool (a registration
    awaiting approval: ownership.holds)."""
    queryset = Customer.objects.filter(owner__isnull=True, merged_into__isnull=True)
    for held in holds.held_customer_ids():
        queryset = queryset.exclude(pk__in=held)
    return queryset


def _lineages(team_ids: Iterable[int]) -> set[int]:
    """The teams and every team above them, from one query over the (small) team table: a
    sub-team sees its parent's territory pool."""
    parents = dict(Team.objects.values_list("pk", "parent_id"))
    found: set[int] = set()
    for team_id in team_ids:
        node: int | None = team_id
        while node is not None and node in parents and node not in found:
            found.add(node)
            node = parents[node]
    return found


def _territory_pools(queryset: QuerySet[Customer], team_ids: set[int]) -> QuerySet[Customer]:
    """Narrow the pool to the customers of the territories whose responsible teams include
    one of `team_ids` or a team above them, plus the national pool (no territory and no
    default team; or a territory without a team). The rule set's default team owns the pool
    of customers no territory matched (and of those not resolved yet). No active rule set:
    all national.

    Which territories qualify is decided in memory on the compiled rule set (teams are
    inherited down the tree); the pool itself stays one SQL query with EXISTS."""
    compiled = territory_selectors.active_compiled()
    if compiled is None:
        return queryset
    lineage = _lineages(team_ids)
    visible = [
        territory.id
        for territory in compiled.territories.values()
        if not territory.team_ids or lineage & set(territory.team_ids)
    ]
    records = CustomerTerritory.objects.filter(
        customer=OuterRef("pk"), rule_set_id=compiled.rule_set_id
    )
    condition = Q(Exists(records.filter(territory_id__in=visible)))
    if compiled.default_team_id is None or compiled.default_team_id in lineage:
        condition |= Q(~Exists(records.filter(territory__isnull=False)))
    return queryset.filter(condition)


def pool_for(user: User) -> QuerySet[Customer]:
    """The public pool (公海) as `user` sees it: with territories, their team's pool (and the
    pools of the teams above it; a manager: also those of the teams they manage) plus the
    national pool; administrators see every pool. Contacts stay masked."""
    queryset = _unowned()
    if not user.is_crm_admin:
        team_ids = {user.team_id} if user.team_id else set()
        if user.is_manager:
            team_ids |= set(teams_managed_by(user).values_list("pk", flat=True))
        queryset = _territory_pools(queryset, team_ids)
    return queryset.select_related("industry").order_by("-created_at")


def in_other_pools(user: User, ids: Iterable[int]) -> set[int]:
    """Of `ids`, the pool customers that are in another team's pool than `user`'s."""
    wanted = list(ids)
    return set(
        team_pool(None)
        .filter(pk__in=wanted)
        .exclude(pk__in=pool_for(user).filter(pk__in=wanted).values("pk"))
        .values_list("pk", flat=True)
    )


def in_pool_of(user: User, customer: Customer) -> bool:
    """May `user` see (and, a rep, claim) `customer` in their pool?"""
    return pool_for(user).filter(pk=customer.pk).exists()


def pool_label(customer: Customer) -> str:
    """Whose pool an unowned customer is in: "the pool of 华北销售部" or "the national pool"."""
    compiled = territory_selectors.active_compiled()
    team_ids: tuple[int, ...] = ()
    if compiled is not None:
        territory_id = territory_selectors.territory_id_of(customer.pk)
        territory = compiled.territories.get(territory_id) if territory_id else None
        if territory is not None:
            team_ids = territory.team_ids
        elif compiled.default_team_id:
            team_ids = (compiled.default_team_id,)
    if not team_ids:
        return _("the national pool")
    teams = territory_selectors.teams_by_id(team_ids)
    return _("the pool of %(teams)s") % {
        "teams": _("、").join(teams[pk].name for pk in team_ids if pk in teams)
    }


def filter_pool(queryset: QuerySet[Customer], params: dict[str, str]) -> QuerySet[Customer]:
    q = params.get("q", "").strip()
    if q:
        queryset = queryset.filter(Q(display_name__icontains=q) | Q(search_key__icontains=q))
    industry = params.get("industry", "").strip()
    if industry.isdigit():
        queryset = queryset.filter(industry_id=int(industry))
    tier = params.get("tier", "").strip()
    if tier in {"A", "B", "C", "D"}:
        queryset = queryset.filter(value_tier=tier)
    region = params.get("region", "").strip()
    if region:
        queryset = queryset.filter(Q(province__icontains=region) | Q(city__icontains=region))
    sort = params.get("sort", "")
    column = POOL_SORTS.get(sort.lstrip("-"))
    if column:
        queryset = queryset.order_by(("-" if sort.startswith("-") else "") + column, "pk")
    return queryset


# --- Reassignment requests: who sees and who approves ------------------------------------

REQUEST_SORTS: dict[str, str] = {
    "created": "created_at",
    "expires": "expires_at",
    "customer": "customer__display_name",
}
REQUEST_DEFAULT_SORT = "-created"


def _requests() -> QuerySet[ReassignmentRequest]:
    return ReassignmentRequest.objects.select_related(
        "customer",
        "from_owner",
        "from_owner__team",
        "to_rep",
        "to_rep__team",
        "requested_by",
        "source_team",
        "target_team",
    )


def requests_visible_to(user: User) -> QuerySet[ReassignmentRequest]:
    """The one scope of request reads: the people named in a request, the managers of the
    teams on either side (the whole subtree) and administrators."""
    base = _requests()
    if not user.is_active:
        return base.none()
    if user.is_crm_admin:
        return base
    involved = Q(requested_by=user) | Q(from_owner=user) | Q(to_rep=user)
    if user.is_manager:
        managed = teams_managed_by(user)
        involved |= Q(source_team__in=managed) | Q(target_team__in=managed)
    return base.filter(involved)


def request_for(user: User, pk: int) -> ReassignmentRequest:
    """A request the user may see, or Http404 (never a hint that it exists)."""
    return get_object_or_404(requests_visible_to(user), pk=pk)


def approval_sides(user: User, request: ReassignmentRequest) -> set[str]:
    """The approvals `user` may give: "source" (manager of the current owner's team) and
    "target" (manager of the receiving team, only for a move across teams)."""
    if not user.is_active:
        return set()
    needed = {"source", "target"} if request.needs_target_approval else {"source"}
    if user.is_crm_admin:
        return needed
    if not user.is_manager:
        return set()
    managed = set(teams_managed_by(user).values_list("pk", flat=True))
    sides = set()
    if request.source_team_id in managed:
        sides.add("source")
    if request.needs_target_approval and request.target_team_id in managed:
        sides.add("target")
    return sides


def can_decide(user: User, request: ReassignmentRequest) -> bool:
    """May approve or reject now: the request is pending and an approval of theirs is due."""
    if request.state != RequestState.PENDING:
        return False
    return bool(approval_sides(user, request) & request.missing_sides())


def team_manager(team: Team | None) -> User | None:
    """Who approves for `team`: its manager, else the nearest manager up the tree."""
    seen: set[int] = set()
    node = team
    while node is not None and node.pk not in seen:
        seen.add(node.pk)
        if node.manager_id is not None:
            manager = User.objects.filter(pk=node.manager_id, is_active=True).first()
            if manager is not None:
                return manager
        node = node.parent
    return None


def _sorted(
    queryset: QuerySet[ReassignmentRequest], sort: str
) -> tuple[QuerySet[ReassignmentRequest], str]:
    column = REQUEST_SORTS.get(sort.removeprefix("-"))
    if column is None:
        sort = REQUEST_DEFAULT_SORT
        column = REQUEST_SORTS[sort.removeprefix("-")]
    order = F(column).desc() if sort.startswith("-") else F(column).asc()
    return queryset.order_by(order, "-id"), sort


def my_requests(
    user: User, box: str, params: Mapping[str, Any]
) -> tuple[RequestFilter, QuerySet[ReassignmentRequest], str]:
    """ "My requests": `sent` (I asked, offered or moved) or `received` (about my customer,
    or a customer that would come to me)."""
    from allocation.filters import RequestFilter

    if box == "received":
        scoped = _requests().filter(Q(from_owner=user) | Q(to_rep=user)).exclude(requested_by=user)
    else:
        scoped = _requests().filter(requested_by=user)
    filterset = RequestFilter(params, queryset=scoped)
    queryset = filterset.qs if filterset.is_valid() else scoped.none()
    queryset, sort = _sorted(queryset, params.get("sort") or REQUEST_DEFAULT_SORT)
    return filterset, queryset, sort


def approval_queue(user: User) -> QuerySet[ReassignmentRequest]:
    """Pending requests waiting for an approval `user` may give."""
    pending = _requests().filter(state=RequestState.PENDING)
    if not user.is_active:
        return pending.none()
    if user.is_crm_admin:
        return pending
    if not user.is_manager:
        return pending.none()
    managed = teams_managed_by(user)
    return pending.filter(
        Q(source_team__in=managed, source_approved_at__isnull=True)
        | Q(needs_target_approval=True, target_team__in=managed, target_approved_at__isnull=True)
    )


def approval_queue_filtered(
    user: User, params: Mapping[str, Any]
) -> tuple[RequestFilter, QuerySet[ReassignmentRequest], str]:
    from allocation.filters import RequestFilter

    scoped = approval_queue(user)
    filterset = RequestFilter(params, queryset=scoped, with_state=False)
    queryset = filterset.qs if filterset.is_valid() else scoped.none()
    queryset, sort = _sorted(queryset, params.get("sort") or "created")
    return filterset, queryset, sort


def request_history(request: ReassignmentRequest) -> QuerySet[RequestHistory]:
    return request.history.select_related("actor").order_by("at", "id")


def collision_registration_for(user: User, pk: int) -> Registration:
    """The rep's own collision (撞单) record: from it they may ask for the customer without
    being able to see it. Anyone else's, or another outcome: Http404."""
    return get_object_or_404(
        Registration.objects.select_related("customer", "customer__owner", "customer__owner__team"),
        pk=pk,
        rep=user,
        outcome=RegistrationOutcome.COLLISION,
        customer__isnull=False,
    )


# --- Registrations outside the rep's territory: the hold and the approval queue ----------


def pending_customer_ids() -> QuerySet[Registration, Any]:
    """Customers held out of the pool while their registration awaits approval, as a
    subquery (registered with ownership.holds by AllocationConfig.ready)."""
    return Registration.objects.filter(
        outcome=RegistrationOutcome.PENDING, customer__isnull=False
    ).values("customer_id")


def pending_registration_of(customer: Customer) -> Registration | None:
    """The registration of `customer` awaiting approval, if any (what a second registration
    of the same company is told: who, which team, since when)."""
    return (
        Registration.objects.filter(customer=customer, outcome=RegistrationOutcome.PENDING)
        .select_related("rep", "rep__team")
        .first()
    )


def _held_by_territory() -> QuerySet[Registration]:
    """Registrations a territory held back (pending, then approved or rejected) or routed:
    those with responsible teams."""
    teams = Registration.responsible_teams.through.objects.filter(registration_id=OuterRef("pk"))
    return Registration.objects.filter(Exists(teams))


def registrations_decided_by(user: User) -> QuerySet[Registration]:
    """Registrations held back by a territory that `user` decides on: those of the teams the
    user manages (with every team below them: ownership.territories.selectors.managers_of
    answers the same question the other way round); administrators: all."""
    if not user.is_active:
        return Registration.objects.none()
    if user.is_crm_admin:
        return _held_by_territory()
    if not user.is_manager:
        return Registration.objects.none()
    teams = Registration.responsible_teams.through.objects.filter(
        registration_id=OuterRef("pk"), team_id__in=teams_managed_by(user).values("pk")
    )
    return Registration.objects.filter(Exists(teams))


def own_registration_for(user: User, pk: int) -> Registration:
    """A registration of the rep's own that a territory held back or routed (its outcome
    page); anyone else's, or another kind: Http404."""
    return get_object_or_404(
        _held_by_territory()
        .select_related("customer", "ledger_event", "ledger_event__actor")
        .prefetch_related("responsible_teams"),
        pk=pk,
        rep=user,
    )


def can_decide_registration(user: User, registration: Registration) -> bool:
    return registrations_decided_by(user).filter(pk=registration.pk).exists()


def registration_for_decision(user: User, pk: int) -> Registration:
    """A registration `user` decides on (in any outcome: deciding twice gets a clear
    answer), or Http404."""
    return get_object_or_404(registrations_decided_by(user), pk=pk)


def registration_queue(user: User) -> QuerySet[Registration]:
    """Pending registrations `user` may approve or reject, oldest (first precedence) first."""
    return (
        registrations_decided_by(user)
        .filter(outcome=RegistrationOutcome.PENDING)
        .select_related("rep", "rep__team", "customer", "customer__industry")
        .prefetch_related("responsible_teams")
        .order_by("submitted_at", "pk")
    )


@dataclass
class Holding:
    owned: int
    cap: int

    @property
    def full(self) -> bool:
        return self.owned >= self.cap


def holdings_of(reps: Iterable[User]) -> dict[int, Holding]:
    """Customers counted against each rep's holding cap, and the cap (three queries): the
    queue shows at once who could not take a customer now."""
    people = {rep.pk: rep for rep in reps}
    if not people:
        return {}
    policies = effective_policies({rep.team_id for rep in people.values()})
    counts = {
        row["owner_id"]: row
        for row in Customer.objects.filter(owner_id__in=people, merged_into__isnull=True)
        .values("owner_id")
        .annotate(total=Count("id"), won=Count("id", filter=Q(stage=FunnelStage.WON)))
        .order_by()
    }
    result = {}
    for pk, rep in people.items():
        policy = policies[rep.team_id]
        row = counts.get(pk, {"total": 0, "won": 0})
        owned = row["total"] - (0 if policy.count_won_in_cap else row["won"])
        result[pk] = Holding(owned=owned, cap=policy.max_owned)
    return result


# --- Allocation (分配): scope, rep profiles and suggestions ---------------------------------

# At most this many customers per suggestion page or bulk allocation.
MAX_SELECTION = 200
RECENT_DAYS = 90
TOP_SUGGESTIONS = 3


def allocation_teams(user: User) -> QuerySet[Team]:
    """Teams whose reps `user` may allocate to: a manager's subtree; administrators: all."""
    if not user.is_active:
        return Team.objects.none()
    if user.is_crm_admin:
        return Team.objects.all().order_by("name")
    if user.is_manager:
        return teams_managed_by(user).order_by("name")
    return Team.objects.none()


def allocation_team_for(user: User, raw_team: str | None) -> Team | None:
    """The team an allocation page works on: `?team=` if the user may allocate for it
    (else Http404), by default the first team the user manages directly."""
    teams = allocation_teams(user)
    if raw_team:
        if not raw_team.isdigit():
            raise Http404
        return get_object_or_404(teams, pk=int(raw_team))
    return teams.filter(manager=user).first() or teams.first()


def team_pool(team: Team | None) -> QuerySet[Customer]:
    """The pool a manager allocates from for `team`: the team's territory pool (and those of
    the teams above it) plus the national pool. No team: the whole pool."""
    queryset = _unowned()
    if team is not None:
        queryset = _territory_pools(queryset, {team.pk})
    return queryset.select_related("industry")


def team_reps(team: Team) -> QuerySet[User]:
    return User.objects.filter(team__in=teams_under(team), role=Role.REP).select_related("team")


@dataclass
class RepProfile:
    """What the allocation rules know about one rep (all figures from a few aggregates)."""

    rep: User
    cap: int = 0
    owned: int = 0  # counted against the holding cap
    owned_total: int = 0
    tiers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    wins_recent: int = 0
    won_industries: Counter[int] = field(default_factory=Counter)
    won_provinces: Counter[str] = field(default_factory=Counter)
    recycles_recent: int = 0
    excluded: str = ""  # why the rep can take no customers now; "" = eligible

    @property
    def free(self) -> int:
        return max(0, self.cap - self.owned)

    @property
    def value(self) -> int:
        return held_value(self.tiers)

    @property
    def win_rate(self) -> float:
        return min(1.0, self.wins_recent / self.owned_total) if self.owned_total else 0.0

    @property
    def eligible(self) -> bool:
        return not self.excluded and self.free > 0


@dataclass
class Reason:
    text: str
    effect: int  # +1 in favour, -1 against, 0 neutral


@dataclass
class Suggestion:
    profile: RepProfile
    score: float
    reasons: list[Reason]


def rep_profiles(team: Team, now: datetime) -> list[RepProfile]:
    """Every rep of the team with capacity, holdings, recent wins and recycles.

    A constant number of queries whatever the team or database size: reps, policies (2),
    holdings by tier, wins (follow-ups reaching 100% + won customers held), recycles.
    """
    reps = list(team_reps(team).order_by("display_name", "username"))
    profiles = {rep.pk: RepProfile(rep=rep) for rep in reps}
    if not profiles:
        return []
    policies = effective_policies([rep.team_id for rep in reps])
    since = now - timedelta(days=RECENT_DAYS)
    holdings = (
        Customer.objects.filter(owner_id__in=profiles, merged_into__isnull=True)
        .values("owner_id")
        .annotate(
            total=Count("id"),
            won=Count("id", filter=Q(stage=FunnelStage.WON)),
            **{f"tier_{tier}": Count("id", filter=Q(value_tier=tier)) for tier in TIERS},
        )
        .order_by()
    )
    for row in holdings:
        profile = profiles[row["owner_id"]]
        profile.owned_total = row["total"]
        profile.tiers = {tier: row[f"tier_{tier}"] for tier in TIERS}
        policy = policies[profile.rep.team_id]
        profile.owned = row["total"] - (0 if policy.count_won_in_cap else row["won"])
    # Wins: a follow-up by the rep that moved a customer to 100%, or a won customer held
    # (imported or won before follow-ups were logged).
    wins: dict[int, dict[int, tuple[int | None, str, bool]]] = {pk: {} for pk in profiles}
    won_follow_ups = (
        FollowUp.objects.filter(
            by_id__in=profiles, stage_after=FunnelStage.WON, stage_before__lt=FunnelStage.WON
        )
        .values_list("by_id", "customer_id", "customer__industry_id", "customer__province")
        .annotate(last=Max("happened_at"))
        .order_by()
    )
    for rep_id, customer_id, industry_id, province, last in won_follow_ups:
        wins[rep_id][customer_id] = (industry_id, province, last >= since)
    won_held = Customer.objects.filter(
        owner_id__in=profiles, merged_into__isnull=True, stage=FunnelStage.WON
    ).values_list("owner_id", "id", "industry_id", "province", "last_follow_up_at")
    for rep_id, customer_id, industry_id, province, last in won_held:
        recent = last is not None and last >= since
        known = wins[rep_id].get(customer_id)
        wins[rep_id][customer_id] = (industry_id, province, recent or bool(known and known[2]))
    for rep_id, won in wins.items():
        profile = profiles[rep_id]
        for industry_id, province, recent in won.values():
            profile.wins_recent += recent
            if industry_id is not None:
                profile.won_industries[industry_id] += 1
            if province:
                profile.won_provinces[province] += 1
    recycles = (
        OwnershipEvent.objects.filter(
            from_owner_id__in=profiles, kind=EventKind.RECYCLED, occurred_at__gte=since
        )
        .values("from_owner_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in recycles:
        profiles[row["from_owner_id"]].recycles_recent = row["n"]
    for profile in profiles.values():
        rep = profile.rep
        profile.cap = policies[rep.team_id].max_owned
        if not rep.is_active or rep.state == EmploymentState.DEPARTED:
            profile.excluded = _("inactive")
        elif rep.state == EmploymentState.DEPARTING:
            profile.excluded = _("leaving the company")
        elif profile.free == 0:
            profile.excluded = _("holding cap reached")
    return list(profiles.values())


# Weights of the suggestion score (points). Capacity dominates so that nobody is buried;
# then proven ability; then fit with the customer; what a rep holds and recent recycles
# count against them.
W_CAPACITY = 40.0
W_WIN_RATE = 25.0
W_INDUSTRY = 15.0
W_REGION = 10.0
W_HELD_VALUE = 10.0
W_RECYCLES = 15.0
FULL_MATCH_WINS = 3  # wins in the same industry / region that count as a full match
FULL_PENALTY_RECYCLES = 3


def profile_reasons(profile: RepProfile) -> list[Reason]:
    """The customer-independent half of the explanation."""
    reasons = [
        Reason(
            _("free capacity %(free)d of %(cap)d") % {"free": profile.free, "cap": profile.cap},
            1 if profile.free else -1,
        ),
        Reason(
            _("won %(wins)d of %(owned)d customers in the last %(days)d days (%(rate)d%%)")
            % {
                "wins": profile.wins_recent,
                "owned": profile.owned_total,
                "days": RECENT_DAYS,
                "rate": round(profile.win_rate * 100),
            },
            1 if profile.wins_recent else 0,
        ),
        Reason(
            _("holds A %(a)d · B %(b)d · C %(c)d · D %(d)d (value %(value)d)")
            % {
                "a": profile.tiers["A"],
                "b": profile.tiers["B"],
                "c": profile.tiers["C"],
                "d": profile.tiers["D"],
                "value": profile.value,
            },
            0,
        ),
    ]
    if profile.recycles_recent:
        reasons.append(
            Reason(
                ngettext(
                    "%(count)d customer recycled from them in the last %(days)d days",
                    "%(count)d customers recycled from them in the last %(days)d days",
                    profile.recycles_recent,
                )
                % {"count": profile.recycles_recent, "days": RECENT_DAYS},
                -1,
            )
        )
    return reasons


def base_points(profile: RepProfile, max_value: int) -> float:
    """The customer-independent part of the score: capacity, ability, load, recycles."""
    return (
        W_CAPACITY * (profile.free / profile.cap if profile.cap else 0.0)
        + W_WIN_RATE * profile.win_rate
        - W_HELD_VALUE * (profile.value / max_value if max_value else 0.0)
        - W_RECYCLES * min(1.0, profile.recycles_recent / FULL_PENALTY_RECYCLES)
    )


@dataclass
class CustomerSuggestions:
    customer: Customer
    suggestions: list[Suggestion]


def suggestions_for(
    customers: Sequence[Customer], profiles: Sequence[RepProfile], top: int = TOP_SUGGESTIONS
) -> list[CustomerSuggestions]:
    """The best `top` eligible reps for each customer, best first (ties: lower rep id).

    No queries (customers come with their industry joined). 200 customers x 50 reps is
    10,000 scores: the customer-independent part is computed once per rep and the
    explanations are written only for the reps shown.
    """
    eligible = [profile for profile in profiles if profile.eligible]
    max_value = max((profile.value for profile in eligible), default=0)
    # Per rep: the customer-independent points, and the points each industry / region
    # they have won in adds (the fit part is never negative).
    base = [
        (
            base_points(profile, max_value),
            profile.rep.pk,
            profile,
            {
                k: W_INDUSTRY * min(1.0, n / FULL_MATCH_WINS)
                for k, n in profile.won_industries.items()
            },
            {k: W_REGION * min(1.0, n / FULL_MATCH_WINS) for k, n in profile.won_provinces.items()},
        )
        for profile in eligible
    ]
    industry_text = _("won %(count)d in %(industry)s before")
    region_text = _("won %(count)d in %(region)s before")
    ranked_by_key: dict[tuple[int | None, str], list[tuple[float, int, RepProfile]]] = {}
    rows = []
    for customer in customers:
        industry_id = customer.industry_id
        province = customer.province
        key = (industry_id, province)
        industry_key = industry_id or 0  # no industry: matches nothing (ids start at 1)
        best = ranked_by_key.get(key)
        if best is None:
            # Customers of the same industry and region rank the reps alike: once per key.
            best = heapq.nsmallest(
                top,
                (
                    (
                        -(
                            points
                            + industries.get(industry_key, 0.0)
                            + provinces.get(province, 0.0)
                        ),
                        rep_id,
                        profile,
                    )
                    for points, rep_id, profile, industries, provinces in base
                ),
                key=lambda item: (item[0], item[1]),
            )
            ranked_by_key[key] = best
        industry_name = customer.industry.name if industry_id else ""  # type: ignore[union-attr]
        suggestions = []
        for negative, _rep_id, profile in best:
            reasons: list[Reason] = []
            if industry_id:
                wins = profile.won_industries.get(industry_id, 0)
                reasons.append(
                    Reason(
                        industry_text % {"count": wins, "industry": industry_name}, int(wins > 0)
                    )
                )
            if province:
                wins = profile.won_provinces.get(province, 0)
                reasons.append(
                    Reason(region_text % {"count": wins, "region": province}, int(wins > 0))
                )
            suggestions.append(
                Suggestion(profile=profile, score=round(-negative, 1), reasons=reasons)
            )
        rows.append(CustomerSuggestions(customer=customer, suggestions=suggestions))
    return rows


def slots_for(profiles: Sequence[RepProfile]) -> list[Slot]:
    """Reps as the balancing algorithm sees them: those holding less value come first."""
    ordered = sorted(profiles, key=lambda p: (p.value, -p.free, p.rep.pk))
    return [
        Slot(rep_id=profile.rep.pk, capacity=profile.free, rank=rank)
        for rank, profile in enumerate(ordered)
        if profile.eligible
    ]


# What the suggestion and allocation pages read of a customer (nothing private).
SUGGESTION_FIELDS = (
    "id",
    "display_name",
    "province",
    "city",
    "value_tier",
    "owner_id",
    "created_at",
    "industry__name",
)


def selected_pool_customers(ids: Iterable[int], team: Team | None = None) -> list[Customer]:
    """The chosen customers that are (still) in the team's pool, in the order chosen."""
    wanted = list(dict.fromkeys(ids))[:MAX_SELECTION]
    found = {c.pk: c for c in team_pool(team).filter(pk__in=wanted).only(*SUGGESTION_FIELDS)}
    return [found[pk] for pk in wanted if pk in found]


# --- The manager's team view ---------------------------------------------------------------


@dataclass
class TeamRow:
    rep: User
    tiers: dict[str, int]
    owned: int
    cap: int
    due_this_week: int
    pending_requests: int
    last_follow_up: datetime | None

    @property
    def last_activity(self) -> datetime | None:
        moments = [m for m in (self.last_follow_up, self.rep.last_login) if m is not None]
        return max(moments) if moments else None


def end_of_week(now: datetime) -> datetime:
    """Sunday 24:00 of the current week in the local time zone."""
    local = timezone.localtime(now)
    monday = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=local.weekday()
    )
    return monday + timedelta(days=7)


def team_overview(team: Team, now: datetime) -> tuple[list[TeamRow], int]:
    """Per rep: holdings by tier, cap, clocks ending this week, pending requests, last
    activity; and the pool size. Seven queries whatever the team size."""
    reps = list(
        team_reps(team)
        .annotate(
            **{
                f"tier_{tier}": Count(
                    "owned_customers",
                    filter=Q(
                        owned_customers__value_tier=tier,
                        owned_customers__merged_into__isnull=True,
                    ),
                )
                for tier in TIERS
            },
            won=Count(
                "owned_customers",
                filter=Q(
                    owned_customers__stage=FunnelStage.WON,
                    owned_customers__merged_into__isnull=True,
                ),
            ),
            last_follow_up=Subquery(
                FollowUp.objects.filter(by=OuterRef("pk"))
                .order_by("-happened_at")
                .values("happened_at")[:1]
            ),
        )
        .order_by("team__name", "display_name", "username")
    )
    ids = [rep.pk for rep in reps]
    policies = effective_policies([rep.team_id for rep in reps])
    week_end = end_of_week(now)
    due: Counter[int] = Counter()
    facts = Customer.objects.filter(owner_id__in=ids, merged_into__isnull=True).values_list(
        "owner_id", "owner__team_id", "stage", "clock_started_at", "last_follow_up_at"
    )
    for owner_id, team_id, stage, started, last in facts:
        clock = compute_clock(
            owner_id=owner_id,
            stage=stage,
            clock_started_at=started,
            last_follow_up_at=last,
            policy=policies[team_id],
        )
        if clock.returns_at is not None and clock.returns_at < week_end:
            due[owner_id] += 1
    pending: Counter[int] = Counter()
    open_requests = ReassignmentRequest.objects.filter(state=RequestState.PENDING).filter(
        Q(from_owner_id__in=ids) | Q(to_rep_id__in=ids)
    )
    for from_id, to_id in open_requests.values_list("from_owner_id", "to_rep_id"):
        for rep_id in {from_id, to_id}:
            pending[rep_id] += 1
    rows = []
    for rep in reps:
        tiers = {tier: getattr(rep, f"tier_{tier}") for tier in TIERS}
        policy = policies[rep.team_id]
        owned = sum(tiers.values()) - (0 if policy.count_won_in_cap else rep.won)  # type: ignore[attr-defined]
        rows.append(
            TeamRow(
                rep=rep,
                tiers=tiers,
                owned=owned,
                cap=policy.max_owned,
                due_this_week=due[rep.pk],
                pending_requests=pending[rep.pk],
                last_follow_up=rep.last_follow_up,  # type: ignore[attr-defined]
            )
        )
    pool_size = team_pool(team).count()
    return rows, pool_size


def bulk_plan(
    team: Team, customers: Sequence[Customer], rep_ids: Iterable[int], now: datetime | None = None
) -> tuple[Plan, list[RepProfile]]:
    """The balanced plan for giving `customers` to the chosen reps of `team` (the preview
    shows it; the confirmation recomputes it from the figures of that moment)."""
    wanted = set(rep_ids)
    profiles = [p for p in rep_profiles(team, now or timezone.now()) if p.rep.pk in wanted]
    plan = balance([(c.pk, c.value_tier) for c in customers], slots_for(profiles))
    return plan, profiles


def distribution_plan(
    team: Team, customers: Iterable[Customer], now: datetime | None = None
) -> tuple[Plan, list[RepProfile]]:
    """The automatic distribution of pool customers: weighted round robin by free
    capacity over the team's eligible reps, most valuable customers first."""
    pool = sorted(
        (customer for customer in customers if customer.owner_id is None),
        key=lambda c: (c.value_tier, c.created_at, c.pk),
    )
    profiles = rep_profiles(team, now or timezone.now())
    capacities = {profile.rep.pk: profile.free for profile in profiles if profile.eligible}
    plan = weighted_round_robin(((c.pk, c.value_tier) for c in pool), capacities)
    return plan, [profile for profile in profiles if profile.eligible]
