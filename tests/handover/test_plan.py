"""Recording a departure: the plan follows the funnel stage, 0% moves at once, successors
are suggested, the rep becomes "departing" and gets no new customers."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from allocation.services import RegistrationForm, registration_submit
from crm.models import Customer, EmploymentState, Notification, User
from crm.selectors import customers_visible_to
from handover import selectors, services
from handover.models import Departure, HandoverTask, TaskHistory, TaskKind, TaskState
from ownership import services as ownership
from ownership.models import EventKind, OwnershipEvent, PoolPolicy
from tests.factories import CustomerFactory
from tests.handover.conftest import in_days, make_customers

STAGE_MIXES = [
    [0, 25, 50, 75, 100],
    [0, 0, 0],
    [25, 50],
    [75, 100, 100],
    [],
    [100, 0, 50, 25, 75, 0],
]


@pytest.mark.parametrize("stages", STAGE_MIXES)
def test_the_plan_follows_each_customers_funnel_stage(
    manager: User, leaver: User, successor: User, global_pool_policy: Any, stages: list[int]
) -> None:
    customers = make_customers(leaver, stages)
    departure = services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(10), successor=successor
    )
    tasks = {t.customer_id: t for t in HandoverTask.objects.filter(departure=departure)}
    assert len(tasks) == len(customers)
    expected_kind = {0: TaskKind.IMMEDIATE, 25: TaskKind.PHONE_INTRO, 50: TaskKind.PHONE_INTRO}
    for customer in customers:
        task = tasks[customer.pk]
        customer.refresh_from_db()
        assert task.kind == expected_kind.get(task.stage, TaskKind.JOINT_VISIT)
        assert task.successor == successor
        assert task.due_date <= departure.last_day
        if task.stage == 0:
            # 0%: transferred at once, through the ownership writer, the task as its cause.
            assert task.state == TaskState.MOVED_AT_ONCE
            assert customer.owner == successor
            event = OwnershipEvent.objects.filter(customer=customer).latest("sequence")
            assert event.kind == EventKind.HANDED_OVER and event.cause == task
            assert task.moved_event == event
        else:
            assert task.state == TaskState.PROPOSED
            assert customer.owner == leaver
            # The successor may read the customer meanwhile.
            assert customers_visible_to(successor).filter(pk=customer.pk).exists()
    leaver.refresh_from_db()
    assert leaver.state == EmploymentState.DEPARTING


def test_due_dates_come_before_the_last_day_and_never_before_today(
    manager: User, leaver: User, successor: User, book: list[Customer]
) -> None:
    departure = services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(10), successor=successor
    )
    due = {t.kind: t.due_date for t in departure.tasks.all()}
    assert due[TaskKind.PHONE_INTRO] == in_days(8)
    assert due[TaskKind.JOINT_VISIT] == in_days(6)
    soon = make_customers(successor, [25])  # another departure, last day tomorrow
    services.departure_record(
        actor=manager, leaver=successor, last_day=in_days(1), successor=_third(manager)
    )
    assert HandoverTask.objects.get(customer=soon[0]).due_date == in_days(0)


def _third(manager: User) -> User:
    from tests.factories import UserFactory

    return UserFactory(username="rep9", role="rep", team=manager.team)


def test_tasks_carry_contacts_next_steps_and_the_checklist(
    manager: User, leaver: User, successor: User, book: list[Customer]
) -> None:
    departure = services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(10), successor=successor
    )
    task = departure.tasks.get(customer=book[4])  # 50%: an open opportunity
    kinds = [item["kind"] for item in task.checklist]
    assert kinds == ["opportunity", "next_step"]
    assert task.checklist[1]["text"] == "下周发送方案4"
    won = departure.tasks.get(customer=book[8])
    assert [item["kind"] for item in won.checklist] == ["won", "next_step"]


def test_every_step_writes_a_history_row(
    manager: User, leaver: User, successor: User, book: list[Customer]
) -> None:
    departure = services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(10), successor=successor
    )
    immediate = departure.tasks.filter(kind=TaskKind.IMMEDIATE).first()
    assert immediate is not None
    steps = list(TaskHistory.objects.filter(task=immediate).values_list("from_state", "to_state"))
    assert steps == [("", "proposed"), ("proposed", "moved_at_once")]


def test_per_customer_choices_override_the_bulk_successor(
    manager: User, leaver: User, successor: User, third_rep: User, book: list[Customer]
) -> None:
    departure = services.departure_record(
        actor=manager,
        leaver=leaver,
        last_day=in_days(10),
        successor=successor,
        per_customer={book[8].pk: third_rep, book[0].pk: third_rep},
    )
    assert departure.tasks.get(customer=book[8]).successor == third_rep
    assert departure.tasks.get(customer=book[2]).successor == successor
    book[0].refresh_from_db()
    assert book[0].owner == third_rep


def test_every_customer_needs_a_successor(
    manager: User, leaver: User, third_rep: User, book: list[Customer]
) -> None:
    with pytest.raises(services.DepartureInvalid) as caught:
        services.departure_record(
            actor=manager, leaver=leaver, last_day=in_days(10), per_customer={book[0].pk: third_rep}
        )
    assert "successor" in caught.value.errors
    # Nothing half saved: the rep is not even departing.
    leaver.refresh_from_db()
    assert leaver.state == EmploymentState.ACTIVE
    assert not Departure.objects.exists() and not HandoverTask.objects.exists()


@pytest.mark.parametrize("days", [-1, 400])
def test_the_last_day_must_be_plausible(
    manager: User, leaver: User, successor: User, days: int
) -> None:
    with pytest.raises(services.DepartureInvalid) as caught:
        services.departure_record(
            actor=manager, leaver=leaver, last_day=in_days(days), successor=successor
        )
    assert "last_day" in caught.value.errors


def test_only_the_leavers_managers_record_a_departure(
    other_manager: User, second_rep: User, leaver: User, successor: User
) -> None:
    for actor in (other_manager, second_rep):
        with pytest.raises(services.HandoverNotAllowed):
            services.departure_record(
                actor=actor, leaver=leaver, last_day=in_days(5), successor=successor
            )


def test_successors_come_from_the_managers_teams(
    manager: User, leaver: User, other_rep: User, book: list[Customer]
) -> None:
    with pytest.raises(services.DepartureInvalid):
        services.departure_record(
            actor=manager, leaver=leaver, last_day=in_days(5), successor=other_rep
        )


def test_a_second_departure_of_the_same_rep_is_refused(
    manager: User, leaver: User, successor: User, book: list[Customer]
) -> None:
    services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(5), successor=successor
    )
    with pytest.raises(services.HandoverNotAllowed):
        # A departing rep is no longer among those whose departure can be recorded.
        services.departure_record(
            actor=manager, leaver=leaver, last_day=in_days(6), successor=successor
        )
    assert Departure.objects.count() == 1


def test_suggestions_rank_by_free_capacity_and_recent_win_rate(
    manager: User, leaver: User, successor: User, third_rep: User, global_pool_policy: PoolPolicy
) -> None:
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=4, warning_days=1)
    # successor: 2 owned, 1 won recently (50%); third_rep: 2 owned, none won.
    won, _other = make_customers(successor, [75, 25])
    from crm import services as crm_services

    crm_services.follow_up_log(
        actor=successor,
        customer=won,
        kind="visit",
        happened_at=timezone.now(),
        summary="签约",
        stage_after=100,
    )
    make_customers(third_rep, [25, 25], prefix=10)
    candidates = selectors.successor_candidates(manager, leaver)
    suggestions = selectors.successor_suggestions(leaver, candidates)
    assert [s.rep for s in suggestions] == [successor, third_rep]
    best = suggestions[0]
    assert best.win_rate == 0.5 and best.owned_total == 2
    # The cap counts as ownership.services.owned_count does (won customers not counted).
    policy = ownership.policy_for_owner(successor)
    assert best.owned == ownership.owned_count(successor, policy) == 1
    assert best.free == 3
    assert any("50%" in reason for reason in best.reasons)
    # A full colleague goes after one with room, whatever their win rate.
    make_customers(successor, [25, 25, 25], prefix=20)
    suggestions = selectors.successor_suggestions(leaver, candidates)
    assert [s.rep for s in suggestions] == [third_rep, successor]
    assert suggestions[1].free == 0


def test_auto_distribution_gives_the_best_customers_to_the_strongest_with_room(
    manager: User,
    leaver: User,
    successor: User,
    third_rep: User,
    global_pool_policy: PoolPolicy,
) -> None:
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=3, warning_days=1)
    won = CustomerFactory(owner=successor, stage=75)
    from crm import services as crm_services

    crm_services.follow_up_log(
        actor=successor,
        customer=won,
        kind="visit",
        happened_at=timezone.now(),
        summary="签约",
        stage_after=100,
    )
    customers = make_customers(leaver, [100, 75, 50, 25, 0], prefix=30)
    departure = services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(10), auto_distribute=True
    )
    plan = {t.customer_id: t.successor for t in departure.tasks.all()}
    # successor (won 1 of 1) has room for 3 (the won one does not count): the top three.
    assert [plan[c.pk] for c in customers] == [successor] * 3 + [third_rep] * 2


def test_departing_reps_get_no_new_customers(
    manager: User, leaver: User, successor: User, book: list[Customer]
) -> None:
    """check_not_departing in the ownership writer: registration, claims, allocation."""
    services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(5), successor=successor
    )
    leaver.refresh_from_db()
    with pytest.raises(ownership.OwnerNotEligible):
        registration_submit(
            actor=leaver, form=RegistrationForm(display_name="上海全新未见科技有限公司")
        )
    assert not Customer.objects.filter(display_name="上海全新未见科技有限公司").exists()
    pool_customer = CustomerFactory()
    with pytest.raises(ownership.OwnerNotEligible):
        ownership.ownership_claim(actor=leaver, customer=pool_customer)
    with pytest.raises(ownership.OwnerNotEligible):
        ownership.ownership_allocate(actor=manager, customer=pool_customer, to_rep=leaver)
    with pytest.raises(ownership.OwnerNotEligible):
        ownership.ownership_register(actor=leaver, customer=pool_customer)
    pool_customer.refresh_from_db()
    assert pool_customer.owner is None


def test_the_leaver_and_the_successors_are_told(
    manager: User, leaver: User, successor: User, book: list[Customer]
) -> None:
    services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(5), successor=successor
    )
    assert Notification.objects.filter(recipient=leaver, kind="handover_started").count() == 1
    to_accept = Notification.objects.get(recipient=successor, kind="handover_to_accept")
    assert "王小明" in to_accept.title
    assert "8" in to_accept.body and "2" in to_accept.body


def test_emails_go_out_after_commit(
    manager: User,
    leaver: User,
    successor: User,
    book: list[Customer],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        services.departure_record(
            actor=manager, leaver=leaver, last_day=in_days(5), successor=successor
        )
    assert sorted(m.to[0] for m in mail.outbox) == ["rep2@example.com", "rep@example.com"]
