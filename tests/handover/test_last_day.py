"""The last day: everything not yet moved moves anyway, flagged incomplete; the leaver owns
nothing and is deactivated. Idempotent, also when two runs race."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from crm.models import Customer, EmploymentState, Notification, Role, User
from handover import services
from handover.models import Departure, DepartureState, HandoverTask
from handover.tasks import finish_due_departures
from ownership.models import EventKind, OwnershipEvent
from tests.factories import TeamFactory, UserFactory
from tests.handover.conftest import in_days, make_customers


def _advance(departure: Departure, days: int = 0) -> None:
    """Pretend the last day has come (the job compares with today's date)."""
    Departure.objects.filter(pk=departure.pk).update(last_day=in_days(days))


@pytest.fixture
def departure(manager: User, leaver: User, successor: User, book: list[Customer]) -> Departure:
    return services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(10), successor=successor
    )


def test_nothing_happens_before_the_last_day(departure: Departure) -> None:
    assert services.departures_finish_due() == 0
    departure.refresh_from_db()
    assert departure.state == DepartureState.IN_PROGRESS


def test_the_last_day_moves_the_rest_flags_it_and_deactivates_the_leaver(
    departure: Departure,
    leaver: User,
    successor: User,
    third_rep: User,
    manager: User,
    book: list[Customer],
) -> None:
    tasks = {t.customer_id: t for t in departure.tasks.all()}
    # One completed handover, one refused, the rest open in various states.
    done = tasks[book[2].pk]
    services.tasks_accept(actor=successor, task_ids=[done.pk, tasks[book[4].pk].pk])
    services.task_mark_done(actor=leaver, task=done, note="电话介绍")
    done.refresh_from_db()
    services.task_confirm(actor=successor, task=done, happened_on=in_days(0), note="确认")
    refused = tasks[book[6].pk]
    services.task_refuse(actor=successor, task=refused, reason="太远")
    _advance(departure)

    moved = services.departures_finish_due()

    departure.refresh_from_db()
    leaver.refresh_from_db()
    assert moved == 7  # 10 customers: 2 at once, 1 confirmed, 7 on the last day
    assert departure.state == DepartureState.FINISHED
    assert not Customer.objects.filter(owner=leaver).exists()
    assert (leaver.is_active, leaver.state) == (False, EmploymentState.DEPARTED)
    states = Counter(departure.tasks.values_list("state", flat=True))
    assert states == {"moved_at_once": 2, "confirmed": 1, "moved_at_deadline": 7}
    refused.refresh_from_db()
    # The refused one went to the strongest other colleague, not to the refuser.
    assert refused.moved_event is not None and refused.moved_event.to_owner == third_rep
    report = departure.report
    assert report["incomplete"] == 7 and report["total"] == 10 and report["refusals"] == 1
    finished = Notification.objects.get(recipient=manager, kind="handover_finished")
    assert "王小明" in finished.title
    assert Notification.objects.filter(
        recipient=successor, kind="handover_moved_at_deadline"
    ).exists()


def test_the_ledger_shows_one_handed_over_event_per_customer_with_its_task(
    departure: Departure, leaver: User, book: list[Customer]
) -> None:
    _advance(departure)
    services.departures_finish_due()
    for customer in book:
        events = OwnershipEvent.objects.filter(customer=customer, kind=EventKind.HANDED_OVER)
        assert events.count() == 1
        event = events.get()
        task = HandoverTask.objects.get(customer=customer)
        assert event.cause == task and event.from_owner == leaver
        assert task.moved_event == event


def test_running_twice_moves_nothing_more(departure: Departure, manager: User) -> None:
    _advance(departure)
    first = finish_due_departures()
    events = OwnershipEvent.objects.count()
    notifications = Notification.objects.count()
    second = finish_due_departures()
    assert first["moved"] == 8 and second["moved"] == 0
    assert OwnershipEvent.objects.count() == events
    assert Notification.objects.count() == notifications


def test_a_successor_who_left_meanwhile_is_replaced(
    departure: Departure, successor: User, third_rep: User
) -> None:
    User.objects.filter(pk=successor.pk).update(state=EmploymentState.DEPARTING)
    _advance(departure)
    services.departures_finish_due()
    owners = set(
        Customer.objects.filter(handover_tasks__state="moved_at_deadline").values_list(
            "owner", flat=True
        )
    )
    assert owners == {third_rep.pk}


def test_with_no_colleague_left_the_rest_goes_to_the_pool(
    departure: Departure, successor: User, leaver: User
) -> None:
    User.objects.filter(pk=successor.pk).update(is_active=False)
    _advance(departure)
    services.departures_finish_due()
    departure.refresh_from_db()
    assert departure.state == DepartureState.FINISHED
    assert departure.report["to_pool"] == 8
    assert not Customer.objects.filter(owner=leaver).exists()


def test_a_customer_given_back_to_the_leaver_after_the_plan_moves_too(
    departure: Departure, leaver: User, successor: User, global_pool_policy: Any
) -> None:
    """e.g. a ruling (allow_departing) after the plan: the last day plans and moves it."""
    from ownership.models import EventKind as Kind
    from ownership.services import _change_owner
    from tests.factories import CustomerFactory

    late = CustomerFactory(stage=50)
    _change_owner(customer_id=late.pk, to_owner=leaver, kind=Kind.RULED, reason="裁决", actor=None)
    _advance(departure)
    services.departures_finish_due()
    late.refresh_from_db()
    assert late.owner == successor
    departure.refresh_from_db()
    assert departure.state == DepartureState.FINISHED


# --- concurrency: threads with their own connections --------------------------------------


def _run_concurrently(workers: list[threading.Thread]) -> None:
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_move_exactly_the_rest_once(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from ownership.selectors import global_policy

    global_policy()
    team = TeamFactory(name="并发交接团队")
    manager = UserFactory(username="cmgr", role=Role.MANAGER, team=team)
    team.manager = manager
    team.save(update_fields=["manager"])
    leaver = UserFactory(username="cleaver", role=Role.REP, team=team)
    successors = [UserFactory(username=f"csucc{i}", role=Role.REP, team=team) for i in range(3)]
    stages = [0, 25, 50, 75, 100] * 60  # 300 customers: more than one batch each
    customers = make_customers(leaver, stages)
    services.departure_record(
        actor=manager,
        leaver=leaver,
        last_day=in_days(3),
        per_customer={c.pk: successors[i % 3] for i, c in enumerate(customers)},
    )
    # Some tasks refused, so the fallback (other colleagues) takes part in the race too.
    refused = HandoverTask.objects.filter(state="proposed").order_by("id")[:30]
    for task in refused:
        services.task_refuse(actor=task.successor, task=task, reason="不接")
    Departure.objects.update(last_day=in_days(0))
    barrier = threading.Barrier(3)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(services.departures_finish_due(now=timezone.now()))
        except BaseException as error:  # noqa: BLE001 - any error fails the test below
            errors.append(error)
        finally:
            connection.close()

    _run_concurrently([threading.Thread(target=run) for _ in range(3)])
    close_old_connections()
    assert errors == []
    planned_at_once = stages.count(0)
    assert sum(results) == len(customers) - planned_at_once
    assert not Customer.objects.filter(owner=leaver).exists()
    handed = Counter(
        OwnershipEvent.objects.filter(kind=EventKind.HANDED_OVER).values_list(
            "customer_id", flat=True
        )
    )
    assert set(handed.values()) == {1} and len(handed) == len(customers)
    departure = Departure.objects.get()
    assert departure.state == DepartureState.FINISHED
    leaver.refresh_from_db()
    assert leaver.state == EmploymentState.DEPARTED and not leaver.is_active
    assert Notification.objects.filter(kind="handover_finished").count() == 1
    assert departure.finished_at is not None
    assert departure.finished_at <= timezone.now() + timedelta(seconds=1)


def test_overdue_tasks_are_reminded_once_a_day(
    departure: Departure, leaver: User, successor: User
) -> None:
    task = departure.tasks.filter(stage=25).first()
    assert task is not None
    services.tasks_accept(actor=successor, task_ids=[task.pk])
    HandoverTask.objects.filter(departure=departure).update(due_date=in_days(-1))
    assert services.tasks_remind_overdue() == 2  # the leaver (1 accepted), the successor (7)
    assert services.tasks_remind_overdue() == 0
    to_successor = Notification.objects.get(recipient=successor, kind="handover_overdue")
    assert "7" in to_successor.title
    assert Notification.objects.filter(recipient=leaver, kind="handover_overdue").count() == 1
