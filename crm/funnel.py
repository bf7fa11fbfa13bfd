"""Funnel-stage reports (销售阶段): snapshots of every rep's and team's funnel, the report read
from them, and the diagnosis of each rep's weakest stage against the team.

Stages: 0% raw · 25% contacted, contact valid · 50% decision maker found, need identified ·
75% need matches our product · 100% won.

- A snapshot counts, per rep (and per team), the owned customers at each stage and at each
  stage or beyond (the funnel's width), the follow-ups that moved a customer into each stage
  in the period, and the median days customers spent in each stage before moving on (from
  follow-up stage changes). Three grouped SQL queries whatever the size, written in one
  transaction, so a reader sees a whole snapshot or none.
- Conversion into a stage is the share of the previous stage's width that reached it.
- The diagnosis compares a rep with the team median: at 0% the number of customers in the
  funnel, at every later stage the conversion into it. The stage furthest below the median
  (under 70% of it) names the weakness and the training that helps.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from crm.errors import DomainError
from crm.models import (
    Customer,
    FollowUp,
    FunnelSnapshot,
    FunnelSnapshotKind,
    FunnelStage,
    FunnelStageRow,
    Role,
    Team,
    User,
)
from crm.selectors import teams_managed_by

STAGES: tuple[int, ...] = tuple(FunnelStage.values)
# Stints (time spent in a stage) that ended this many days before the snapshot count.
MEDIAN_WINDOW_DAYS = 180
# How many snapshots a trend chart shows.
TREND_POINTS = 12
# A stage is a weakness when the rep's figure is below this share of the team median.
WEAK_RATIO = 0.7
# A conversion needs this many customers at the previous stage to mean anything.
MIN_BASE = 3
# A new on-demand snapshot is refused when the last one is younger than this.
ON_DEMAND_INTERVAL = timedelta(minutes=10)
# pg_advisory_xact_lock key: snapshots queue behind each other ("funnel" in ASCII).
SNAPSHOT_LOCK_KEY = 0x66756E6E656C

FUNNEL_WEEKLY_KIND = "funnel_weekly"


class FunnelError(DomainError):
    pass


# --- diagnosis ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Weakness:
    problem: Promise
    training: Promise


WEAKNESSES: dict[int, Weakness] = {
    0: Weakness(
        _("Few customers at 0%: not prospecting enough."),
        _("Prospecting training: build lead lists and keep a daily cold-call routine."),
    ),
    25: Weakness(
        _("Few reach 25%: poor lead sources (invalid contacts)."),
        _("Lead-source training: qualify lists and verify contacts before calling."),
    ),
    50: Weakness(
        _("Few reach 50%: communication skills."),
        _("Communication training: reach the decision maker and ask needs-discovery questions."),
    ),
    75: Weakness(
        _("Few reach 75%: product knowledge."),
        _("Product training: match customer needs to our products and practise demos."),
    ),
    100: Weakness(
        _("Few are won: negotiation."),
        _("Negotiation training: handle objections, pricing and closing."),
    ),
}


@dataclass(frozen=True)
class Diagnosis:
    stage: int
    ratio: float  # the rep's figure / the team median (0.0 = nothing at all)

    @property
    def problem(self) -> str:
        return str(WEAKNESSES[self.stage].problem)

    @property
    def training(self) -> str:
        return str(WEAKNESSES[self.stage].training)

    @property
    def percent_of_median(self) -> int:
        return round(self.ratio * 100)


# --- figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageFigures:
    stage: int
    count: int = 0
    reached: int = 0
    entered: int = 0
    median_days: float | None = None
    stints: int = 0
    # Share of the previous stage's width that reached this stage (None at 0%, or when
    # fewer than MIN_BASE customers were at the previous stage).
    conversion: float | None = None

    @property
    def label(self) -> str:
        return str(FunnelStage(self.stage).label)

    @property
    def short_label(self) -> str:
        return f"{self.stage}%"

    @property
    def conversion_percent(self) -> int | None:
        return None if self.conversion is None else round(self.conversion * 100)


@dataclass(frozen=True)
class Funnel:
    stages: tuple[StageFigures, ...]

    @classmethod
    def from_rows(cls, rows: Iterable[FunnelStageRow]) -> Funnel:
        by_stage = {row.stage: row for row in rows}
        figures = []
        previous_reached: int | None = None
        for stage in STAGES:
            row = by_stage.get(stage)
            reached = row.reached if row else 0
            conversion = None
            if previous_reached is not None and previous_reached >= MIN_BASE:
                conversion = reached / previous_reached
            figures.append(
                StageFigures(
                    stage=stage,
                    count=row.count if row else 0,
                    reached=reached,
                    entered=row.entered if row else 0,
                    median_days=row.median_days if row else None,
                    stints=row.stints if row else 0,
                    conversion=conversion,
                )
            )
            previous_reached = reached
        return cls(tuple(figures))

    @property
    def total(self) -> int:
        return self.stages[0].reached

    @property
    def won(self) -> int:
        return self.stages[-1].count

    @property
    def stage_changes(self) -> int:
        return sum(figures.entered for figures in self.stages)

    def metric(self, stage: int) -> float | None:
        """What the diagnosis compares: the funnel's width at 0%, the conversion after."""
        figures = self.stages[STAGES.index(stage)]
        return float(figures.reached) if stage == STAGES[0] else figures.conversion


@dataclass(frozen=True)
class MedianStage:
    stage: int
    count: float | None
    reached: float | None
    conversion: float | None
    entered: float | None
    median_days: float | None  # the team's own median over all its stints

    @property
    def conversion_percent(self) -> int | None:
        return None if self.conversion is None else round(self.conversion * 100)


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


@dataclass(frozen=True)
class TeamMedian:
    """Per stage, the median rep of a team (conversions over reps with a meaningful base)."""

    stages: tuple[MedianStage, ...]

    @classmethod
    def of(cls, funnels: Sequence[Funnel], team_funnel: Funnel | None = None) -> TeamMedian:
        stages = []
        for index, stage in enumerate(STAGES):
            per_rep = [funnel.stages[index] for funnel in funnels]
            conversions = [f.conversion for f in per_rep if f.conversion is not None]
            stages.append(
                MedianStage(
                    stage=stage,
                    count=_median([f.count for f in per_rep]),
                    reached=_median([f.reached for f in per_rep]),
                    conversion=_median(conversions),
                    entered=_median([f.entered for f in per_rep]),
                    median_days=team_funnel.stages[index].median_days if team_funnel else None,
                )
            )
        return cls(tuple(stages))

    def metric(self, stage: int) -> float | None:
        median = self.stages[STAGES.index(stage)]
        return median.reached if stage == STAGES[0] else median.conversion


def diagnose(rep: Funnel, median: TeamMedian) -> Diagnosis | None:
    """The rep's weakest stage relative to the team median, if clearly below it.

    Ties go to the earlier stage: a thin top of the funnel explains what follows."""
    weakest: Diagnosis | None = None
    for stage in STAGES:
        team_value = median.metric(stage)
        if team_value is None or team_value <= 0:
            continue
        if stage != STAGES[0] and rep.stages[STAGES.index(stage) - 1].reached < MIN_BASE:
            continue  # too few customers before this stage to judge the conversion
        value = rep.metric(stage) or 0.0
        ratio = value / team_value
        if ratio < WEAK_RATIO and (weakest is None or ratio < weakest.ratio):
            weakest = Diagnosis(stage=stage, ratio=ratio)
    return weakest


# --- taking a snapshot ----------------------------------------------------------------------


@dataclass
class _Cell:
    count: int = 0
    entered: int = 0
    median_days: float | None = None
    stints: int = 0


def week_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The last full week (Monday 00:00 to Monday 00:00, local time) before `now`."""
    local = timezone.localtime(now)
    this_monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return this_monday - timedelta(days=7), this_monday


def _tables() -> dict[str, str]:
    return {
        "customer": Customer._meta.db_table,
        "followup": FollowUp._meta.db_table,
        "user": User._meta.db_table,
    }


def _collect(
    *, period_start: datetime, period_end: datetime
) -> tuple[dict[int, dict[int, _Cell]], dict[int | None, dict[int, _Cell]]]:
    """Per rep and per team, per stage: counts, changes in the period, median days."""
    tables = _tables()
    reps: dict[int, dict[int, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    teams: dict[int | None, dict[int, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT owner_id, stage, COUNT(*) FROM {tables['customer']} "
            "WHERE owner_id IS NOT NULL AND merged_into_id IS NULL GROUP BY 1, 2"
        )
        for owner_id, stage, count in cursor.fetchall():
            reps[owner_id][stage].count = count
        cursor.execute(
            f"SELECT by_id, stage_after, COUNT(*) FROM {tables['followup']} "
            "WHERE stage_after <> stage_before AND happened_at > %s AND happened_at <= %s "
            "GROUP BY 1, 2",
            [period_start, period_end],
        )
        for by_id, stage, count in cursor.fetchall():
            reps[by_id][stage].entered = count
        # A stint in a stage runs from the change into it (or the customer's creation) to
        # the change out of it; it counts for whoever logged the change out, in that
        # person's team. Stints with an unknown start (history backdated before the record
        # was created) are left out. The stints go to a temporary table (dropped at
        # commit) read by two plain aggregates: cheaper than GROUPING SETS over the window.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE funnel_stints ON COMMIT DROP AS
            WITH changes AS (
                SELECT f.customer_id, f.by_id, f.stage_before, f.happened_at,
                       LAG(f.happened_at) OVER (
                           PARTITION BY f.customer_id ORDER BY f.happened_at, f.id
                       ) AS prev_at
                FROM {tables["followup"]} f
                WHERE f.stage_after <> f.stage_before AND f.happened_at <= %(end)s
            )
            SELECT ch.by_id, ch.stage_before AS stage,
                   EXTRACT(EPOCH FROM ch.happened_at - COALESCE(ch.prev_at, c.created_at))
                       / 86400.0 AS days
            FROM changes ch
            JOIN {tables["customer"]} c ON c.id = ch.customer_id
            WHERE ch.happened_at > %(since)s
            """,
            {"end": period_end, "since": period_end - timedelta(days=MEDIAN_WINDOW_DAYS)},
        )
        cursor.execute(
            "SELECT by_id, stage, percentile_cont(0.5) WITHIN GROUP (ORDER BY days), COUNT(*) "
            "FROM funnel_stints WHERE days >= 0 GROUP BY 1, 2"
        )
        for by_id, stage, median, stints in cursor.fetchall():
            reps[by_id][stage].median_days = round(float(median), 1)
            reps[by_id][stage].stints = stints
        cursor.execute(
            "SELECT u.team_id, s.stage, percentile_cont(0.5) WITHIN GROUP (ORDER BY s.days), "
            f"COUNT(*) FROM funnel_stints s JOIN {tables['user']} u ON u.id = s.by_id "
            "WHERE s.days >= 0 GROUP BY 1, 2"
        )
        for team_id, stage, median, stints in cursor.fetchall():
            teams[team_id][stage].median_days = round(float(median), 1)
            teams[team_id][stage].stints = stints
        cursor.execute("DROP TABLE funnel_stints")
    return reps, teams


def _reached(cells: dict[int, _Cell]) -> dict[int, int]:
    reached: dict[int, int] = {}
    running = 0
    for stage in reversed(STAGES):
        running += cells[stage].count if stage in cells else 0
        reached[stage] = running
    return reached


def funnel_snapshot_take(
    *,
    kind: str = FunnelSnapshotKind.ON_DEMAND,
    actor: User | None = None,
    now: datetime | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
) -> FunnelSnapshot:
    """Take a snapshot of every rep's and team's funnel (one transaction).

    The period (for "stage changes in the period") defaults to the last 7 days; the weekly
    snapshot passes the last full week. Reps: active sales reps and anyone who owns
    customers."""
    started = time.perf_counter()
    now = now or timezone.now()
    period_end = period_end or now
    period_start = period_start or period_end - timedelta(days=7)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SNAPSHOT_LOCK_KEY])
        if kind == FunnelSnapshotKind.WEEKLY:
            existing = FunnelSnapshot.objects.filter(kind=kind, period_end=period_end).first()
            if existing is not None:
                return existing
        reps, team_cells = _collect(period_start=period_start, period_end=period_end)
        owners = [pk for pk, cells in reps.items() if any(c.count for c in cells.values())]
        # Active sales reps, and whoever still owns customers (an inactive owner shows up
        # rather than their customers vanishing from the team's funnel).
        people = dict(
            User.objects.filter(Q(role=Role.REP, is_active=True) | Q(pk__in=owners)).values_list(
                "pk", "team_id"
            )
        )
        snapshot = FunnelSnapshot.objects.create(
            kind=kind,
            taken_at=now,
            period_start=period_start,
            period_end=period_end,
            requested_by=actor,
        )
        rows: list[FunnelStageRow] = []
        team_totals: dict[int | None, dict[int, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
        for rep_id, team_id in sorted(people.items()):
            cells = reps.get(rep_id, {})
            reached = _reached(cells)
            for stage in STAGES:
                cell = cells.get(stage, _Cell())
                total = team_totals[team_id][stage]
                total.count += cell.count
                total.entered += cell.entered
                rows.append(
                    FunnelStageRow(
                        snapshot=snapshot,
                        team_id=team_id,
                        rep_id=rep_id,
                        stage=stage,
                        count=cell.count,
                        reached=reached[stage],
                        entered=cell.entered,
                        median_days=cell.median_days,
                        stints=cell.stints,
                    )
                )
        for total_team_id, cells in team_totals.items():
            reached = _reached(cells)
            for stage in STAGES:
                own = team_cells.get(total_team_id, {}).get(stage, _Cell())
                rows.append(
                    FunnelStageRow(
                        snapshot=snapshot,
                        team_id=total_team_id,
                        rep_id=None,
                        stage=stage,
                        count=cells[stage].count,
                        reached=reached[stage],
                        entered=cells[stage].entered,
                        median_days=own.median_days,
                        stints=own.stints,
                    )
                )
        FunnelStageRow.objects.bulk_create(rows, batch_size=5000)
        snapshot.duration_ms = int((time.perf_counter() - started) * 1000)
        snapshot.save(update_fields=["duration_ms"])
    return snapshot


def funnel_weekly_snapshot(*, now: datetime | None = None) -> FunnelSnapshot:
    """The weekly snapshot of the last full week, then each manager's summary e-mail. Safe
    to run twice: the week's snapshot is taken once, each manager is told once."""
    start, end = week_bounds(now or timezone.now())
    snapshot = funnel_snapshot_take(
        kind=FunnelSnapshotKind.WEEKLY, now=now, period_start=start, period_end=end
    )
    notify_managers(snapshot)
    return snapshot


def notify_managers(snapshot: FunnelSnapshot) -> int:
    """Each manager gets a summary of the teams they manage (crm.notifications)."""
    from crm.notifications import notify

    sent = 0
    managers = User.objects.filter(role=Role.MANAGER, is_active=True).order_by("pk")
    for manager in managers:
        teams = list(teams_managed_by(manager).order_by("name"))
        if not teams:
            continue
        reports = team_reports(snapshot, teams)
        summaries = [
            {
                "team": report.team,
                "funnel": report.funnel,
                "flagged": [rep for rep in report.reps if rep.diagnosis is not None],
                "reps": len(report.reps),
            }
            for report in reports
        ]
        created = notify(
            recipients=[manager],
            kind=FUNNEL_WEEKLY_KIND,
            context={"snapshot": snapshot, "teams": summaries},
            url=reverse("funnel_report") + f"?snapshot={snapshot.pk}",
            dedup_key=f"funnel:{timezone.localtime(snapshot.period_end).date().isoformat()}",
        )
        sent += len(created)
    return sent


def funnel_snapshot_request(*, actor: User) -> None:
    """A manager or administrator asks for a fresh snapshot now (taken by Celery)."""
    if not (actor.is_manager or actor.is_crm_admin):
        raise FunnelError(str(_("Only managers and administrators can take a snapshot.")))
    latest = FunnelSnapshot.objects.order_by("-taken_at").first()
    if latest is not None and latest.taken_at > timezone.now() - ON_DEMAND_INTERVAL:
        raise FunnelError(
            str(_("A snapshot was taken less than 10 minutes ago; it is the latest one."))
        )
    from crm.tasks import take_funnel_snapshot

    # celery-types does not know delay_on_commit (Celery ≥ 5.4) yet.
    take_funnel_snapshot.delay_on_commit(actor.pk)  # type: ignore[attr-defined]


# --- reading: scope and reports ---------------------------------------------------------------


def funnel_teams_for(user: User) -> QuerySet[Team]:
    """Teams whose funnel a user may read: admins all, managers the teams they manage."""
    if not user.is_active:
        return Team.objects.none()
    if user.is_crm_admin:
        return Team.objects.order_by("name")
    if user.is_manager:
        return teams_managed_by(user).order_by("name")
    return Team.objects.none()


def recent_snapshots(limit: int = 20) -> list[FunnelSnapshot]:
    return list(FunnelSnapshot.objects.order_by("-taken_at", "-id")[:limit])


def latest_snapshot() -> FunnelSnapshot | None:
    return FunnelSnapshot.objects.order_by("-taken_at", "-id").first()


def _trend_snapshots(snapshot: FunnelSnapshot) -> list[FunnelSnapshot]:
    recent = FunnelSnapshot.objects.filter(taken_at__lte=snapshot.taken_at).order_by(
        "-taken_at", "-id"
    )[:TREND_POINTS]
    return list(reversed(recent))


@dataclass
class RepReport:
    rep: User
    funnel: Funnel
    diagnosis: Diagnosis | None = None
    trend: list[tuple[FunnelSnapshot, Funnel]] = field(default_factory=list)


@dataclass
class TeamReport:
    team: Team
    snapshot: FunnelSnapshot
    funnel: Funnel
    median: TeamMedian
    reps: list[RepReport]
    trend: list[tuple[FunnelSnapshot, Funnel]] = field(default_factory=list)


def team_reports(snapshot: FunnelSnapshot, teams: Sequence[Team]) -> list[TeamReport]:
    """Each team's total, its reps (with diagnosis) and the team median: one query."""
    rows: dict[int, dict[int | None, list[FunnelStageRow]]] = defaultdict(lambda: defaultdict(list))
    for row in (
        FunnelStageRow.objects.filter(snapshot=snapshot, team__in=[team.pk for team in teams])
        .select_related("rep")
        .order_by("team_id", "rep_id", "stage")
    ):
        assert row.team_id is not None
        rows[row.team_id][row.rep_id].append(row)
    reports = []
    for team in teams:
        by_rep = rows.get(team.pk, {})
        team_funnel = Funnel.from_rows(by_rep.get(None, []))
        reps = [
            RepReport(rep=group[0].rep, funnel=Funnel.from_rows(group))
            for rep_id, group in by_rep.items()
            if rep_id is not None and group[0].rep is not None
        ]
        median = TeamMedian.of([report.funnel for report in reps], team_funnel)
        # A team of one has no one to be compared with.
        if len(reps) > 1:
            for report in reps:
                report.diagnosis = diagnose(report.funnel, median)
        reps.sort(key=lambda report: (str(report.rep), report.rep.pk))
        reports.append(
            TeamReport(team=team, snapshot=snapshot, funnel=team_funnel, median=median, reps=reps)
        )
    return reports


def team_report(snapshot: FunnelSnapshot, team: Team, *, with_trend: bool = False) -> TeamReport:
    report = team_reports(snapshot, [team])[0]
    if with_trend:
        report.trend = _trend(snapshot, Q(team=team, rep__isnull=True))
    return report


def rep_trend(snapshot: FunnelSnapshot, rep: User) -> list[tuple[FunnelSnapshot, Funnel]]:
    return _trend(snapshot, Q(rep=rep))


def _trend(snapshot: FunnelSnapshot, which: Q) -> list[tuple[FunnelSnapshot, Funnel]]:
    snapshots = _trend_snapshots(snapshot)
    rows: dict[int, list[FunnelStageRow]] = defaultdict(list)
    for row in FunnelStageRow.objects.filter(which, snapshot__in=snapshots).order_by("stage"):
        rows[row.snapshot_id].append(row)
    return [(snap, Funnel.from_rows(rows[snap.pk])) for snap in snapshots if snap.pk in rows]


@dataclass
class TeamSummary:
    team: Team
    funnel: Funnel
    trend: list[tuple[FunnelSnapshot, Funnel]]


def teams_overview(snapshot: FunnelSnapshot, teams: Sequence[Team]) -> list[TeamSummary]:
    """Each team's total funnel and trend: two queries for any number of teams."""
    snapshots = _trend_snapshots(snapshot)
    rows: dict[tuple[int, int], list[FunnelStageRow]] = defaultdict(list)
    for row in FunnelStageRow.objects.filter(
        snapshot__in=snapshots, team__in=[team.pk for team in teams], rep__isnull=True
    ).order_by("stage"):
        assert row.team_id is not None
        rows[(row.team_id, row.snapshot_id)].append(row)
    summaries = []
    for team in teams:
        trend = [
            (snap, Funnel.from_rows(rows[(team.pk, snap.pk)]))
            for snap in snapshots
            if (team.pk, snap.pk) in rows
        ]
        current = rows.get((team.pk, snapshot.pk), [])
        summaries.append(TeamSummary(team=team, funnel=Funnel.from_rows(current), trend=trend))
    return summaries


def combine(funnels: Iterable[Funnel]) -> Funnel:
    """The sum of several funnels (the overview of all a manager's teams)."""
    counts: dict[int, dict[str, int]] = {s: {"count": 0, "entered": 0} for s in STAGES}
    for funnel in funnels:
        for figures in funnel.stages:
            counts[figures.stage]["count"] += figures.count
            counts[figures.stage]["entered"] += figures.entered
    reached_running = 0
    rows = []
    for stage in reversed(STAGES):
        reached_running += counts[stage]["count"]
        rows.append(
            FunnelStageRow(
                stage=stage,
                count=counts[stage]["count"],
                reached=reached_running,
                entered=counts[stage]["entered"],
            )
        )
    return Funnel.from_rows(rows)


@dataclass
class RepCard:
    """The rep's own funnel next to the team median, for the rep's home page."""

    snapshot: FunnelSnapshot
    funnel: Funnel
    median: TeamMedian | None
    diagnosis: Diagnosis | None
    stages: list[tuple[StageFigures, MedianStage | None]]


def rep_card(user: User) -> RepCard | None:
    """Two queries: the latest snapshot and the rows of the rep's team in it."""
    snapshot = latest_snapshot()
    if snapshot is None:
        return None
    rows = list(
        FunnelStageRow.objects.filter(
            Q(rep=user) | Q(team_id=user.team_id, rep__isnull=False)
            if user.team_id
            else Q(rep=user),
            snapshot=snapshot,
        ).order_by("rep_id", "stage")
    )
    mine = [row for row in rows if row.rep_id == user.pk]
    if not mine:
        return None
    funnel = Funnel.from_rows(mine)
    by_rep: dict[int, list[FunnelStageRow]] = defaultdict(list)
    for row in rows:
        assert row.rep_id is not None
        by_rep[row.rep_id].append(row)
    median = None
    diagnosis = None
    if len(by_rep) > 1:
        median = TeamMedian.of([Funnel.from_rows(group) for group in by_rep.values()])
        diagnosis = diagnose(funnel, median)
    stages = [
        (figures, median.stages[index] if median else None)
        for index, figures in enumerate(funnel.stages)
    ]
    return RepCard(
        snapshot=snapshot, funnel=funnel, median=median, diagnosis=diagnosis, stages=stages
    )


# --- export -----------------------------------------------------------------------------------


def export_header() -> list[str]:
    return [
        str(_("Snapshot")),
        str(_("Team")),
        str(_("Rep")),
        str(_("Stage")),
        str(_("Customers at this stage")),
        str(_("At this stage or beyond")),
        str(_("Conversion from the previous stage (%)")),
        str(_("Stage changes in the period")),
        str(_("Median days in this stage")),
        str(_("Team median: at this stage or beyond")),
        str(_("Team median: conversion (%)")),
        str(_("Diagnosis")),
        str(_("Suggested training")),
    ]


def _fmt(value: float | None) -> float | int | str:
    if value is None:
        return ""
    return int(value) if float(value).is_integer() else round(value, 1)


def export_rows(reports: Sequence[TeamReport]) -> list[list[Any]]:
    """The figures of the page, one row per (team total | team median | rep) and stage."""
    rows: list[list[Any]] = []
    for report in reports:
        taken = timezone.localtime(report.snapshot.taken_at).strftime("%Y-%m-%d %H:%M")
        lines: list[tuple[str, Funnel | None, Diagnosis | None]] = [
            (str(_("Team total")), report.funnel, None),
            (str(_("Team median")), None, None),
        ]
        lines += [(str(rep.rep), rep.funnel, rep.diagnosis) for rep in report.reps]
        for who, funnel, diagnosis in lines:
            for index, stage in enumerate(STAGES):
                median = report.median.stages[index]
                if funnel is None:
                    figures: list[Any] = [
                        _fmt(median.count),
                        _fmt(median.reached),
                        _fmt(median.conversion_percent),
                        _fmt(median.entered),
                        _fmt(median.median_days),
                    ]
                else:
                    own = funnel.stages[index]
                    figures = [
                        own.count,
                        own.reached,
                        _fmt(own.conversion_percent),
                        own.entered,
                        _fmt(own.median_days),
                    ]
                rows.append(
                    [
                        taken,
                        report.team.name,
                        who,
                        f"{stage}%",
                        *figures,
                        _fmt(median.reached),
                        _fmt(median.conversion_percent),
                        diagnosis.problem if diagnosis and diagnosis.stage == stage else "",
                        diagnosis.training if diagnosis and diagnosis.stage == stage else "",
                    ]
                )
    return rows
