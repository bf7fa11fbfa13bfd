"""Funnel snapshots (figures from customers and follow-up stage changes), the diagnosis of a
rep's weakest stage, the weekly task and its e-mail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from crm import services as crm_services
from crm.funnel import (
    STAGES,
    Funnel,
    FunnelError,
    TeamMedian,
    diagnose,
    funnel_snapshot_request,
    funnel_snapshot_take,
    funnel_weekly_snapshot,
    team_report,
    week_bounds,
)
from crm.models import (
    Customer,
    FollowUpKind,
    FunnelSnapshot,
    FunnelSnapshotKind,
    FunnelStageRow,
    Notification,
    Team,
    User,
)
from tests.factories import CustomerFactory, UserFactory

DAY = timedelta(days=1)


def _rows(reached: list[int]) -> list[FunnelStageRow]:
    """Rows of a funnel given its width at each stage (customers at that stage or beyond)."""
    rows = []
    for index, stage in enumerate(STAGES):
        following = reached[index + 1] if index + 1 < len(reached) else 0
        rows.append(
            FunnelStageRow(stage=stage, count=reached[index] - following, reached=reached[index])
        )
    return rows


def funnel_of(reached: list[int]) -> Funnel:
    return Funnel.from_rows(_rows(reached))


TYPICAL = [40, 30, 20, 10, 5]


@pytest.mark.parametrize(
    ("reached", "stage", "problem", "training"),
    [
        ([10, 8, 5, 3, 2], 0, "开发新客户不足", "客户开发培训"),
        ([40, 8, 6, 3, 2], 25, "线索来源质量差（联系方式无效）", "线索来源培训"),
        ([40, 30, 6, 3, 2], 50, "沟通能力不足", "沟通技巧培训"),
        ([40, 30, 20, 2, 1], 75, "产品知识不足", "产品培训"),
        ([40, 30, 20, 10, 0], 100, "谈判能力不足", "谈判培训"),
    ],
)
def test_the_weakest_stage_names_the_problem_and_the_training(
    reached: list[int], stage: int, problem: str, training: str
) -> None:
    rep = funnel_of(reached)
    median = TeamMedian.of([funnel_of(TYPICAL)] * 3 + [rep])
    diagnosis = diagnose(rep, median)
    assert diagnosis is not None and diagnosis.stage == stage
    assert problem in diagnosis.problem and training in diagnosis.training


def test_a_rep_close_to_the_team_gets_no_diagnosis() -> None:
    rep = funnel_of([38, 29, 19, 10, 5])
    assert diagnose(rep, TeamMedian.of([funnel_of(TYPICAL)] * 3 + [rep])) is None


def test_a_rep_with_nothing_is_not_prospecting() -> None:
    rep = funnel_of([0, 0, 0, 0, 0])
    diagnosis = diagnose(rep, TeamMedian.of([funnel_of(TYPICAL)] * 2 + [rep]))
    assert diagnosis is not None and diagnosis.stage == 0 and diagnosis.ratio == 0


def test_conversions_on_too_few_customers_are_not_judged() -> None:
    # Two customers at 75% and none won: too few to call it a negotiation problem.
    rep = funnel_of([40, 30, 20, 2, 0])
    diagnosis = diagnose(rep, TeamMedian.of([funnel_of(TYPICAL)] * 3 + [rep]))
    assert diagnosis is not None and diagnosis.stage == 75


def test_conversion_is_the_share_of_the_previous_stage() -> None:
    funnel = funnel_of([10, 6, 3, 2, 1])
    assert [f.conversion_percent for f in funnel.stages] == [None, 60, 50, 67, None]
    assert funnel.total == 10 and funnel.won == 1


# --- snapshots ---------------------------------------------------------------------------


@pytest.fixture
def funnel_data(rep: User, second_rep: User, team: Team) -> dict[str, Any]:
    now = timezone.now()
    for stage in (0, 0, 25, 50, 100):
        CustomerFactory(owner=rep, stage=stage)
    moving = CustomerFactory(owner=rep, created_at=now - 20 * DAY)
    crm_services.follow_up_log(
        actor=rep,
        customer=moving,
        kind=FollowUpKind.CALL,
        happened_at=now - 10 * DAY,
        summary="联系上了",
        stage_after=25,
    )
    crm_services.follow_up_log(
        actor=rep,
        customer=moving,
        kind=FollowUpKind.VISIT,
        happened_at=now - 4 * DAY,
        summary="见到决策人",
        stage_after=50,
    )
    for stage in (0, 25, 25, 75):
        CustomerFactory(owner=second_rep, stage=stage)
    CustomerFactory(stage=50)  # in the pool: nobody's funnel
    idle = UserFactory(username="idle", team=team)  # an active rep with no customers
    return {"now": now, "moving": moving, "idle": idle}


def test_a_snapshot_counts_stages_changes_and_days(
    funnel_data: dict, rep: User, second_rep: User, team: Team
) -> None:
    snapshot = funnel_snapshot_take(now=funnel_data["now"])
    report = team_report(snapshot, team)
    mine = next(r for r in report.reps if r.rep == rep).funnel
    assert [f.count for f in mine.stages] == [2, 1, 2, 0, 1]
    assert [f.reached for f in mine.stages] == [6, 4, 3, 1, 1]
    # Only the change 4 days ago falls in the 7-day period.
    assert [f.entered for f in mine.stages] == [0, 0, 1, 0, 0]
    # 10 days at 0% (created 20 days ago, moved 10 days ago), then 6 days at 25%.
    assert mine.stages[0].median_days == pytest.approx(10, abs=0.1)
    assert mine.stages[1].median_days == pytest.approx(6, abs=0.1)
    assert [f.conversion_percent for f in mine.stages] == [None, 67, 75, 33, None]
    assert {r.rep for r in report.reps} == {rep, second_rep, funnel_data["idle"]}
    idle = next(r for r in report.reps if r.rep == funnel_data["idle"]).funnel
    assert idle.total == 0
    assert [f.reached for f in report.funnel.stages] == [10, 7, 4, 2, 1]
    assert report.funnel.stages[0].median_days == pytest.approx(10, abs=0.1)
    assert FunnelStageRow.objects.filter(snapshot=snapshot).count() == 5 * 4


def test_a_snapshot_takes_a_constant_number_of_queries(
    funnel_data: dict, team: Team, django_assert_max_num_queries: Any
) -> None:
    for n in range(5):
        user = UserFactory(username=f"more{n}", team=team)
        CustomerFactory(owner=user, stage=25)
    # Whatever the number of reps and customers: a fixed set of grouped statements.
    with django_assert_max_num_queries(16):
        funnel_snapshot_take()


def test_the_week_is_the_last_full_one_in_local_time() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    start, end = week_bounds(datetime(2026, 3, 11, 10, 0, tzinfo=shanghai))
    assert start == datetime(2026, 3, 2, tzinfo=shanghai)
    assert end == datetime(2026, 3, 9, tzinfo=shanghai)


def test_the_weekly_snapshot_is_taken_once_and_each_manager_told_once(
    funnel_data: dict, manager: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        first = funnel_weekly_snapshot()
        second = funnel_weekly_snapshot()
    assert first.pk == second.pk and first.kind == FunnelSnapshotKind.WEEKLY
    assert FunnelSnapshot.objects.count() == 1
    notification = Notification.objects.get(kind="funnel_weekly")
    assert notification.recipient == manager
    assert "华东销售部" in notification.body and "0%: 10" in notification.body
    # The flagged rep with the weakness and the training.
    assert "李娜: 进入 50% 的客户偏少：沟通能力不足。 沟通技巧培训" in notification.body
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [manager.email]


def test_the_weekly_task_takes_the_snapshot(funnel_data: dict, settings: Any) -> None:
    from crm.tasks import take_weekly_funnel_snapshot

    settings.CELERY_TASK_ALWAYS_EAGER = True
    snapshot_id = take_weekly_funnel_snapshot.delay().get()
    assert FunnelSnapshot.objects.get(pk=snapshot_id).kind == FunnelSnapshotKind.WEEKLY


def test_on_demand_snapshots_are_for_managers_and_not_too_often(
    funnel_data: dict,
    manager: User,
    rep: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with pytest.raises(FunnelError):
        funnel_snapshot_request(actor=rep)
    with django_capture_on_commit_callbacks(execute=True):
        funnel_snapshot_request(actor=manager)
    snapshot = FunnelSnapshot.objects.get()
    assert snapshot.kind == FunnelSnapshotKind.ON_DEMAND and snapshot.requested_by == manager
    with pytest.raises(FunnelError, match="10 分钟"):
        funnel_snapshot_request(actor=manager)


def test_merged_records_are_not_counted(rep: User, team: Team) -> None:
    kept = CustomerFactory(owner=rep, stage=25)
    CustomerFactory(owner=rep, stage=25, merged_into=kept)
    snapshot = funnel_snapshot_take()
    report = team_report(snapshot, team)
    assert report.funnel.total == 1
    assert Customer.objects.filter(owner=rep).count() == 2
