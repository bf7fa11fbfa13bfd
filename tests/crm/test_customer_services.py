"""Customer services: entry with the duplicate check, edits that keep identity unique,
contacts and follow-ups. Every bad input gets a clear Chinese message and saves nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm import services
from crm.models import Contact, Customer, FollowUp, FunnelStage, PossibleDuplicate, User
from tests.conftest import login
from tests.factories import CustomerFactory, credit_code_for

pytestmark = pytest.mark.django_db


# --- customer_create ---------------------------------------------------------------------


def test_create_sets_identity_keys(rep: User) -> None:
    customer = services.customer_create(
        actor=rep, display_name="  字节跳动科技(北京)有限公司 ", credit_code=credit_code_for(7)
    )
    assert customer.display_name == "字节跳动科技(北京)有限公司"
    assert customer.name_key == "字节跳动科技"
    assert customer.credit_code == credit_code_for(7)


def test_create_hard_duplicate_is_refused(rep: User, second_rep: User) -> None:
    existing = CustomerFactory.create(display_name="杭州云杉数据有限公司", owner=rep)
    with pytest.raises(services.DuplicateCustomer) as caught:
        services.customer_create(actor=second_rep, display_name="云杉数据（杭州）有限公司")
    assert caught.value.matches[0].customer == existing
    assert "已存在" in caught.value.message
    assert Customer.objects.count() == 1


def test_create_soft_duplicate_needs_confirmation(rep: User, second_rep: User) -> None:
    existing = CustomerFactory.create(display_name="杭州云杉鹿角数据有限公司", owner=rep)
    with pytest.raises(services.PossibleDuplicate) as caught:
        services.customer_create(actor=second_rep, display_name="杭州云杉鹿甲数据有限公司")
    assert [m.customer for m in caught.value.matches] == [existing]
    assert Customer.objects.count() == 1


def test_create_confirmed_distinct_is_recorded_as_evidence(rep: User, second_rep: User) -> None:
    existing = CustomerFactory.create(display_name="杭州云杉鹿角数据有限公司", owner=rep)
    created = services.customer_create(
        actor=second_rep,
        display_name="杭州云杉鹿甲数据有限公司",
        confirmed_distinct=[existing.pk],
    )
    evidence = PossibleDuplicate.objects.get(customer=created)
    assert evidence.candidate == existing
    assert evidence.confirmed_distinct_by == second_rep
    assert evidence.reasons
    assert created.needs_duplicate_review is False


def test_name_of_201_characters_is_refused(rep: User) -> None:
    with pytest.raises(services.CustomerInvalid) as caught:
        services.customer_create(actor=rep, display_name="字" * 201)
    assert "201" in caught.value.errors["display_name"]
    assert "200" in caught.value.errors["display_name"]
    assert not Customer.objects.exists()


def test_name_of_200_characters_is_accepted(rep: User) -> None:
    assert len(services.customer_create(actor=rep, display_name="字" * 200).display_name) == 200


def test_empty_name_is_refused_in_chinese(rep: User) -> None:
    with pytest.raises(services.CustomerInvalid) as caught:
        services.customer_create(actor=rep, display_name="   ")
    assert caught.value.errors["display_name"] == "请输入公司名称。"


def test_bad_credit_code_check_character_is_explained(rep: User) -> None:
    good = credit_code_for(3)
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(services.CustomerInvalid) as caught:
        services.customer_create(actor=rep, display_name="某某科技", credit_code=bad)
    assert "校验位（最后一位）错误" in caught.value.errors["credit_code"]


def test_credit_code_of_wrong_length_says_how_long(rep: User) -> None:
    with pytest.raises(services.CustomerInvalid) as caught:
        services.customer_create(actor=rep, display_name="某某科技", credit_code="91110108")
    assert "18" in caught.value.errors["credit_code"]


def test_markup_in_names_is_stored_as_text_and_escaped_on_pages(client: Client, rep: User) -> None:
    name = '<script>alert("x")</script>红杉科技'
    customer = CustomerFactory.create(display_name=name, owner=rep)
    assert Customer.objects.get(pk=customer.pk).display_name == name
    login(client, rep)
    for url in (reverse("customer_detail", args=[customer.pk]), reverse("customer_list")):
        body = client.get(url).content.decode()
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;红杉科技" in body
        assert '<script>alert("x")' not in body


# --- customer_update ---------------------------------------------------------------------


def test_update_keeps_names_unique(rep: User) -> None:
    CustomerFactory.create(display_name="杭州云杉数据有限公司", owner=rep)
    other = CustomerFactory.create(display_name="苏州青柠网络科技有限公司", owner=rep)
    with pytest.raises(services.DuplicateCustomer):
        services.customer_update(actor=rep, customer=other, display_name="云杉数据有限公司")
    other.refresh_from_db()
    assert other.display_name == "苏州青柠网络科技有限公司"


def test_update_keeps_credit_codes_unique(rep: User) -> None:
    CustomerFactory.create(
        display_name="杭州云杉数据有限公司", credit_code=credit_code_for(11), owner=rep
    )
    other = CustomerFactory.create(display_name="苏州青柠网络科技有限公司", owner=rep)
    with pytest.raises(services.DuplicateCustomer):
        services.customer_update(actor=rep, customer=other, credit_code=credit_code_for(11))
    other.refresh_from_db()
    assert other.credit_code == ""


def test_update_may_keep_its_own_keys(rep: User) -> None:
    customer = CustomerFactory.create(
        display_name="杭州云杉数据有限公司", credit_code=credit_code_for(12), owner=rep
    )
    updated = services.customer_update(
        actor=rep, customer=customer, display_name="云杉数据(杭州)有限公司", notes="改名"
    )
    assert updated.name_key == customer.name_key
    assert updated.notes == "改名"


def test_update_recomputes_the_division_from_a_new_address(rep: User) -> None:
    customer = CustomerFactory.create(display_name="杭州云杉数据有限公司", owner=rep)
    updated = services.customer_update(
        actor=rep, customer=customer, address="江苏省苏州市工业园区星湖街328号"
    )
    assert (updated.province, updated.city, updated.division_code) == ("江苏省", "苏州市", "3205")


# --- contacts ----------------------------------------------------------------------------


def test_contact_mobile_is_normalised(rep: User) -> None:
    customer = CustomerFactory.create(owner=rep)
    contact = services.contact_add(
        actor=rep, customer=customer, name=" 张三 ", mobile="138-0013-8000"
    )
    assert (contact.name, contact.mobile) == ("张三", "+8613800138000")


@pytest.mark.parametrize(
    ("mobile", "expected"),
    [("12345", "不是有效的电话号码"), ("010-62345678", "不是手机号码")],
)
def test_contact_mobile_must_be_a_mobile_number(rep: User, mobile: str, expected: str) -> None:
    customer = CustomerFactory.create(owner=rep)
    with pytest.raises(services.CustomerInvalid) as caught:
        services.contact_add(actor=rep, customer=customer, name="张三", mobile=mobile)
    assert expected in caught.value.errors["mobile"]
    assert not Contact.objects.exists()


# --- follow-ups --------------------------------------------------------------------------


def test_follow_up_moves_the_stage_forward_and_the_last_follow_up(rep: User) -> None:
    customer = CustomerFactory.create(owner=rep)
    when = timezone.now() - timedelta(hours=1)
    services.follow_up_log(
        actor=rep,
        customer=customer,
        kind="call",
        happened_at=when,
        summary="电话沟通",
        stage_after=FunnelStage.CONTACTED,
    )
    customer.refresh_from_db()
    assert customer.stage == FunnelStage.CONTACTED
    assert customer.last_follow_up_at == when


def test_follow_up_backwards_needs_a_reason(rep: User) -> None:
    customer = CustomerFactory.create(owner=rep, stage=FunnelStage.OPPORTUNITY)
    with pytest.raises(services.CustomerInvalid) as caught:
        services.follow_up_log(
            actor=rep,
            customer=customer,
            kind="visit",
            happened_at=timezone.now(),
            summary="拜访",
            stage_after=FunnelStage.CONTACTED,
        )
    assert "原因" in caught.value.errors["stage_reason"]
    assert not FollowUp.objects.exists()
    customer.refresh_from_db()
    assert customer.stage == FunnelStage.OPPORTUNITY

    services.follow_up_log(
        actor=rep,
        customer=customer,
        kind="visit",
        happened_at=timezone.now(),
        summary="拜访",
        stage_after=FunnelStage.CONTACTED,
        stage_reason="决策人离职",
    )
    customer.refresh_from_db()
    assert customer.stage == FunnelStage.CONTACTED


def test_follow_up_in_the_future_is_refused(rep: User) -> None:
    customer = CustomerFactory.create(owner=rep)
    with pytest.raises(services.CustomerInvalid) as caught:
        services.follow_up_log(
            actor=rep,
            customer=customer,
            kind="call",
            happened_at=timezone.now() + timedelta(days=1),
            summary="电话",
        )
    assert "happened_at" in caught.value.errors
