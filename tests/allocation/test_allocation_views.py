"""Allocation pages (分配) and the manager's team view with the Django client."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from allocation.models import AllocationBatch, ReassignmentRequest
from crm.models import Customer, Role, Team, User
from ownership.models import EventKind, OwnershipEvent
from tests.conftest import login
from tests.factories import CustomerFactory, UserFactory


@pytest.fixture
def pool(global_pool_policy: Any) -> list[Customer]:
    return [
        CustomerFactory(value_tier=tier, province="江苏省")
        for tier in ("A", "A", "B", "B", "C", "D")
    ]


@pytest.mark.parametrize(
    "name", ["allocation_pool", "allocation_suggest", "team_overview", "request_queue"]
)
def test_reps_and_committee_cannot_open_manager_pages(
    client: Client, personas: dict[str, User], name: str
) -> None:
    for persona in ("rep", "committee"):
        login(client, personas[persona])
        assert client.get(reverse(name)).status_code == 403


def test_another_teams_manager_cannot_allocate_for_my_team(
    client: Client, team: Team, rep: User, other_manager: User, pool: list[Customer]
) -> None:
    login(client, other_manager)
    assert client.get(reverse("allocation_pool"), {"team": team.pk}).status_code == 404
    assert client.get(reverse("team_overview"), {"team": team.pk}).status_code == 404
    response = client.post(
        reverse("allocation_one"), {"team": team.pk, "customer": pool[0].pk, "rep": rep.pk}
    )
    assert response.status_code == 404
    response = client.post(
        reverse("allocation_bulk"),
        {"team": team.pk, "customer": [c.pk for c in pool], "rep": [rep.pk], "confirm": "on"},
    )
    assert response.status_code == 404
    assert Customer.objects.filter(owner__isnull=False).count() == 0


def test_pool_page_lists_and_links_to_suggestions(
    client: Client, manager: User, team: Team, pool: list[Customer]
) -> None:
    login(client, manager)
    body = client.get(reverse("allocation_pool")).content.decode()
    assert "从公海分配" in body and pool[0].display_name in body
    assert reverse("allocation_suggest") in body
    body = client.get(reverse("allocation_pool"), {"value_tier": "A"}).content.decode()
    assert pool[0].display_name in body and pool[5].display_name not in body


def test_suggestions_page_explains_and_allocates_one_with_htmx(
    client: Client, manager: User, rep: User, second_rep: User, team: Team, pool: list[Customer]
) -> None:
    login(client, manager)
    response = client.get(reverse("allocation_suggest"), {"customer": [c.pk for c in pool[:2]]})
    body = response.content.decode()
    assert response.status_code == 200
    assert "空余容量" in body and "近 90 天赢单" in body and "分配给 王小明" in body
    response = client.post(
        reverse("allocation_one"),
        {"team": team.pk, "customer": pool[0].pk, "rep": rep.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "已分配给" in response.content.decode()
    pool[0].refresh_from_db()
    assert pool[0].owner == rep
    assert OwnershipEvent.objects.get(customer=pool[0]).kind == EventKind.ALLOCATED
    # Again: a clear answer, no 500.
    response = client.post(
        reverse("allocation_one"),
        {"team": team.pk, "customer": pool[0].pk, "rep": second_rep.pk},
        HTTP_HX_REQUEST="true",
    )
    assert "已不在公海" in response.content.decode()


def test_suggestions_for_all_filtered(client: Client, manager: User, pool: list[Customer]) -> None:
    login(client, manager)
    body = client.get(
        reverse("allocation_suggest"), {"all": "1", "value_tier": "B"}
    ).content.decode()
    assert pool[2].display_name in body and pool[0].display_name not in body
    response = client.get(reverse("allocation_suggest"))
    assert response.status_code == 302


def test_bulk_preview_then_confirm(
    client: Client, manager: User, rep: User, second_rep: User, team: Team, pool: list[Customer]
) -> None:
    login(client, manager)
    data = {"team": team.pk, "customer": [c.pk for c in pool], "rep": [rep.pk, second_rep.pk]}
    response = client.post(reverse("allocation_bulk"), {**data, "action": "balance"})
    body = response.content.decode()
    assert response.status_code == 200 and "分配结果" in body and "确认分配" in body
    assert Customer.objects.filter(owner__isnull=False).count() == 0  # a preview only
    response = client.post(
        reverse("allocation_bulk"), {**data, "action": "balance", "confirm": "on"}, follow=True
    )
    assert "已分配 6 个客户" in response.content.decode()
    for person in (rep, second_rep):
        tiers = sorted(Customer.objects.filter(owner=person).values_list("value_tier", flat=True))
        assert tiers == ["A", "B", "C"] or tiers == ["A", "B", "D"]
    assert AllocationBatch.objects.get().allocated == 6


def test_distribute_preview_then_confirm(
    client: Client, manager: User, rep: User, second_rep: User, team: Team, pool: list[Customer]
) -> None:
    login(client, manager)
    data = {"team": team.pk, "customer": [c.pk for c in pool], "action": "distribute"}
    body = client.post(reverse("allocation_bulk"), data).content.decode()
    assert "自动分配" in body
    client.post(reverse("allocation_bulk"), {**data, "confirm": "on"})
    assert Customer.objects.filter(owner__isnull=True).count() == 0


def test_bulk_without_customers_or_reps_gets_a_message(
    client: Client, manager: User, team: Team, pool: list[Customer]
) -> None:
    login(client, manager)
    response = client.post(reverse("allocation_bulk"), {"team": team.pk}, follow=True)
    assert "请至少选择一个客户" in response.content.decode()
    response = client.post(
        reverse("allocation_bulk"), {"team": team.pk, "customer": [pool[0].pk]}, follow=True
    )
    assert "请至少选择一名销售" in response.content.decode()


def test_suggestion_page_in_constant_queries(
    client: Client,
    manager: User,
    rep: User,
    second_rep: User,
    team: Team,
    global_pool_policy: Any,
    django_assert_max_num_queries: Any,
) -> None:
    login(client, manager)
    counts = []
    customers: list[Customer] = []
    for target in (1, 20):
        while len(customers) < target:
            customers.append(CustomerFactory())
        with django_assert_max_num_queries(16) as captured:
            response = client.get(
                reverse("allocation_suggest"), {"customer": [c.pk for c in customers]}
            )
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


def test_team_overview_page(
    client: Client,
    manager: User,
    rep: User,
    second_rep: User,
    owned: Customer,
    django_assert_max_num_queries: Any,
) -> None:
    from allocation.services import request_offer

    request_offer(actor=rep, customer=owned, to_rep=second_rep, reason="x")
    login(client, manager)
    with django_assert_max_num_queries(16):
        response = client.get(reverse("team_overview"))
    body = response.content.decode()
    assert "团队概况" in body and str(rep) in body and "1 / 50" in body
    assert f"{reverse('customer_list')}?owner={rep.pk}" in body
    assert reverse("allocation_pool") in body and reverse("request_queue") in body
    assert ReassignmentRequest.objects.count() == 1


def test_manager_home_and_navigation_link_the_pages(client: Client, manager: User) -> None:
    login(client, manager)
    body = client.get(reverse("home")).content.decode()
    for name in ("request_queue", "allocation_pool", "team_overview"):
        assert reverse(name) in body


def test_admin_distribute_action(
    client: Client, crm_admin: User, team: Team, rep: User, pool: list[Customer]
) -> None:
    login(client, crm_admin)
    url = reverse("admin:allocation_poolcustomer_changelist")
    assert client.get(url).status_code == 200
    ids = [str(c.pk) for c in pool]
    response = client.post(url, {"action": "distribute", "_selected_action": ids})
    assert response.status_code == 200 and "华东销售部" in response.content.decode()
    response = client.post(
        url,
        {"action": "distribute", "_selected_action": ids, "team": team.pk, "apply": "1"},
        follow=True,
    )
    assert response.status_code == 200
    assert Customer.objects.filter(owner=rep).count() == 6
    assert set(OwnershipEvent.objects.filter(customer__in=pool).values_list("kind", flat=True)) == {
        EventKind.ALLOCATED
    }


def test_admin_pool_is_for_administrators_only(client: Client, manager: User) -> None:
    outsider = UserFactory(username="viewer", role=Role.COMMITTEE)
    login(client, outsider)
    response = client.get(reverse("admin:allocation_poolcustomer_changelist"))
    assert response.status_code in (302, 403)


def test_suggestion_rows_escape_every_text(
    client: Client, manager: User, rep: User, global_pool_policy: Any
) -> None:
    customer = CustomerFactory(display_name="<script>alert(1)</script>华瑞科技有限公司")
    login(client, manager)
    body = client.get(reverse("allocation_suggest"), {"customer": [customer.pk]}).content.decode()
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert 'name="csrfmiddlewaretoken"' in body
