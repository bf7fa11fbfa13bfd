"""Whole journeys, from login, in Chinese, some on a phone-sized screen."""

from __future__ import annotations

from typing import Any

import pytest

from crm.models import Customer, User
from ownership.models import EventKind, OwnershipEvent, PoolPolicy
from tests.factories import TEST_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_registration_and_collision(journey: Any, rep: User, second_rep: User) -> None:
    first = journey(phone=True)
    first.login(rep.username, TEST_PASSWORD)
    page = first.goto("/register/")
    page.get_by_label("公司名称").fill("北京字节跳动科技有限公司")
    page.get_by_label("我如何发现或首次联系该客户").fill("展会上交换名片")
    page.get_by_role("button", name="报备", exact=True).click()
    page.wait_for_load_state()
    first.check_accessibility()
    assert "已报备" in page.content()

    second = journey(phone=True)
    second.login(second_rep.username, TEST_PASSWORD)
    page = second.goto("/register/")
    # The live duplicate check answers while the rep types.
    page.get_by_label("公司名称").press_sequentially("字节跳动科技（北京）有限公司", delay=20)
    page.wait_for_selector("#duplicate-check .badge.text-bg-danger", timeout=10000)
    hint = page.inner_text("#duplicate-check")
    assert str(rep) in hint
    page.get_by_role("button", name="报备", exact=True).click()
    page.wait_for_load_state()
    second.check_accessibility()
    body = page.content()
    assert "撞单" in body and str(rep) in body and "保护期截止" in body
    assert Customer.objects.get().owner == rep


def test_pool_claims_up_to_the_daily_cap_and_release(
    journey: Any, rep: User, global_pool_policy: PoolPolicy
) -> None:
    from crm import services as crm_services

    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_claims_per_day=2)
    names = ["苏州恒远机械股份有限公司", "南京智联物流有限公司", "杭州青禾生物科技有限公司"]
    for name in names:
        crm_services.customer_create(actor=None, display_name=name)
    browser = journey()
    browser.login(rep.username, TEST_PASSWORD)
    page = browser.goto("/pool/")
    for name in names[:2]:
        page.get_by_label(name).check()
    page.get_by_role("button", name="领取所选客户").click()
    page.wait_for_load_state()
    assert Customer.objects.filter(owner=rep).count() == 2
    page = browser.goto("/pool/")
    page.get_by_label(names[2]).check()
    page.get_by_role("button", name="领取所选客户").click()
    page.wait_for_load_state()
    assert "每日上限" in page.content()
    assert Customer.objects.filter(owner=rep).count() == 2

    released = Customer.objects.get(display_name=names[0])
    page = browser.goto(f"/customers/{released.pk}/release/")
    page.get_by_label("为什么释放该客户？").fill("客户没有预算")
    page.get_by_role("button", name="释放").click()
    page.wait_for_load_state()
    released.refresh_from_db()
    assert released.owner is None
    assert OwnershipEvent.objects.filter(customer=released).last().kind == EventKind.RELEASED


def test_language_switch_sticks_to_the_user(journey: Any, rep: User) -> None:
    browser = journey()
    browser.login(rep.username, TEST_PASSWORD)
    page = browser.page
    page.get_by_label("语言").select_option("en")
    page.get_by_role("button", name="切换").click()
    page.wait_for_load_state()
    assert "Sales rep home" in page.content()
    browser.check_accessibility()
