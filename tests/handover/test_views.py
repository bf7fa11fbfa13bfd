"""The handover pages with their permissions: the manager's plan, the leaver's tasks, the
successor's acceptance list; outsiders get 404, never a hint."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from crm.models import Customer, EmploymentState, User
from handover import services
from handover.models import Departure, HandoverTask, TaskState
from tests.conftest import login
from tests.handover.conftest import in_days, make_customers


@pytest.fixture
def departure(manager: User, leaver: User, successor: User, book: list[Customer]) -> Departure:
    return services.departure_record(
        actor=manager, leaver=leaver, last_day=in_days(10), successor=successor
    )


def _open_task(departure: Departure, stage: int = 25) -> HandoverTask:
    task = departure.tasks.filter(stage=stage, state=TaskState.PROPOSED).first()
    assert task is not None
    return task


def test_manager_records_a_departure_through_the_pages(
    client: Client, manager: User, leaver: User, successor: User, book: list[Customer]
) -> None:
    login(client, manager)
    page = client.get(reverse("handover_departure_new"))
    assert page.status_code == 200 and "王小明" in page.content.decode()
    step2 = client.get(reverse("handover_departure_new"), {"leaver": leaver.pk})
    body = step2.content.decode()
    assert step2.status_code == 200
    assert "李娜" in body and "空余容量" in body  # suggestions with their reasons
    response = client.post(
        reverse("handover_departure_new"),
        {
            "leaver": leaver.pk,
            "last_day": in_days(7).isoformat(),
            "reason": "家庭原因",
            "mode": "one",
            "successor": successor.pk,
        },
    )
    departure = Departure.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("handover_departure_detail", args=[departure.pk])
    assert departure.tasks.count() == len(book)
    leaver.refresh_from_db()
    assert leaver.state == EmploymentState.DEPARTING
    plan = client.get(response["Location"]).content.decode()
    assert "电话介绍" in plan or "电话" in plan
    assert "progress-bar" in plan


def test_bad_input_is_answered_in_chinese_and_saves_nothing(
    client: Client, manager: User, leaver: User, book: list[Customer]
) -> None:
    login(client, manager)
    response = client.post(
        reverse("handover_departure_new"),
        {"leaver": leaver.pk, "last_day": in_days(-2).isoformat(), "mode": "one"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "最后工作日不能早于今天" in body
    assert "请选择接手人" in body
    assert not Departure.objects.exists()


def test_another_teams_manager_cannot_record_or_see(
    client: Client, other_manager: User, leaver: User, departure: Departure
) -> None:
    login(client, other_manager)
    response = client.post(
        reverse("handover_departure_new"),
        {"leaver": leaver.pk, "last_day": in_days(7).isoformat(), "mode": "auto"},
    )
    assert response.status_code == 200  # the rep is simply not among the choices
    assert Departure.objects.count() == 1
    for name in ("handover_departure_detail", "handover_departure_report"):
        assert client.get(reverse(name, args=[departure.pk])).status_code == 404
    task = _open_task(departure)
    assert client.get(reverse("handover_task_detail", args=[task.pk])).status_code == 404
    response = client.post(
        reverse("handover_departure_reassign", args=[departure.pk]),
        {"tasks": [task.pk], "successor": other_manager.pk},
    )
    assert response.status_code == 404
    list_page = client.get(reverse("handover_departure_list")).content.decode()
    assert "王小明" not in list_page


def test_a_rep_cannot_see_someone_elses_departure(
    client: Client, third_rep: User, successor: User, departure: Departure
) -> None:
    login(client, third_rep)
    assert client.get(reverse("handover_departure_detail", args=[departure.pk])).status_code == 404
    task = _open_task(departure)
    assert client.get(reverse("handover_task_detail", args=[task.pk])).status_code == 404
    assert client.post(reverse("handover_task_accept", args=[task.pk])).status_code == 404
    response = client.post(reverse("handover_incoming_accept"), {"tasks": [task.pk]})
    assert response.status_code == 404
    task.refresh_from_db()
    assert task.state == TaskState.PROPOSED
    # Even the successor reads the plan only through their own tasks.
    client.logout()
    login(client, successor)
    assert client.get(reverse("handover_departure_detail", args=[departure.pk])).status_code == 404


def test_successor_accepts_in_bulk_refuses_one_and_confirms(
    client: Client, successor: User, leaver: User, departure: Departure
) -> None:
    login(client, successor)
    page = client.get(reverse("handover_incoming"))
    assert page.status_code == 200 and "王小明" in page.content.decode()
    open_tasks = list(departure.tasks.filter(state=TaskState.PROPOSED).order_by("id"))
    refuse, *accept = open_tasks
    response = client.post(reverse("handover_incoming_accept"), {"tasks": [t.pk for t in accept]})
    assert response.status_code == 302
    assert departure.tasks.filter(state=TaskState.ACCEPTED).count() == len(accept)
    response = client.post(reverse("handover_task_refuse", args=[refuse.pk]), {"reason": ""})
    refuse.refresh_from_db()
    assert refuse.state == TaskState.PROPOSED  # a reason is required
    client.post(reverse("handover_task_refuse", args=[refuse.pk]), {"reason": "客户在外地"})
    refuse.refresh_from_db()
    assert refuse.state == TaskState.REFUSED
    # The leaver marks one done, the successor confirms: the customer moves.
    task = accept[0]
    client.logout()
    login(client, leaver)
    assert client.get(reverse("handover_my_tasks")).status_code == 200
    detail = client.get(reverse("handover_task_detail", args=[task.pk])).content.decode()
    assert "联系人" in detail  # key contacts are on the task
    client.post(reverse("handover_task_done", args=[task.pk]), {"note": "已电话介绍"})
    client.logout()
    login(client, successor)
    response = client.post(
        reverse("handover_task_confirm", args=[task.pk]),
        {"happened_on": in_days(0).isoformat(), "note": "三方通话"},
    )
    assert response.status_code == 302
    task.refresh_from_db()
    task.customer.refresh_from_db()
    assert task.state == TaskState.CONFIRMED and task.customer.owner == successor


def test_manager_reassigns_a_refused_customer_on_the_plan(
    client: Client, manager: User, successor: User, third_rep: User, departure: Departure
) -> None:
    task = _open_task(departure)
    services.task_refuse(actor=successor, task=task, reason="太忙")
    login(client, manager)
    plan = client.get(
        reverse("handover_departure_detail", args=[departure.pk]), {"state": "refused"}
    )
    assert "太忙" in plan.content.decode()
    response = client.post(
        reverse("handover_departure_reassign", args=[departure.pk]),
        {"tasks": [task.pk], "successor": third_rep.pk},
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.state == TaskState.REASSIGNED
    assert HandoverTask.objects.get(replaces=task).successor == third_rep


def test_the_report_lists_what_was_incomplete(
    client: Client, manager: User, departure: Departure
) -> None:
    Departure.objects.filter(pk=departure.pk).update(last_day=in_days(0))
    services.departures_finish_due()
    login(client, manager)
    response = client.get(reverse("handover_departure_report", args=[departure.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "交接未完成" in body
    assert body.count("handover/tasks/") >= 8


def test_lists_take_a_constant_number_of_queries(
    client: Client,
    manager: User,
    leaver: User,
    successor: User,
    departure: Departure,
    django_assert_max_num_queries: Any,
) -> None:
    make_customers(leaver, [25] * 3, prefix=50)  # not in the plan: no effect on the lists
    login(client, manager)
    with django_assert_max_num_queries(16):
        assert (
            client.get(reverse("handover_departure_detail", args=[departure.pk])).status_code == 200
        )
    with django_assert_max_num_queries(12):
        assert client.get(reverse("handover_departure_list")).status_code == 200
    client.logout()
    login(client, successor)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("handover_incoming")).status_code == 200
    client.logout()
    login(client, leaver)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("handover_my_tasks")).status_code == 200


def test_home_pages_link_to_the_handover(
    client: Client, manager: User, leaver: User, successor: User, departure: Departure
) -> None:
    for user, url in (
        (manager, reverse("handover_departure_list")),
        (leaver, reverse("handover_my_tasks")),
        (successor, reverse("handover_incoming")),
    ):
        client.logout()
        login(client, user)
        assert url in client.get(reverse("home")).content.decode()
