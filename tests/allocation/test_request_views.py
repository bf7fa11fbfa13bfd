"""Reassignment request pages with the Django client: who may see, ask, approve, withdraw."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from allocation import services
from allocation.models import ReassignmentRequest, Registration, RequestState
from allocation.services import RegistrationForm, registration_submit
from crm import services as crm_services
from crm.models import Customer, User
from ownership.services import customer_share
from tests.conftest import login
from tests.factories import CustomerFactory

SECRETS = ["机密联系人", "13912345678", "机密备注内容", "知春路甲48号", "010-62345678"]


@pytest.fixture
def secret_customer(rep: User, global_pool_policy: Any) -> Customer:
    result = registration_submit(
        actor=rep,
        form=RegistrationForm(
            display_name="北京机密科技有限公司",
            address="北京市海淀区知春路甲48号",
            phone="010-62345678",
            first_contact_name="机密联系人",
            first_contact_phone="13912345678",
            evidence="老客户介绍",
        ),
    )
    assert result.customer is not None
    crm_services.customer_update(actor=rep, customer=result.customer, notes="机密备注内容")
    return result.customer


def _offer(rep: User, customer: Customer, to: User) -> ReassignmentRequest:
    return services.request_offer(actor=rep, customer=customer, to_rep=to, reason="行业更匹配")


def _assert_no_secret(body: str) -> None:
    for secret in SECRETS:
        assert secret not in body, secret


# --- Asking from the collision page -------------------------------------------------------


def test_collision_page_offers_request_transfer_and_the_form_reveals_nothing(
    client: Client, rep: User, other_rep: User, secret_customer: Customer, manager: User
) -> None:
    login(client, other_rep)
    response = client.post(
        reverse("register"), {"display_name": "机密科技(北京)有限公司", "source": "other"}
    )
    body = response.content.decode()
    assert "撞单" in body and "申请转移" in body
    registration = Registration.objects.get(rep=other_rep, outcome="collision")
    url = reverse("registration_transfer", args=[registration.pk])
    assert url in body
    page = client.get(url).content.decode()
    assert "北京机密科技有限公司" in page and str(rep) in page and "保护期截止" in page
    _assert_no_secret(page)
    response = client.post(url, {"reason": "我先联系的客户", "evidence": ""})
    assert response.status_code == 200 and "必填" in response.content.decode()
    response = client.post(url, {"reason": "我先联系的客户", "evidence": "11 月 1 日电话"})
    transfer = ReassignmentRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "request_detail", args=[transfer.pk]
    )
    assert (transfer.kind, transfer.to_rep, transfer.from_owner) == ("ask", other_rep, rep)
    detail = client.get(response["Location"]).content.decode()
    assert "北京机密科技有限公司" in detail and "待审批" in detail
    assert reverse("customer_detail", args=[secret_customer.pk]) not in detail
    _assert_no_secret(detail)
    # The asking rep still cannot open the customer.
    assert client.get(reverse("customer_detail", args=[secret_customer.pk])).status_code == 404


def test_someone_elses_registration_cannot_be_used_to_ask(
    client: Client, rep: User, second_rep: User, other_rep: User, secret_customer: Customer
) -> None:
    registration_submit(actor=other_rep, form=RegistrationForm(display_name="机密科技有限公司"))
    registration = Registration.objects.get(rep=other_rep, outcome="collision")
    own = Registration.objects.get(rep=rep)
    login(client, second_rep)
    url = reverse("registration_transfer", args=[registration.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"reason": "x", "evidence": "y"}).status_code == 404
    login(client, rep)
    # A registration that was not a collision gives no right to ask either.
    assert client.get(reverse("registration_transfer", args=[own.pk])).status_code == 404
    assert not ReassignmentRequest.objects.exists()


# --- The customer page button -------------------------------------------------------------


def test_customer_page_buttons_by_role(
    client: Client, rep: User, second_rep: User, manager: User, secret_customer: Customer
) -> None:
    url = reverse("customer_detail", args=[secret_customer.pk])
    transfer_url = reverse("customer_transfer", args=[secret_customer.pk])
    login(client, rep)
    body = client.get(url).content.decode()
    assert "转让给同事" in body and "申请转移" not in body
    # A colleague without access sees nothing at all; with a share, the button.
    login(client, second_rep)
    assert client.get(url).status_code == 404
    assert client.get(transfer_url).status_code == 404
    customer_share(actor=rep, customer=secret_customer, colleague=second_rep)
    body = client.get(url).content.decode()
    assert "申请转移" in body and transfer_url in body
    response = client.post(transfer_url, {"reason": "客户指定我服务", "evidence": "客户邮件"})
    assert response.status_code == 302
    assert ReassignmentRequest.objects.get().kind == "ask"
    login(client, manager)
    assert "调整负责人" in client.get(url).content.decode()


def test_owner_offers_from_the_customer_page(
    client: Client, rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    login(client, rep)
    url = reverse("customer_transfer", args=[owned.pk])
    page = client.get(url).content.decode()
    assert "转让给同事" in page and str(second_rep) in page
    response = client.post(url, {"to_rep": second_rep.pk, "reason": ""})
    assert response.status_code == 200 and "必填" in response.content.decode()
    response = client.post(url, {"to_rep": second_rep.pk, "reason": "他负责该行业"})
    assert response.status_code == 302
    transfer = ReassignmentRequest.objects.get()
    assert transfer.kind == "offer" and transfer.state == "pending"
    # A second request for the same customer gets a clear refusal, not a 500.
    response = client.post(url, {"to_rep": second_rep.pk, "reason": "再来一次"})
    assert response.status_code == 200 and "未结的转移申请" in response.content.decode()


def test_manager_moves_within_the_team_at_once(
    client: Client, rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    login(client, manager)
    response = client.post(
        reverse("customer_transfer", args=[owned.pk]),
        {"to_rep": second_rep.pk, "reason": "平衡负荷"},
        follow=True,
    )
    assert "完成" in response.content.decode()
    owned.refresh_from_db()
    assert owned.owner == second_rep


# --- Approving -----------------------------------------------------------------------------


def test_a_rep_cannot_approve(client: Client, rep: User, second_rep: User, owned: Customer) -> None:
    transfer = _offer(rep, owned, second_rep)
    for person in (rep, second_rep):
        login(client, person)
        assert client.get(reverse("request_detail", args=[transfer.pk])).status_code == 200
        response = client.post(reverse("request_decide", args=[transfer.pk]), {"action": "approve"})
        assert response.status_code == 403
        assert client.get(reverse("request_queue")).status_code == 403
        assert (
            client.post(reverse("request_bulk_approve"), {"request": [transfer.pk]}).status_code
            == 403
        )
    transfer.refresh_from_db()
    assert transfer.state == RequestState.PENDING


def test_a_manager_of_another_team_can_neither_see_nor_approve(
    client: Client, rep: User, second_rep: User, owned: Customer, other_manager: User
) -> None:
    transfer = _offer(rep, owned, second_rep)
    login(client, other_manager)
    assert client.get(reverse("request_detail", args=[transfer.pk])).status_code == 404
    response = client.post(reverse("request_decide", args=[transfer.pk]), {"action": "approve"})
    assert response.status_code == 404
    queue = client.get(reverse("request_queue")).content.decode()
    assert owned.display_name not in queue
    client.post(reverse("request_bulk_approve"), {"request": [transfer.pk]})
    transfer.refresh_from_db()
    assert transfer.state == RequestState.PENDING and transfer.source_approved_at is None


def test_the_old_owner_cannot_open_the_customer_on_the_very_next_request(
    client: Client, rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    transfer = _offer(rep, owned, second_rep)
    owner_client = login(Client(), rep)
    url = reverse("customer_detail", args=[owned.pk])
    assert owner_client.get(url).status_code == 200
    login(client, manager)
    response = client.post(
        reverse("request_decide", args=[transfer.pk]), {"action": "approve", "comment": "同意"}
    )
    assert response.status_code == 302
    assert owner_client.get(url).status_code == 404
    assert login(Client(), second_rep).get(url).status_code == 200


def test_queue_approves_in_place_with_htmx(
    client: Client, rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    transfer = _offer(rep, owned, second_rep)
    login(client, manager)
    queue = client.get(reverse("request_queue")).content.decode()
    assert owned.display_name in queue and 'hx-post="' in queue
    response = client.post(
        reverse("request_decide", args=[transfer.pk]),
        {"action": "reject", "comment": ""},
        HTTP_HX_REQUEST="true",
    )
    row = response.content.decode()
    assert response.status_code == 200 and row.lstrip().startswith("<tr")
    assert "请说明驳回理由" in row
    response = client.post(
        reverse("request_decide", args=[transfer.pk]),
        {"action": "approve", "comment": "同意"},
        HTTP_HX_REQUEST="true",
    )
    assert "已批准" in response.content.decode()
    owned.refresh_from_db()
    assert owned.owner == second_rep


def test_bulk_approve_from_the_queue(
    client: Client, rep: User, second_rep: User, manager: User, global_pool_policy: Any
) -> None:
    transfers = [_offer(rep, CustomerFactory(owner=rep), second_rep) for _ in range(3)]
    login(client, manager)
    response = client.post(
        reverse("request_bulk_approve"),
        {"request": [t.pk for t in transfers], "comment": "批量同意"},
        follow=True,
    )
    assert response.status_code == 200
    assert Customer.objects.filter(owner=second_rep).count() == 3
    assert set(ReassignmentRequest.objects.values_list("state", flat=True)) == {"applied"}
    response = client.post(reverse("request_bulk_approve"), {}, follow=True)
    assert "请至少选择一个要批准的申请" in response.content.decode()


def test_withdraw_only_by_the_requester(
    client: Client, rep: User, second_rep: User, owned: Customer
) -> None:
    transfer = _offer(rep, owned, second_rep)
    login(client, second_rep)
    assert client.post(reverse("request_withdraw", args=[transfer.pk])).status_code == 403
    login(client, rep)
    response = client.post(reverse("request_withdraw", args=[transfer.pk]), follow=True)
    assert "申请已撤回" in response.content.decode()
    transfer.refresh_from_db()
    assert transfer.state == "withdrawn"
    detail = client.get(reverse("request_detail", args=[transfer.pk])).content.decode()
    assert "已撤回" in detail and "已提交" in detail  # the history


def test_cap_refusal_is_shown_not_a_500(
    client: Client,
    rep: User,
    second_rep: User,
    manager: User,
    owned: Customer,
    global_pool_policy: Any,
) -> None:
    from ownership.models import PoolPolicy

    transfer = _offer(rep, owned, second_rep)
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=1, warning_days=1)
    CustomerFactory(owner=second_rep)
    login(client, manager)
    response = client.post(
        reverse("request_decide", args=[transfer.pk]), {"action": "approve"}, follow=True
    )
    assert response.status_code == 200
    assert "持有上限" in response.content.decode()


@pytest.mark.parametrize("box", ["sent", "received"])
def test_my_requests_lists_in_constant_queries(
    client: Client,
    rep: User,
    second_rep: User,
    global_pool_policy: Any,
    box: str,
    django_assert_max_num_queries: Any,
) -> None:
    login(client, rep if box == "sent" else second_rep)
    counts = []
    for target in (1, 6):
        while ReassignmentRequest.objects.count() < target:
            _offer(rep, CustomerFactory(owner=rep), second_rep)
        with django_assert_max_num_queries(12) as captured:
            response = client.get(reverse("request_list"), {"box": box})
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


def test_queue_in_constant_queries(
    client: Client,
    rep: User,
    second_rep: User,
    manager: User,
    global_pool_policy: Any,
    django_assert_max_num_queries: Any,
) -> None:
    login(client, manager)
    counts = []
    for target in (1, 6):
        while ReassignmentRequest.objects.count() < target:
            _offer(rep, CustomerFactory(owner=rep), second_rep)
        with django_assert_max_num_queries(12) as captured:
            assert client.get(reverse("request_queue")).status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]
