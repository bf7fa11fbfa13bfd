"""Territories in a real browser: the administrator sees a draft refused for an undecided
overlap, activates it once a priority decides, simulates a customer, and realigns the
customers that now lie outside their owner's team to a rep of the responsible team; the
manager reads their territories. Every page passes axe-core."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from crm.models import Customer, Team, User
from ownership.models import (
    CustomerTerritory,
    EventKind,
    OwnershipEvent,
    RuleSet,
    RuleSetStatus,
)
from tests.factories import TEST_PASSWORD, UserFactory
from tests.ownership.territory_helpers import (
    HAIDIAN,
    PUDONG,
    SHANGHAI,
    customer_in,
    territory,
    two_region_rule_set,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_administrator_activates_a_draft_and_realigns(
    journey: Any,
    crm_admin: User,
    manager: User,
    rep: User,
    team: Team,
    other_team: Team,
    global_pool_policy: Any,
) -> None:
    north_rep = UserFactory(username="northrep", display_name="赵北", role="rep", team=other_team)
    draft = two_region_rule_set(east=team, north=other_team, name="2027 版")
    # An undecided overlap first: a second top-level territory over 上海.
    overlap = territory(draft, "上海重点", division_codes=[SHANGHAI], teams=[other_team])
    beijing_1 = customer_in(HAIDIAN, owner=rep, name="北京海淀一号科技有限公司")
    beijing_2 = customer_in(HAIDIAN, owner=rep, name="北京海淀二号科技有限公司")
    customer_in(PUDONG, owner=rep, name="上海浦东本地贸易有限公司")

    admin = journey()
    admin.login(crm_admin.username, TEST_PASSWORD)
    page = admin.goto(reverse("admin:ownership_ruleset_activate", args=[draft.pk]))
    assert page.get_by_text("修正以上问题和未决重叠之前").is_visible()
    assert page.get_by_text("上海浦东本地贸易有限公司").is_visible()  # an example customer
    overlap.priority = 200  # 华东 (100) wins: lower numbers win
    overlap.save(update_fields=["priority"])
    page = admin.goto(reverse("admin:ownership_ruleset_activate", args=[draft.pk]))
    page.get_by_role("button", name="确认启用该规则集").click()
    page.wait_for_load_state()
    assert page.get_by_text("2027 版 现已生效").is_visible()
    admin.check_accessibility()
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.ACTIVE

    # The territory tree in the admin, indented under its parents.
    page = admin.goto(
        reverse("admin:ownership_territory_changelist") + f"?rule_set__id__exact={draft.pk}"
    )
    assert page.get_by_role("link", name="└ 海淀区").is_visible()

    # Simulate one pasted customer.
    page = admin.goto(reverse("territory_simulate"))
    page.get_by_label("客户，每行一个").fill("北京新客户有限公司,北京市海淀区中关村南大街5号")
    page.get_by_role("button", name="模拟").click()
    page.wait_for_load_state()
    assert page.get_by_text("华北 → 海淀区").first.is_visible()
    admin.check_accessibility()

    # Realign: two customers of the east team now lie in the north team's territory.
    page = admin.goto(reverse("realignment_preview"))
    assert page.get_by_text("华东销售部 → 华北销售部").is_visible()
    page.get_by_label("分配给 华北销售部 的销售").check()
    page.get_by_label("销售（用于分配）").select_option(label=str(north_rep))
    page.get_by_role("button", name="继续确认").click()
    page.wait_for_load_state()
    admin.check_accessibility()
    assert OwnershipEvent.objects.filter(kind=EventKind.TRANSFERRED).count() == 0
    page.get_by_role("button", name="确认应用重新划分").click()
    page.wait_for_load_state()
    assert page.get_by_text("已应用重新划分").is_visible()
    for customer in (beijing_1, beijing_2):
        customer.refresh_from_db()
        assert customer.owner == north_rep
    assert OwnershipEvent.objects.filter(kind=EventKind.TRANSFERRED).count() == 2

    # The manager of the east team reads their territories.
    reader = journey()
    reader.login(manager.username, TEST_PASSWORD)
    page = reader.goto(reverse("territory_mine"))
    assert page.get_by_role("heading", name="我的区域").is_visible()
    assert page.get_by_role("rowheader", name="华东").is_visible()
    assert Customer.objects.filter(owner=rep).count() == 1
    assert CustomerTerritory.objects.filter(rule_set=draft).count() == 3
    assert RuleSet.objects.count() == 1
