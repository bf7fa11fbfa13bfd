"""The task state machine: accept or refuse, reassign, done by the leaver, confirmed by the
successor (the customer moves), and the explicit transition table."""

from __future__ import annotations

import pytest
from django.utils import timezone

from crm.models import Customer, Notification, User
from crm.selectors import customers_visible_to
from handover import services
from handover.models import Departure, HandoverTask, TaskHistory, TaskState
from handover.services import TRANSITIONS, IllegalTransition, task_transition
from ownership.models import EventKind, OwnershipEvent
from ownership.services import ownership_recycle
from tests.handover.conftest import in_days


@pytest.fixture
def departure(manager: User, leaver: User, successor: User, book: list[Customer]) -> Departure:
    return services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(10), successor=successor
    )


def _task(departure: Departure, stage: int) -> HandoverTask:
    return departure.tasks.filter(stage=stage).order_by("id").first()  # type: ignore[return-value]


def test_accept_then_done_then_confirmed_moves_the_customer(
    departure: Departure, leaver: User, successor: User, manager: User
) -> None:
    task = _task(departure, 75)
    customer = task.customer
    assert customers_visible_to(successor).filter(pk=customer.pk).exists()
    services.tasks_accept(actor=successor, task_ids=[task.pk])
    task.refresh_from_db()
    assert task.state == TaskState.ACCEPTED
    assert Notification.objects.filter(recipient=leaver, kind="handover_accepted").exists()
    services.task_mark_done(actor=leaver, task=task, note="已带李娜拜访客户")
    task.refresh_from_db()
    assert task.state == TaskState.DONE_BY_LEAVER and task.leaver_note == "已带李娜拜访客户"
    assert Notification.objects.filter(recipient=successor, kind="handover_task_done").exists()
    services.task_confirm(
        actor=successor, task=task, happened_on=timezone.localdate(), note="客户认可新对接人"
    )
    task.refresh_from_db()
    customer.refresh_from_db()
    assert task.state == TaskState.CONFIRMED
    assert customer.owner == successor
    event = OwnershipEvent.objects.filter(customer=customer).latest("sequence")
    assert (event.kind, event.cause, event.from_owner, event.actor) == (
        EventKind.HANDED_OVER,
        task,
        leaver,
        successor,
    )
    assert task.moved_event == event
    # The preview grant ends when the customer moves (ownership is the access now).
    from crm.models import CustomerUserObjectPermission

    assert not CustomerUserObjectPermission.objects.filter(
        content_object=customer, permission__codename="preview_handover_customer"
    ).exists()
    steps = list(task.history.order_by("id").values_list("from_state", "to_state", "actor"))
    assert steps == [
        ("", "proposed", manager.pk),
        ("proposed", "accepted", successor.pk),
        ("accepted", "done_by_leaver", leaver.pk),
        ("done_by_leaver", "confirmed", successor.pk),
    ]
    assert Notification.objects.filter(recipient=manager, kind="handover_confirmed").exists()


def test_refusal_goes_back_to_the_manager_who_reassigns(
    departure: Departure, successor: User, third_rep: User, manager: User
) -> None:
    task = _task(departure, 50)
    with pytest.raises(services.DepartureInvalid):
        services.task_refuse(actor=successor, task=task, reason="  ")
    services.task_refuse(actor=successor, task=task, reason="行业不熟悉")
    task.refresh_from_db()
    assert task.state == TaskState.REFUSED and task.refusal_reason == "行业不熟悉"
    assert not customers_visible_to(successor).filter(pk=task.customer_id).exists()
    refused = Notification.objects.get(recipient=manager, kind="handover_refused")
    assert task.customer.display_name in refused.title
    # The refuser cannot be given it back, someone else can.
    with pytest.raises(services.DepartureInvalid):
        services.tasks_reassign(
            actor=manager, departure=departure, task_ids=[task.pk], successor=successor
        )
    (new,) = services.tasks_reassign(
        actor=manager, departure=departure, task_ids=[task.pk], successor=third_rep
    )
    task.refresh_from_db()
    assert task.state == TaskState.REASSIGNED
    assert (new.state, new.successor, new.replaces) == (TaskState.PROPOSED, third_rep, task)
    assert customers_visible_to(third_rep).filter(pk=task.customer_id).exists()
    assert Notification.objects.filter(recipient=third_rep, kind="handover_to_accept").exists()


def test_only_the_named_people_take_the_steps(
    departure: Departure, leaver: User, successor: User, third_rep: User, other_manager: User
) -> None:
    task = _task(departure, 25)
    with pytest.raises(services.HandoverNotAllowed):
        services.tasks_accept(actor=third_rep, task_ids=[task.pk])
    with pytest.raises(services.HandoverNotAllowed):
        services.tasks_accept(actor=leaver, task_ids=[task.pk])
    with pytest.raises(services.HandoverNotAllowed):
        services.task_refuse(actor=third_rep, task=task, reason="x")
    services.tasks_accept(actor=successor, task_ids=[task.pk])
    task.refresh_from_db()
    with pytest.raises(services.HandoverNotAllowed):
        services.task_mark_done(actor=successor, task=task, note="x")
    with pytest.raises(services.HandoverNotAllowed):
        services.tasks_reassign(
            actor=other_manager, departure=departure, task_ids=[task.pk], successor=third_rep
        )
    task.refresh_from_db()
    assert task.state == TaskState.ACCEPTED


def test_the_leaver_cannot_mark_done_before_acceptance(departure: Departure, leaver: User) -> None:
    task = _task(departure, 25)
    with pytest.raises(services.HandoverError):
        services.task_mark_done(actor=leaver, task=task, note="打过电话了")


def test_the_successor_may_send_a_task_back(
    departure: Departure, leaver: User, successor: User
) -> None:
    task = _task(departure, 25)
    services.tasks_accept(actor=successor, task_ids=[task.pk])
    services.task_mark_done(actor=leaver, task=task, note="电话介绍")
    task.refresh_from_db()
    services.task_send_back(actor=successor, task=task, note="客户说没接到电话")
    task.refresh_from_db()
    assert task.state == TaskState.ACCEPTED
    assert Notification.objects.filter(recipient=leaver, kind="handover_sent_back").exists()


def test_confirmation_needs_a_plausible_date_and_a_note(
    departure: Departure, leaver: User, successor: User
) -> None:
    task = _task(departure, 25)
    services.tasks_accept(actor=successor, task_ids=[task.pk])
    services.task_mark_done(actor=leaver, task=task, note="电话介绍")
    task.refresh_from_db()
    for day, note, field in [
        (in_days(1), "x", "happened_on"),
        (in_days(-30), "x", "happened_on"),
        (None, "x", "happened_on"),
        (in_days(0), " ", "note"),
    ]:
        with pytest.raises(services.DepartureInvalid) as caught:
            services.task_confirm(actor=successor, task=task, happened_on=day, note=note)
        assert field in caught.value.errors
    task.refresh_from_db()
    assert task.state == TaskState.DONE_BY_LEAVER


def test_a_customer_gone_meanwhile_cancels_its_task(
    departure: Departure, leaver: User, successor: User
) -> None:
    task = _task(departure, 25)
    services.tasks_accept(actor=successor, task_ids=[task.pk])
    services.task_mark_done(actor=leaver, task=task, note="电话介绍")
    ownership_recycle(customer=task.customer, reason="回收", now=timezone.now())
    task.refresh_from_db()
    services.task_confirm(actor=successor, task=task, happened_on=in_days(0), note="完成")
    task.refresh_from_db()
    assert task.state == TaskState.CANCELLED
    task.customer.refresh_from_db()
    assert task.customer.owner is None


def test_the_transition_table_refuses_illegal_moves_and_no_ops_on_no_change(
    departure: Departure, successor: User
) -> None:
    task = _task(departure, 25)
    before = TaskHistory.objects.count()
    _same, changed = task_transition(task_id=task.pk, to_state=TaskState.PROPOSED, actor=successor)
    assert changed is False and TaskHistory.objects.count() == before
    for illegal in (TaskState.CONFIRMED, TaskState.DONE_BY_LEAVER):
        with pytest.raises(IllegalTransition) as caught:
            task_transition(task_id=task.pk, to_state=illegal, actor=successor)
        assert caught.value.from_state == TaskState.PROPOSED
    assert TaskHistory.objects.count() == before
    moved = departure.tasks.filter(state=TaskState.MOVED_AT_ONCE).first()
    assert moved is not None
    with pytest.raises(IllegalTransition):
        task_transition(task_id=moved.pk, to_state=TaskState.ACCEPTED, actor=successor)


def test_terminal_states_lead_nowhere() -> None:
    for state in (
        TaskState.CONFIRMED,
        TaskState.MOVED_AT_ONCE,
        TaskState.MOVED_AT_DEADLINE,
        TaskState.REASSIGNED,
        TaskState.CANCELLED,
    ):
        assert TRANSITIONS[state] == frozenset()
    for state in (
        TaskState.PROPOSED,
        TaskState.ACCEPTED,
        TaskState.REFUSED,
        TaskState.DONE_BY_LEAVER,
    ):
        # Any open task can be moved on the last day.
        assert TaskState.MOVED_AT_DEADLINE in TRANSITIONS[state]
    assert set(TRANSITIONS) == set(TaskState.values)


def test_history_is_append_only(departure: Departure) -> None:
    from django.db import InternalError, ProgrammingError, transaction

    row = TaskHistory.objects.first()
    assert row is not None
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        TaskHistory.objects.filter(pk=row.pk).update(note="改写")
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        TaskHistory.objects.filter(pk=row.pk).delete()
