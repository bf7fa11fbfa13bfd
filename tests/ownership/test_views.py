"""The ownership explanation page: timeline, time travel, clock; scoped like the customer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from allocation.services import RegistrationForm, registration_submit
from crm.models import User
from ownership.services import ownership_release
from tests.conftest import login


def test_owner_sees_timeline_and_clock(client: Client, rep: User) -> None:
    result = registration_submit(
        actor=rep, form=RegistrationForm(display_name="南京智联物流有限公司", evidence="电话陌拜")
    )
    assert result.customer is not None
    login(client, rep)
    body = client.get(reverse("customer_ownership", args=[result.customer.pk])).content.decode()
    assert "报备" in body and "电话陌拜" in body
    assert "退回公海" in body
    assert "全局默认" in body


def test_time_travel_answers_who_owned_it_on_a_date(client: Client, rep: User) -> None:
    result = registration_submit(
        actor=rep, form=RegistrationForm(display_name="南京智联物流有限公司")
    )
    assert result.customer is not None
    login(client, rep)
    url = reverse("customer_ownership", args=[result.customer.pk])
    today = timezone.localdate().isoformat()
    assert str(rep) in client.get(url, {"on": today}).content.decode()
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert "还没有人报备" in client.get(url, {"on": yesterday}).content.decode()
    assert "YYYY-MM-DD" in client.get(url, {"on": "next tuesday"}).content.decode()


def test_previous_owner_is_refused_on_the_very_next_request(
    client: Client, rep: User, manager: User
) -> None:
    result = registration_submit(
        actor=rep, form=RegistrationForm(display_name="南京智联物流有限公司")
    )
    assert result.customer is not None
    login(client, rep)
    url = reverse("customer_ownership", args=[result.customer.pk])
    assert client.get(url).status_code == 200
    ownership_release(actor=rep, customer=result.customer, reason="无需求")
    assert client.get(url).status_code == 404


def test_other_rep_gets_404(client: Client, rep: User, second_rep: User) -> None:
    result = registration_submit(
        actor=rep, form=RegistrationForm(display_name="南京智联物流有限公司")
    )
    assert result.customer is not None
    login(client, second_rep)
    assert client.get(reverse("customer_ownership", args=[result.customer.pk])).status_code == 404


def test_owner_shares_read_access_and_the_share_ends_with_the_ownership(
    client: Client, rep: User, second_rep: User
) -> None:
    result = registration_submit(
        actor=rep, form=RegistrationForm(display_name="南京智联物流有限公司")
    )
    customer = result.customer
    assert customer is not None
    detail = reverse("customer_detail", args=[customer.pk])
    login(client, second_rep)
    assert client.get(detail).status_code == 404
    owner_client = Client()
    login(owner_client, rep)
    response = owner_client.post(
        reverse("customer_sharing", args=[customer.pk]),
        {"colleague": second_rep.pk, "action": "share"},
    )
    assert response.status_code == 302
    assert client.get(detail).status_code == 200
    # Reading is all a share gives.
    assert client.get(reverse("customer_edit", args=[customer.pk])).status_code == 403
    ownership_release(actor=rep, customer=customer, reason="无需求")
    assert client.get(detail).status_code == 404


def test_only_the_owner_manages_sharing(client: Client, rep: User, second_rep: User) -> None:
    result = registration_submit(
        actor=rep, form=RegistrationForm(display_name="南京智联物流有限公司")
    )
    assert result.customer is not None
    login(client, second_rep)
    url = reverse("customer_sharing", args=[result.customer.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"colleague": second_rep.pk, "action": "share"}).status_code == 404


def test_the_page_names_the_territory_and_which_level_sets_the_clock(
    client: Client, rep: User, crm_admin: User, global_pool_policy: object
) -> None:
    from ownership.models import PoolPolicy, RuleSet, Territory
    from ownership.territories.services import rule_set_activate

    rule_set = RuleSet.objects.create(name="区域")
    east = Territory.objects.create(rule_set=rule_set, name="华东大区", division_codes=["31"])
    assert rep.team is not None
    east.teams.set([rep.team])
    shanghai = Territory.objects.create(
        rule_set=rule_set, name="上海市", parent=east, division_codes=["31"]
    )
    PoolPolicy.objects.create(
        territory=shanghai, days_without_follow_up=12, days_to_reach_50=30, warning_days=3
    )
    rule_set_activate(actor=crm_admin, rule_set=rule_set)
    result = registration_submit(
        actor=rep,
        form=RegistrationForm(
            display_name="上海浦江物流有限公司", address="上海市浦东新区世纪大道1号"
        ),
    )
    assert result.customer is not None
    login(client, rep)
    body = client.get(reverse("customer_ownership", args=[result.customer.pk])).content.decode()
    assert "华东大区 → 上海市" in body
    assert "区域 上海市" in body  # the clock's parameter comes from the territory's policy
    assert "12" in body


def test_the_ledger_names_everyone_and_fetches_only_people_not_yet_loaded(
    client: Client, rep: User, second_rep: User, django_assert_num_queries: Any
) -> None:
    from ownership.selectors import timeline_for
    from ownership.services import ownership_claim

    result = registration_submit(
        actor=rep, form=RegistrationForm(display_name="南京智联物流有限公司")
    )
    customer = result.customer
    assert customer is not None
    ownership_release(actor=rep, customer=customer, reason="无需求")
    ownership_claim(actor=second_rep, customer=customer)
    with django_assert_num_queries(1):  # the events: everyone they name is known
        events = timeline_for(customer, known=[rep, second_rep])
    with django_assert_num_queries(2):  # the events, then the one person not known
        again = timeline_for(customer, known=[second_rep])
    named = [(e.from_owner, e.to_owner, e.actor) for e in events]
    assert named == [(e.from_owner, e.to_owner, e.actor) for e in again]
    assert named == [(None, rep, rep), (rep, None, rep), (None, second_rep, second_rep)]
    login(client, second_rep)
    body = client.get(reverse("customer_ownership", args=[customer.pk])).content.decode()
    assert body.count(str(rep)) >= 3 and str(second_rep) in body
