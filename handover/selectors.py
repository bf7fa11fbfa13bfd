"""Permission-scoped reads of the handover app: who sees which departure and task, plan
progress, and successor suggestions (computed from crm/ownership data: this app never
imports the other workflow apps)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Customer, EmploymentState, FollowUp, FunnelStage, Role, Team, User
from crm.selectors import teams_managed_by, teams_under
from handover.models import (
    MOVED_STATES,
    OPEN_STATES,
    Departure,
    DepartureState,
    HandoverTask,
    TaskHistory,
    TaskState,
)
from ownership.selectors import effective_policies

# "Recent" win rate: customers moved to 100% in this many days, over the customers owned.
RECENT_DAYS = 90


# --- who may see what ---------------------------------------------------------------------


def departures_visible_to(user: User) -> QuerySet[Departure]:
    """Departures a user may read as a plan: administrators all; managers those of the teams
    they manage (the whole subtree); nobody else (reps work from their task lists)."""
    base = Departure.objects.all()
    if not user.is_active:
        return base.none()
    if user.is_crm_admin:
        return base
    if user.is_manager:
        return base.filter(team__in=teams_managed_by(user))
    return base.none()


def can_manage_departure(user: User, departure: Departure) -> bool:
    return departures_visible_to(user).filter(pk=departure.pk).exists()


def departure_for(user: User, pk: int) -> Departure:
    """A departure the user manages, or Http404 (never a hint that it exists)."""
    queryset = departures_visible_to(user).select_related("leaver", "team", "recorded_by")
    return get_object_or_404(queryset, pk=pk)


def tasks_visible_to(user: User) -> QuerySet[HandoverTask]:
    """Tasks a user may read: the managers' plans, the leaver's own, the successor's own."""
    base = HandoverTask.objects.all()
    if not user.is_active:
        return base.none()
    if user.is_crm_admin:
        return base
    mine = Q(departure__leaver=user) | Q(successor=user)
    if user.is_manager:
        return base.filter(Q(departure__team__in=teams_managed_by(user)) | mine)
    return base.filter(mine)


def task_for(user: User, pk: int) -> HandoverTask:
    queryset = tasks_visible_to(user).select_related(
        "departure__leaver", "departure__team", "customer", "successor", "moved_event"
    )
    return get_object_or_404(queryset, pk=pk)


def leavable_reps(user: User) -> QuerySet[User]:
    """Reps whose departure `user` may record: active reps of the teams they manage."""
    reps = User.objects.filter(
        role=Role.REP, is_active=True, state=EmploymentState.ACTIVE
    ).select_related("team")
    if user.is_crm_admin:
        pass
    elif user.is_manager:
        reps = reps.filter(team__in=teams_managed_by(user))
    else:
        return reps.none()
    return reps.order_by("team__name", "display_name", "username")


def successor_candidates(user: User, leaver: User) -> QuerySet[User]:
    """Who may take over the leaver's customers: active (not departing) reps of the teams
    the acting manager manages; for an administrator, of the leaver's team and below."""
    reps = (
        User.objects.filter(role=Role.REP, is_active=True, state=EmploymentState.ACTIVE)
        .exclude(pk=leaver.pk)
        .select_related("team")
    )
    if user.is_manager and not user.is_crm_admin:
        reps = reps.filter(team__in=teams_managed_by(user))
    elif leaver.team_id is not None:
        assert leaver.team is not None
        reps = reps.filter(team__in=teams_under(leaver.team))
    return reps.order_by("display_name", "username")


# --- successor suggestions ----------------------------------------------------------------


@dataclass
class Suggestion:
    rep: User
    owned: int = 0  # counted against the cap (won ones only if the policy says so)
    owned_total: int = 0
    cap: int = 0
    wins: int = 0
    same_team: bool = True
    planned: int = 0  # customers of this departure already planned for them
    reasons: list[str] = field(default_factory=list)

    @property
    def free(self) -> int:
        return max(0, self.cap - self.owned - self.planned)

    @property
    def win_rate(self) -> float:
        if not self.owned_total:
            return 0.0
        return min(1.0, self.wins / self.owned_total)

    @property
    def win_percent(self) -> int:
        return round(self.win_rate * 100)

    @property
    def rank_key(self) -> tuple[int, int, float, int, str]:
        # Same team first, then reps with room, then the strongest, then the emptiest.
        return (
            0 if self.same_team else 1,
            0 if self.free else 1,
            -self.win_rate,
            -self.free,
            self.rep.display_name or self.rep.username,
        )


def successor_suggestions(
    leaver: User,
    candidates: QuerySet[User] | list[User],
    now: datetime | None = None,
    planned: Mapping[int, int] | None = None,
) -> list[Suggestion]:
    """The candidates, strongest first: same team as the leaver, free capacity (owned
    against the holding cap of their effective pool policy, as ownership.services.
    owned_count counts it), recent win rate (customers they moved to 100% in the last
    RECENT_DAYS days over the customers they own). Every factor is spelled out.

    Four queries whatever the team size: candidates, policies (2), holdings, wins.
    """
    now = now or timezone.now()
    reps = list(candidates)
    if not reps:
        return []
    profiles = {
        rep.pk: Suggestion(rep=rep, same_team=rep.team_id == leaver.team_id) for rep in reps
    }
    policies = effective_policies({rep.team_id for rep in reps})
    holdings = (
        Customer.objects.filter(owner_id__in=profiles, merged_into__isnull=True)
        .values("owner_id")
        .annotate(total=Count("id"), won=Count("id", filter=Q(stage=FunnelStage.WON)))
        .order_by()
    )
    for row in holdings:
        profile = profiles[row["owner_id"]]
        policy = policies[profile.rep.team_id]
        profile.owned_total = row["total"]
        profile.owned = row["total"] - (0 if policy.count_won_in_cap else row["won"])
    wins = (
        FollowUp.objects.filter(
            by_id__in=profiles,
            stage_after=FunnelStage.WON,
            stage_before__lt=FunnelStage.WON,
            happened_at__gte=now - timedelta(days=RECENT_DAYS),
        )
        .values("by_id")
        .annotate(n=Count("customer_id", distinct=True))
        .order_by()
    )
    for row in wins:
        profiles[row["by_id"]].wins = row["n"]
    for profile in profiles.values():
        profile.cap = policies[profile.rep.team_id].max_owned
        profile.planned = (planned or {}).get(profile.rep.pk, 0)
        profile.reasons = _reasons(profile)
    return sorted(profiles.values(), key=lambda p: p.rank_key)


def _reasons(profile: Suggestion) -> list[str]:
    reasons = [
        _("won %(wins)d of %(owned)d customers in the last %(days)d days (%(rate)d%%)")
        % {
            "wins": profile.wins,
            "owned": profile.owned_total,
            "days": RECENT_DAYS,
            "rate": round(profile.win_rate * 100),
        },
        _("free capacity %(free)d of %(cap)d") % {"free": profile.free, "cap": profile.cap}
        if profile.free
        else _("holding cap reached"),
    ]
    reasons.append(_("same team") if profile.same_team else _("another team"))
    return reasons


def distribute(customers: list[Customer], suggestions: list[Suggestion]) -> dict[int, User]:
    """Spread customers over the suggested successors: the most advanced customers to the
    strongest colleague with room, then the next; when nobody has room left, in turn by
    strength (a handover ignores the cap: the business must not stay with the leaver)."""
    if not suggestions:
        return {}
    ordered = sorted(customers, key=lambda c: (-c.stage, c.value_tier, c.pk))
    room = {s.rep.pk: s.free for s in suggestions}
    ranked = sorted(suggestions, key=lambda s: s.rank_key)
    plan: dict[int, User] = {}
    turn = 0
    for customer in ordered:
        chosen = next((s for s in ranked if room[s.rep.pk] > 0), None)
        if chosen is None:
            chosen = ranked[turn % len(ranked)]
            turn += 1
        else:
            room[chosen.rep.pk] -= 1
        plan[customer.pk] = chosen.rep
    return plan


# --- plans and lists -------------------------------------------------------------------------


@dataclass
class Progress:
    total: int = 0
    moved: int = 0
    open: int = 0
    overdue: int = 0
    refused: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    # stage -> {"total": n, "moved": n, "open": n}
    by_stage: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def percent(self) -> int:
        settled = self.total - self.open
        return 100 if not self.total else settled * 100 // self.total


def departure_progress(departure: Departure, today: date | None = None) -> Progress:
    """Counts of the plan (tasks replaced by a reassignment are left out): one query."""
    today = today or timezone.localdate()
    rows = (
        HandoverTask.objects.filter(departure=departure)
        .exclude(state=TaskState.REASSIGNED)
        .values("stage", "state")
        .annotate(
            n=Count("id"),
            overdue=Count("id", filter=Q(due_date__lt=today, state__in=OPEN_STATES)),
        )
        .order_by()
    )
    progress = Progress(
        by_stage={stage: {"total": 0, "moved": 0, "open": 0} for stage in FunnelStage.values}
    )
    for row in rows:
        n = row["n"]
        progress.total += n
        progress.by_state[row["state"]] = progress.by_state.get(row["state"], 0) + n
        stage = progress.by_stage[row["stage"]]
        stage["total"] += n
        if row["state"] in MOVED_STATES:
            progress.moved += n
            stage["moved"] += n
        if row["state"] in OPEN_STATES:
            progress.open += n
            stage["open"] += n
        if row["state"] == TaskState.REFUSED:
            progress.refused += n
        progress.overdue += row["overdue"]
    return progress


def departure_list(user: User) -> QuerySet[Departure]:
    """The departures a manager sees, open first, with their counts (one query)."""
    return (
        departures_visible_to(user)
        .select_related("leaver", "team")
        .annotate(
            task_total=Count("tasks", filter=~Q(tasks__state=TaskState.REASSIGNED)),
            task_open=Count("tasks", filter=Q(tasks__state__in=OPEN_STATES)),
            task_refused=Count("tasks", filter=Q(tasks__state=TaskState.REFUSED)),
        )
        .order_by(F("finished_at").desc(nulls_first=True), "last_day", "-id")
    )


# `?sort=` of a plan's task table and the columns they order by (anything else: default).
TASK_SORTS: dict[str, str] = {
    "due": "due_date",
    "customer": "customer__display_name",
    "stage": "stage",
    "state": "state",
    "successor": "successor__display_name",
}
TASK_DEFAULT_SORT = "due"


def _sorted(queryset: QuerySet[HandoverTask], sort: str) -> tuple[QuerySet[HandoverTask], str]:
    column = TASK_SORTS.get(sort.removeprefix("-"))
    if column is None:
        sort, column = TASK_DEFAULT_SORT, TASK_SORTS[TASK_DEFAULT_SORT]
    order = F(column).desc() if sort.startswith("-") else F(column).asc()
    return queryset.order_by(order, "id"), sort


def departure_tasks(
    departure: Departure, params: Mapping[str, Any]
) -> tuple[Any, QuerySet[HandoverTask], str]:
    """The plan's task table filtered by `params` (a TaskFilter) and sorted by `?sort=`."""
    from handover.filters import TaskFilter

    scoped = HandoverTask.objects.filter(departure=departure)
    filterset = TaskFilter(params, queryset=scoped)
    queryset = filterset.qs if filterset.is_valid() else scoped.none()
    queryset = queryset.select_related("customer", "successor")
    queryset, sort = _sorted(queryset, str(params.get("sort") or TASK_DEFAULT_SORT))
    return filterset, queryset, sort


def overdue_tasks(departure: Departure, today: date | None = None) -> QuerySet[HandoverTask]:
    today = today or timezone.localdate()
    return (
        HandoverTask.objects.filter(departure=departure, state__in=OPEN_STATES, due_date__lt=today)
        .select_related("customer", "successor")
        .order_by("due_date", "id")
    )


def leaver_tasks(user: User) -> QuerySet[HandoverTask]:
    """The leaving rep's tasks (of every departure of theirs), what they must do first."""
    return (
        HandoverTask.objects.filter(departure__leaver=user)
        .exclude(state=TaskState.REASSIGNED)
        .select_related("customer", "successor", "departure")
        .order_by(_state_rank(), "due_date", "id")
    )


def incoming_tasks(user: User) -> QuerySet[HandoverTask]:
    """Customers handed over to `user`: waiting for acceptance first, then the rest."""
    return (
        HandoverTask.objects.filter(successor=user)
        .select_related("customer", "departure__leaver")
        .order_by(_state_rank(), "due_date", "id")
    )


def _state_rank() -> Any:
    from django.db.models import Case, IntegerField, Value, When

    ranks = [
        TaskState.PROPOSED,
        TaskState.DONE_BY_LEAVER,
        TaskState.ACCEPTED,
        TaskState.REFUSED,
    ]
    return Case(
        *[When(state=state, then=Value(i)) for i, state in enumerate(ranks)],
        default=Value(len(ranks)),
        output_field=IntegerField(),
    )


def open_departure_of(user: User) -> Departure | None:
    return Departure.objects.filter(leaver=user, state=DepartureState.IN_PROGRESS).first()


def task_history(task: HandoverTask) -> QuerySet[TaskHistory]:
    return task.history.select_related("actor").order_by("at", "id")


def incomplete_tasks(departure: Departure) -> QuerySet[HandoverTask]:
    """What the last day moved without a completed handover, with the state it was in."""
    state_before = TaskHistory.objects.filter(
        task=OuterRef("pk"), to_state=TaskState.MOVED_AT_DEADLINE
    ).values("from_state")[:1]
    return (
        HandoverTask.objects.filter(departure=departure, state=TaskState.MOVED_AT_DEADLINE)
        .select_related("customer", "successor", "moved_event__to_owner")
        .annotate(state_before=Subquery(state_before))
        .order_by("customer__display_name", "id")
    )


def counts_for_home(user: User) -> dict[str, int]:
    """Small figures for the home pages' link blocks (two cheap queries at most)."""
    if user.is_manager or user.is_crm_admin:
        return {
            "departures_open": departures_visible_to(user)
            .filter(state=DepartureState.IN_PROGRESS)
            .count()
        }
    if not user.is_rep:
        return {}
    counts = HandoverTask.objects.filter(
        Q(successor=user) | Q(departure__leaver=user), state__in=OPEN_STATES
    ).aggregate(
        to_accept=Count("id", filter=Q(successor=user, state=TaskState.PROPOSED)),
        to_confirm=Count("id", filter=Q(successor=user, state=TaskState.DONE_BY_LEAVER)),
        leaver_open=Count("id", filter=Q(departure__leaver=user)),
    )
    return {key: value or 0 for key, value in counts.items()}


def team_manager(team: Team | None) -> User | None:
    """The nearest manager up the team tree."""
    seen: set[int] = set()
    node = team
    while node is not None and node.pk not in seen:
        seen.add(node.pk)
        if node.manager_id is not None and node.manager is not None and node.manager.is_active:
            return node.manager
        node = node.parent
    return None


def has_open_task(customer_id: int) -> bool:
    return HandoverTask.objects.filter(customer_id=customer_id, state__in=OPEN_STATES).exists()


def customers_without_task(departure: Departure) -> QuerySet[Customer]:
    """Customers the leaver still owns that no open task covers (arrived after the plan:
    e.g. a ruling). The last day plans and moves them too."""
    open_task = HandoverTask.objects.filter(customer=OuterRef("pk"), state__in=OPEN_STATES)
    return (
        Customer.objects.filter(owner=departure.leaver_id, merged_into__isnull=True)
        .exclude(Exists(open_task))
        .order_by("id")
    )
