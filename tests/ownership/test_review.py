"""The periodic ownership review: recycles by the one clock, warns once per window, lists
anomalies, and is idempotent, exclusive, resumable and honest in its dry run."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import psycopg2
import pytest
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from crm import services as crm_services
from crm.models import (
    Customer,
    FollowUpKind,
    Notification,
    PossibleDuplicate,
    Team,
    User,
)
from ownership.models import (
    EventKind,
    OwnershipEvent,
    PoolPolicy,
    ReviewAction,
    ReviewOutcome,
    ReviewRun,
    ReviewStatus,
)
from ownership.review import (
    LOCK_KEY,
    RECYCLED_KIND,
    WARNING_KIND,
    ReviewAlreadyRunning,
    ReviewRefused,
    review_run,
)
from ownership.review.anomalies import disputes_available
from ownership.review.policies import PolicyBook
from ownership.review.run import _apply_batch, candidate_pages, classify
from ownership.selectors import effective_policy
from tests.factories import CustomerFactory, TeamFactory, UserFactory

DAY = timedelta(days=1)


def owned(
    rep: User,
    *,
    started: int,
    followed_up: int | None = None,
    stage: int = 0,
    now: Any = None,
    name: str | None = None,
) -> Customer:
    """A customer of `rep` whose clock started `started` days ago (default policy: 30 days
    without follow-up, 60 to reach 50%, 180 to win, warnings 7 days ahead)."""
    now = now or timezone.now()
    extra: dict[str, Any] = {"display_name": name} if name else {}
    return CustomerFactory(
        owner=rep,
        clock_started_at=now - started * DAY,
        last_follow_up_at=now - followed_up * DAY if followed_up is not None else None,
        stage=stage,
        **extra,
    )


@pytest.fixture
def book_of_customers(rep: User, second_rep: User, global_pool_policy: PoolPolicy) -> dict:
    now = timezone.now()
    return {
        # last follow-up 35 days ago: 30 days without follow-up ran out 5 days ago
        "silent": owned(rep, started=40, followed_up=35, stage=50, name="沉默科技有限公司"),
        # followed up yesterday, but not at 50% within 60 days
        "stuck": owned(second_rep, started=61, followed_up=1, stage=25, name="停滞科技有限公司"),
        # protection ends in 5 days: in the 7-day warning window
        "soon": owned(rep, started=25, stage=50, name="将至科技有限公司"),
        "safe": owned(rep, started=5, stage=25, name="安全科技有限公司"),
        # won customers are exempt under the default policy, however old
        "won": owned(second_rep, started=400, stage=100, name="赢单科技有限公司"),
        "now": now,
    }


def _ledger_recycled(customer: Customer) -> int:
    return OwnershipEvent.objects.filter(customer=customer, kind=EventKind.RECYCLED).count()


def test_recycles_due_customers_warns_the_soon_ones_and_leaves_the_rest(
    book_of_customers: dict,
    rep: User,
    second_rep: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        run = review_run()
    c = book_of_customers
    assert run.status == ReviewStatus.DONE
    assert run.count("recycled") == 2 and run.count("warned") == 1
    for key in ("silent", "stuck"):
        c[key].refresh_from_db()
        assert c[key].owner is None and c[key].clock_started_at is None
    for key in ("soon", "safe", "won"):
        c[key].refresh_from_db()
        assert c[key].owner is not None
    # The ledger names the rule and points at the run as its cause.
    silent_event = OwnershipEvent.objects.get(customer=c["silent"], kind=EventKind.RECYCLED)
    assert "30 天未跟进" in silent_event.reason and silent_event.actor is None
    assert silent_event.from_owner == rep
    assert silent_event.cause_type == ContentType.objects.get_for_model(ReviewRun)
    assert silent_event.cause_id == run.pk
    stuck_event = OwnershipEvent.objects.get(customer=c["stuck"], kind=EventKind.RECYCLED)
    assert "50%" in stuck_event.reason
    # Outcomes per customer, with the owner's team for the managers' pages.
    recycled = ReviewOutcome.objects.filter(run=run, action=ReviewAction.RECYCLED)
    assert {o.customer_id for o in recycled} == {c["silent"].pk, c["stuck"].pk}
    assert all(o.team_id == rep.team_id and o.event_id for o in recycled)
    warned = ReviewOutcome.objects.get(run=run, action=ReviewAction.WARNED)
    assert warned.customer == c["soon"] and warned.rep == rep
    # The owner is warned with the agreed key, and told what was recycled.
    warning = Notification.objects.get(kind=WARNING_KIND)
    returns = timezone.localtime(c["now"] + 5 * DAY).date()
    assert warning.recipient == rep
    assert warning.dedup_key == f"clock:{c['soon'].pk}:{returns.isoformat()}"
    assert "将至科技有限公司" in warning.title
    lost = Notification.objects.filter(kind=RECYCLED_KIND)
    assert {n.recipient for n in lost} == {rep, second_rep}
    assert "沉默科技有限公司" in lost.get(recipient=rep).body
    assert {m.to[0] for m in mail.outbox} == {rep.email, second_rep.email}
    run.refresh_from_db()
    assert run.owners_notified and run.finished_at is not None
    # The set-based writer keeps every customer's hash chain intact.
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger intact" in out.getvalue()


def test_a_second_run_changes_nothing(book_of_customers: dict) -> None:
    review_run()
    owners = dict(Customer.objects.values_list("pk", "owner_id"))
    events = OwnershipEvent.objects.count()
    notifications = Notification.objects.count()
    second = review_run()
    assert second.count("recycled") == 0 and second.count("warned") == 0
    assert second.count("already_warned") == 1
    assert dict(Customer.objects.values_list("pk", "owner_id")) == owners
    assert OwnershipEvent.objects.count() == events
    assert Notification.objects.count() == notifications
    assert not ReviewOutcome.objects.filter(
        run=second, action__in=[ReviewAction.RECYCLED, ReviewAction.WARNED]
    ).exists()


def test_warnings_are_sent_once_per_window(rep: User, global_pool_policy: PoolPolicy) -> None:
    now = timezone.now()
    customer = owned(rep, started=26, stage=50, now=now)  # protection ends in 4 days
    # Two nights in the same window: one warning.
    assert review_run(as_of=now - DAY).count("warned") == 1
    assert review_run(as_of=now).count("warned") == 0
    assert Notification.objects.filter(kind=WARNING_KIND).count() == 1
    # A follow-up starts a new period: nothing to warn about...
    crm_services.follow_up_log(
        actor=rep, customer=customer, kind=FollowUpKind.CALL, happened_at=now, summary="回访"
    )
    assert review_run().count("warned") == 0
    # ...until that period nears its end: a new window, a new warning.
    Customer.objects.filter(pk=customer.pk).update(last_follow_up_at=now - 25 * DAY)
    assert review_run().count("warned") == 1
    assert Notification.objects.filter(kind=WARNING_KIND).count() == 2


def test_catching_up_after_downtime_recycles_once_and_warns_only_the_current_window(
    rep: User, global_pool_policy: PoolPolicy
) -> None:
    long_overdue = owned(rep, started=90, followed_up=70, stage=50)  # ran out 40 days ago
    window_passed = owned(rep, started=32, stage=50)  # its window was last week: now due
    in_window = owned(rep, started=24, stage=50)  # ends in 6 days
    run = review_run()
    assert run.count("recycled") == 2 and run.count("warned") == 1
    assert _ledger_recycled(long_overdue) == 1 and _ledger_recycled(window_passed) == 1
    warned = Notification.objects.get(kind=WARNING_KIND)
    assert warned.dedup_key.startswith(f"clock:{in_window.pk}:")
    review_run()
    assert _ledger_recycled(long_overdue) == 1 and _ledger_recycled(window_passed) == 1
    assert Notification.objects.filter(kind=WARNING_KIND).count() == 1


def test_the_clock_is_rechecked_on_the_locked_row(
    rep: User, global_pool_policy: PoolPolicy
) -> None:
    now = timezone.now()
    customer = owned(rep, started=40, followed_up=35, stage=50, now=now)
    book = PolicyBook.load()
    rows = next(candidate_pages(book, now, 500))
    due, _warn = classify(rows, book, now)
    assert [c.customer_id for c in due] == [customer.pk]
    # The rep logs a follow-up between the candidate query and the batch.
    crm_services.follow_up_log(
        actor=rep, customer=customer, kind=FollowUpKind.VISIT, happened_at=now, summary="拜访"
    )
    run = ReviewRun.objects.create(started_at=now, as_of=now)
    from collections import Counter

    batch: Counter[str] = Counter()
    _apply_batch(run, due, [], book, batch, Counter())
    customer.refresh_from_db()
    assert customer.owner == rep
    assert batch["skipped"] == 1 and batch["recycled"] == 0
    assert _ledger_recycled(customer) == 0


def test_dry_run_prints_what_would_happen_and_writes_nothing(book_of_customers: dict) -> None:
    tables = (Customer, OwnershipEvent, Notification, ReviewRun, ReviewOutcome)
    before = {model: model.objects.count() for model in tables}
    owners = dict(Customer.objects.values_list("pk", "owner_id"))
    out = StringIO()
    call_command("ownership_review", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "Dry run (nothing written)" in text
    assert "2 recycled to the pool" in " ".join(text.split())
    assert "1 owners warned" in " ".join(text.split())
    assert "沉默科技有限公司" in text and "将至科技有限公司" in text
    assert {model: model.objects.count() for model in tables} == before
    assert dict(Customer.objects.values_list("pk", "owner_id")) == owners


def test_a_dry_run_from_the_page_records_only_its_run(book_of_customers: dict) -> None:
    run = review_run(dry_run=True)
    assert ReviewRun.objects.get().dry_run
    assert run.count("recycled") == 2 and len(run.examples["recycled"]) == 2
    assert not OwnershipEvent.objects.filter(kind=EventKind.RECYCLED).exists()
    assert not ReviewOutcome.objects.exists() and not Notification.objects.exists()


def test_the_command_evaluates_clocks_as_of_a_day(book_of_customers: dict) -> None:
    out = StringIO()
    # Three weeks ago "silent" still had follow-up time and "stuck" had not reached day 60.
    day = (timezone.localdate() - timedelta(days=21)).isoformat()
    call_command("ownership_review", "--as-of", day, stdout=out)
    assert ReviewRun.objects.get().count("recycled") == 0
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("ownership_review", "--as-of", "tomorrow")
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    with pytest.raises(CommandError, match="未来"):
        call_command("ownership_review", "--as-of", future)
    out = StringIO()
    call_command("ownership_review", "--dry-run", "--as-of", future, stdout=out)
    assert "Dry run" in out.getvalue()


def test_a_review_in_the_future_that_changes_data_is_refused(global_pool_policy: Any) -> None:
    with pytest.raises(ReviewRefused):
        review_run(as_of=timezone.now() + 2 * DAY)
    assert not ReviewRun.objects.exists()


def _other_connection() -> Any:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    other = psycopg2.connect(**params)
    other.autocommit = True
    return other


def test_a_second_run_refuses_while_another_holds_the_lock(book_of_customers: dict) -> None:
    other = _other_connection()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        with pytest.raises(ReviewAlreadyRunning):
            review_run()
        with pytest.raises(CommandError, match="另一次归属巡检正在运行"):
            call_command("ownership_review", stdout=StringIO())
        assert not ReviewRun.objects.exists()
        assert book_of_customers["silent"].owner_id is not None
        # A dry run changes nothing and needs no lock.
        assert review_run(dry_run=True, record=False).count("recycled") == 2
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    finally:
        other.close()
    assert review_run().count("recycled") == 2


def test_the_lock_is_released_after_a_run(book_of_customers: dict) -> None:
    review_run()
    other = _other_connection()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            assert cursor.fetchone()[0] is True
    finally:
        other.close()


class Crash(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_crash_between_batches_keeps_finished_batches_and_the_rerun_finishes(
    rep: User, second_rep: User, global_pool_policy: PoolPolicy
) -> None:
    due = [owned(rep if i % 2 else second_rep, started=40, followed_up=35 + i) for i in range(5)]

    def crash_after_first_batch(batch: int) -> None:
        if batch == 1:
            raise Crash("simulated worker crash")

    with pytest.raises(Crash):
        review_run(batch_size=2, after_batch=crash_after_first_batch)
    failed = ReviewRun.objects.get()
    assert failed.status == ReviewStatus.FAILED and "simulated" in failed.errors[-1]["message"]
    assert failed.count("recycled") == 2 and failed.count("batches") == 1
    assert Customer.objects.filter(pk__in=[c.pk for c in due], owner__isnull=True).count() == 2
    assert not failed.owners_notified
    resumed = review_run(batch_size=2)
    assert resumed.count("recycled") == 3
    assert all(_ledger_recycled(customer) == 1 for customer in due)
    # The owners hear about everything once: the crashed run's customers and the rerun's.
    lost = Notification.objects.filter(kind=RECYCLED_KIND)
    assert lost.count() == 2
    assert sum(body.count("·") for body in lost.values_list("body", flat=True)) == 5
    assert set(ReviewRun.objects.values_list("owners_notified", flat=True)) == {True}


@pytest.mark.django_db(transaction=True)
def test_a_run_left_running_by_a_dead_worker_is_marked_interrupted(
    global_pool_policy: PoolPolicy,
) -> None:
    now = timezone.now()
    stale = ReviewRun.objects.create(started_at=now - DAY, as_of=now - DAY)
    review_run()
    stale.refresh_from_db()
    assert stale.status == ReviewStatus.INTERRUPTED


def test_each_customer_is_judged_by_its_owners_effective_policy(
    rep: User, team: Team, global_pool_policy: PoolPolicy
) -> None:
    PoolPolicy.objects.create(team=team, days_without_follow_up=60, warning_days=7)
    outsider = UserFactory(team=TeamFactory(name="西南销售部"))
    kept = owned(rep, started=40, followed_up=35, stage=50)  # 60 days in rep's team
    lost = owned(outsider, started=40, followed_up=35, stage=50)  # 30 days by default
    run = review_run()
    assert run.count("recycled") == 1
    assert _ledger_recycled(kept) == 0 and _ledger_recycled(lost) == 1


def test_policy_book_agrees_with_effective_policy(global_pool_policy: PoolPolicy) -> None:
    parent = TeamFactory(name="华南大区")
    child = TeamFactory(name="广州组", parent=parent)
    grandchild = TeamFactory(name="天河小组", parent=child)
    own = TeamFactory(name="深圳组", parent=parent)
    plain = TeamFactory(name="独立组")
    PoolPolicy.objects.create(team=parent, days_without_follow_up=45, warning_days=5)
    PoolPolicy.objects.create(team=own, days_to_reach_50=20, days_to_reach_100=90)
    book = PolicyBook.load()
    for node in (parent, child, grandchild, own, plain):
        assert book.for_team(node.pk) == effective_policy(node), node.name
    assert book.for_team(None) == effective_policy(None)
    trial = book.with_global({"days_without_follow_up": 20})
    assert trial.for_team(plain.pk).days_without_follow_up == 20
    assert trial.for_team(grandchild.pk).days_without_follow_up == 45


def test_anomalies_are_listed_for_the_managers_of_their_teams(
    rep: User, second_rep: User, team: Team, global_pool_policy: PoolPolicy
) -> None:
    PoolPolicy.objects.create(team=team, max_owned=1)
    a = owned(rep, started=3, stage=25)
    owned(rep, started=2, stage=25)
    b = owned(second_rep, started=1, stage=25)
    PossibleDuplicate.objects.create(customer=a, candidate=b, score=0.81, reasons=["名称相似"])
    PossibleDuplicate.objects.create(
        customer=b, candidate=a, score=0.5, reasons=[], resolved_at=timezone.now()
    )
    User.objects.filter(pk=second_rep.pk).update(is_active=False)
    run = review_run()
    assert run.count(ReviewAction.OVER_CAP) == 1
    assert run.count(ReviewAction.INACTIVE_OWNER) == 1
    assert run.count(ReviewAction.POSSIBLE_DUPLICATE) == 1
    # The disputes app registers its overdue cases; none is overdue here.
    assert run.count(ReviewAction.DISPUTE_OVERDUE) == 0 and disputes_available()
    over = ReviewOutcome.objects.get(run=run, action=ReviewAction.OVER_CAP)
    assert over.rep == rep and over.team == team and "2" in over.detail
    inactive = ReviewOutcome.objects.get(run=run, action=ReviewAction.INACTIVE_OWNER)
    assert inactive.customer == b and inactive.team == team
    duplicate = ReviewOutcome.objects.get(run=run, action=ReviewAction.POSSIBLE_DUPLICATE)
    assert duplicate.customer == a and duplicate.team == team


def test_the_task_runs_the_service_and_skips_when_locked(
    book_of_customers: dict, settings: Any
) -> None:
    from ownership.tasks import run_ownership_review

    settings.CELERY_TASK_ALWAYS_EAGER = True
    result = run_ownership_review.delay().get()
    assert result["counts"]["recycled"] == 2
    other = _other_connection()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        assert "skipped" in run_ownership_review.delay().get()
    finally:
        other.close()


def test_the_review_is_scheduled_nightly() -> None:
    from crm.schedules import SCHEDULES

    review = next(s for s in SCHEDULES if s.task == "ownership.tasks.run_ownership_review")
    assert review.crontab == {"minute": "30", "hour": "2"}


def test_the_set_based_writer_recycles_only_what_it_is_told(
    rep: User, second_rep: User, global_pool_policy: PoolPolicy
) -> None:
    from guardian.shortcuts import assign_perm

    from ownership.services import ownership_recycle_many

    shared = owned(rep, started=40)
    assign_perm("crm.view_shared_customer", second_rep, shared)
    spared = owned(rep, started=40)
    merged = owned(rep, started=40)
    Customer.objects.filter(pk=merged.pk).update(merged_into=shared)
    pool = CustomerFactory()
    now = timezone.now()
    events = ownership_recycle_many(
        customer_ids=[shared.pk, spared.pk, merged.pk, pool.pk],
        decide=lambda c: None if c.pk == spared.pk else ("理由", "规则"),
        now=now,
    )
    assert set(events) == {shared.pk}
    event = events[shared.pk]
    assert event.sequence == 2 and event.from_owner_id == rep.pk and event.kind == "recycled"
    shared.refresh_from_db()
    assert shared.owner is None and shared.owned_since is None
    assert not second_rep.has_perm("crm.view_shared_customer", shared)
    for customer in (spared, merged):
        customer.refresh_from_db()
        assert customer.owner == rep
