"""The three out-of-territory policies end to end with the Django client: the registration
page, the rep's outcome page, the manager's queue, approval and rejection, the ledger and
pool visibility afterwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from allocation.models import Registration, RegistrationOutcome
from crm.models import Customer, Notification, Team, User
from ownership.models import EventKind, OwnershipEvent, PoolPolicy, RuleSet
from tests.allocation.territory_setup import ADDRESS
from tests.conftest import login
from tests.factories import CustomerFactory

SECRET_PHONE = "13912345678"
SECRET_EVIDENCE = "老客户介绍的秘密线索"


def _register(client: Client, rep: User, name: str, where: str) -> Any:
    client.logout()
    login(client, rep)
    return client.post(
        reverse("register"),
        {
            "display_name": name,
            "address": ADDRESS[where],
            "source": "referral",
            "first_contact_name": "张总",
            "first_contact_phone": SECRET_PHONE,
            "evidence": SECRET_EVIDENCE,
        },
        follow=True,
    )


def _as(client: Client, user: User) -> Client:
    client.logout()
    return login(client, user)


def test_approval_end_to_end(
    client: Client,
    rep: User,
    other_rep: User,
    other_manager: User,
    territories: RuleSet,
) -> None:
    response = _register(client, rep, "北京星河智能科技有限公司", "beijing")
    registration = Registration.objects.get(outcome=RegistrationOutcome.PENDING)
    assert response.redirect_chain[-1][0] == reverse("registration_outcome", args=[registration.pk])
    body = response.content.decode()
    assert "已提交：等待审批" in body
    assert "位于区域「华北」，由 华北销售部 负责" in body
    assert "7 天内" in body
    customer = Customer.objects.get()
    assert customer.owner is None
    # The manager finds it from the home page and decides in the queue.
    home = _as(client, other_manager).get(reverse("home")).content.decode()
    assert reverse("registration_queue") in home and "待审批的报备" in home
    queue = client.get(reverse("registration_queue")).content.decode()
    assert "北京星河智能科技有限公司" in queue and "王小明" in queue
    assert "已等待 0 天" in queue
    response = client.post(
        reverse("registration_decide", args=[registration.pk]),
        {"action": "approve", "comment": "同意"},
        follow=True,
    )
    assert "已批准" in response.content.decode()
    customer.refresh_from_db()
    assert customer.owner == rep
    event = OwnershipEvent.objects.get(customer=customer)
    assert (event.kind, event.actor, event.to_owner) == (EventKind.REGISTERED, other_manager, rep)
    # The rep is told and sees the outcome; the customer is theirs, in no pool.
    told = Notification.objects.get(recipient=rep, kind="registration_decided")
    assert told.url == reverse("registration_outcome", args=[registration.pk])
    page = _as(client, rep).get(told.url).content.decode()
    assert "已批准：客户归您所有" in page
    assert (
        "北京星河智能科技有限公司"
        not in _as(client, other_rep).get(reverse("pool")).content.decode()
    )


def test_rejection_end_to_end_by_htmx(
    client: Client,
    rep: User,
    other_rep: User,
    other_manager: User,
    territories: RuleSet,
) -> None:
    _register(client, rep, "北京星河智能科技有限公司", "beijing")
    registration = Registration.objects.get(outcome=RegistrationOutcome.PENDING)
    _as(client, other_manager)
    url = reverse("registration_decide", args=[registration.pk])
    # No reason: refused in the row, nothing changes.
    row = client.post(url, {"action": "reject", "comment": ""}, HTTP_HX_REQUEST="true")
    assert "请说明驳回该报备的原因" in row.content.decode()
    assert Registration.objects.get(pk=registration.pk).outcome == RegistrationOutcome.PENDING
    row = client.post(
        url, {"action": "reject", "comment": "本团队已在跟进"}, HTTP_HX_REQUEST="true"
    )
    body = row.content.decode()
    assert body.startswith('<tr id="registration-')
    assert "已驳回" in body
    customer = Customer.objects.get()
    event = OwnershipEvent.objects.get(customer=customer)
    assert event.kind == EventKind.RELEASED and event.actor == other_manager
    assert "本团队已在跟进" in event.reason
    # In the north team's pool now: its rep sees it, the registering rep does not.
    assert customer.display_name in _as(client, other_rep).get(reverse("pool")).content.decode()
    assert customer.display_name not in _as(client, rep).get(reverse("pool")).content.decode()
    page = client.get(reverse("registration_outcome", args=[registration.pk])).content.decode()
    assert "驳回了您对 北京星河智能科技有限公司 的报备" in page and "本团队已在跟进" in page


def test_route_end_to_end(client: Client, rep: User, other_rep: User, territories: RuleSet) -> None:
    response = _register(client, rep, "天津和平港口物流有限公司", "tianjin")
    body = response.content.decode()
    assert "已报备至负责团队的公海" in body
    assert "位于区域「天津」，由 华北销售部 负责" in body
    assert "您不能成为它的负责人" in body
    customer = Customer.objects.get()
    assert customer.owner is None
    assert OwnershipEvent.objects.get(customer=customer).kind == EventKind.RELEASED
    assert customer.display_name in _as(client, other_rep).get(reverse("pool")).content.decode()


def test_allow_end_to_end(client: Client, rep: User, territories: RuleSet) -> None:
    response = _register(client, rep, "深圳南山云端软件有限公司", "guangdong")
    customer = Customer.objects.get()
    assert customer.owner == rep
    assert response.redirect_chain[-1][0] == reverse("customer_ownership", args=[customer.pk])


def test_the_pending_hold_on_every_page(
    client: Client,
    rep: User,
    second_rep: User,
    other_rep: User,
    other_manager: User,
    other_team: Team,
    territories: RuleSet,
) -> None:
    _register(client, rep, "北京星河智能科技有限公司", "beijing")
    customer = Customer.objects.get()
    # A second registration of the company: who, which team, when, awaiting approval.
    body = _register(client, second_rep, "星河智能科技（北京）有限公司", "beijing").content.decode()
    assert "撞单" in body and "王小明" in body and "华东销售部" in body
    assert timezone.localdate().isoformat() in body and "等待审批" in body
    for secret in (SECRET_PHONE, SECRET_EVIDENCE, "张总", "中关村"):
        assert secret not in body
    assert Registration.objects.filter(rep=second_rep, outcome="awaiting").count() == 1
    # The rep who registered it sees their own pending registration.
    body = _register(client, rep, "北京星河智能科技有限公司", "beijing").content.decode()
    assert "您的报备正在等待审批" in body
    # Not in any pool page; a claim and an allocation are refused.
    for user in (other_rep, second_rep):
        assert customer.display_name not in _as(client, user).get(reverse("pool")).content.decode()
    response = _as(client, other_rep).post(
        reverse("pool_claim"), {"customer": [str(customer.pk)]}, follow=True
    )
    assert "等待负责团队经理的审批" in response.content.decode()
    _as(client, other_manager)
    page = client.get(reverse("allocation_pool"), {"team": other_team.pk}).content.decode()
    assert customer.display_name not in page
    client.post(
        reverse("allocation_one"),
        {"team": other_team.pk, "customer": customer.pk, "rep": other_rep.pk},
    )
    customer.refresh_from_db()
    assert customer.owner is None
    assert not OwnershipEvent.objects.filter(customer=customer).exists()


def test_approval_at_the_cap_is_refused_with_a_clear_message(
    client: Client,
    rep: User,
    other_manager: User,
    global_pool_policy: PoolPolicy,
    territories: RuleSet,
) -> None:
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=2, warning_days=1)
    CustomerFactory(owner=rep, display_name="上海已有一号贸易有限公司")
    _register(client, rep, "北京星河智能科技有限公司", "beijing")
    registration = Registration.objects.get(outcome=RegistrationOutcome.PENDING)
    CustomerFactory(owner=rep, display_name="上海已有二号贸易有限公司")
    _as(client, other_manager)
    queue = client.get(reverse("registration_queue")).content.decode()
    assert "持有 2 / 2" in queue and "已达持有上限" in queue
    response = client.post(
        reverse("registration_decide", args=[registration.pk]),
        {"action": "approve"},
        follow=True,
    )
    assert "未批准：王小明 已拥有 2 个客户，持有上限为 2" in response.content.decode()
    registration.refresh_from_db()
    assert registration.outcome == RegistrationOutcome.PENDING
    assert Customer.objects.get(pk=registration.customer_id).owner is None


def test_who_reaches_the_queue_and_the_decision(
    client: Client,
    rep: User,
    manager: User,
    other_manager: User,
    crm_admin: User,
    territories: RuleSet,
) -> None:
    _register(client, rep, "北京星河智能科技有限公司", "beijing")
    registration = Registration.objects.get(outcome=RegistrationOutcome.PENDING)
    decide = reverse("registration_decide", args=[registration.pk])
    outcome = reverse("registration_outcome", args=[registration.pk])
    assert _as(client, rep).get(reverse("registration_queue")).status_code == 403
    assert client.post(decide, {"action": "approve"}).status_code == 403
    # The rep's own team manager is not responsible for 北京: an empty queue and a 404.
    _as(client, manager)
    assert (
        "北京星河智能科技有限公司" not in client.get(reverse("registration_queue")).content.decode()
    )
    assert client.post(decide, {"action": "approve"}).status_code == 404
    assert client.get(outcome).status_code == 403
    assert (
        "北京星河智能科技有限公司"
        in _as(client, crm_admin).get(reverse("registration_queue")).content.decode()
    )
    assert _as(client, other_manager).get(outcome).status_code == 403
    assert Registration.objects.get(pk=registration.pk).outcome == RegistrationOutcome.PENDING


def test_the_queue_pages_and_keeps_its_query_count(
    client: Client,
    rep: User,
    other_manager: User,
    django_assert_max_num_queries: Any,
    territories: RuleSet,
) -> None:
    from allocation.services import RegistrationForm, registration_submit
    from tests.factories import UserFactory

    reps = [rep] + [
        UserFactory(username=f"east{n}", role="rep", team=rep.team) for n in range(1, 4)
    ]
    _as(client, other_manager)
    counts = []
    made = 0
    for target in (1, 8, 30):
        while made < target:
            registration_submit(
                actor=reps[made % len(reps)],
                form=RegistrationForm(
                    display_name=f"北京第{made + 1:03d}号星河科技有限公司",
                    address=ADDRESS["beijing"],
                    credit_code="",
                ),
                confirmed_distinct=list(Customer.objects.values_list("pk", flat=True)),
            )
            made += 1
        with django_assert_max_num_queries(8) as captured:
            response = client.get(reverse("registration_queue"))
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1] == counts[2], counts
    assert Registration.objects.filter(outcome="pending").count() == 30
    first = response.content.decode()
    assert "北京第001号星河科技有限公司" in first and "北京第030号星河科技有限公司" not in first
    second = client.get(reverse("registration_queue"), {"page": 2}).content.decode()
    assert "北京第030号星河科技有限公司" in second


@pytest.mark.parametrize("days, overdue", [(3, False), (8, True)])
def test_overdue_registrations_are_marked(
    client: Client,
    rep: User,
    other_manager: User,
    territories: RuleSet,
    days: int,
    overdue: bool,
) -> None:
    _register(client, rep, "北京星河智能科技有限公司", "beijing")
    Registration.objects.filter(outcome="pending").update(
        submitted_at=timezone.now() - timedelta(days=days)
    )
    queue = _as(client, other_manager).get(reverse("registration_queue")).content.decode()
    assert ("已超期" in queue) is overdue
    assert f"已等待 {days} 天" in queue
