"""Workflow journeys in a real browser: transfer requests, departures, pool policy changes,
the funnel report and disputes — each from login, in Chinese, some on a phone-sized screen."""

from __future__ import annotations

import io
from typing import Any

import pytest

from crm.models import Customer, User
from tests.factories import TEST_PASSWORD, CustomerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _register_collision(browser: Any, name: str) -> Any:
    """The asking rep registers a company someone else owns and lands on the collision page."""
    page = browser.goto("/register/")
    page.get_by_label("公司名称").fill(name)
    page.get_by_label("我如何发现或首次联系该客户").fill("上个月在行业展会上见过采购经理")
    page.get_by_role("button", name="报备", exact=True).click()
    page.wait_for_load_state()
    browser.check_accessibility()
    assert "撞单" in page.content()
    return page


def test_transfer_request_from_collision_approved_by_manager(
    journey: Any, rep: User, second_rep: User, manager: User
) -> None:
    name = "上海澄明精密仪器有限公司"
    customer = CustomerFactory(display_name=name, owner=rep)

    asker = journey(phone=True)
    asker.login(second_rep.username, TEST_PASSWORD)
    page = _register_collision(asker, name)
    page.get_by_role("link", name="申请转移").click()
    page.wait_for_load_state()
    asker.check_accessibility()
    page.get_by_label("理由").fill("客户的采购经理一直与我对接")
    page.get_by_label("证据").fill("2026年10月12日展会交换名片，10月20日上门拜访")
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_load_state()
    asker.check_accessibility()

    boss = journey()
    boss.login(manager.username, TEST_PASSWORD)
    page = boss.goto("/requests/queue/")
    row = page.locator("tr", has_text=name)
    row.get_by_role("button", name="批准").click()
    row_done = page.locator("tr .alert-success")
    row_done.wait_for(timeout=10000)
    boss.check_accessibility()
    customer.refresh_from_db()
    assert customer.owner == second_rep

    old = journey()
    old.login(rep.username, TEST_PASSWORD)
    response = old.page.goto(f"{old.base_url}/customers/{customer.pk}/")
    assert response is not None and response.status == 404


def test_departure_handover_from_plan_to_last_day(
    journey: Any, rep: User, second_rep: User, manager: User
) -> None:
    from django.utils import timezone

    from handover.tasks import finish_due_departures

    fresh = CustomerFactory(display_name="武汉长江新材料有限公司", owner=rep)
    talking = CustomerFactory(display_name="成都蓉城软件有限公司", owner=rep, stage=25)

    boss = journey()
    boss.login(manager.username, TEST_PASSWORD)
    page = boss.goto("/handover/")
    page.get_by_role("link", name="登记离职").first.click()
    page.wait_for_load_state()
    boss.check_accessibility()
    page.get_by_label("离职销售").select_option(value=str(rep.pk))
    page.get_by_role("button", name="继续").click()
    page.wait_for_load_state()
    boss.check_accessibility()
    page.get_by_label("最后工作日").fill(timezone.localdate().isoformat())
    page.get_by_label("所有客户交给同一位接手人（可在下方逐个另选）").check()
    page.get_by_label("统一接手人").select_option(value=str(second_rep.pk))
    page.get_by_role("button", name="登记离职并生成交接计划").click()
    page.wait_for_load_state()
    boss.check_accessibility()
    assert "/handover/new/" not in page.url

    successor = journey(phone=True)
    successor.login(second_rep.username, TEST_PASSWORD)
    page = successor.goto("/handover/incoming/")
    page.get_by_label(f"选择 {talking.display_name}").check()
    # A customer at 0% may already have moved with the plan; accept it too if it waits.
    fresh_box = page.get_by_label(f"选择 {fresh.display_name}")
    if fresh_box.count():
        fresh_box.check()
    page.get_by_role("button", name="接受所选客户").click()
    page.wait_for_load_state()
    successor.check_accessibility()
    assert page.get_by_label(f"选择 {talking.display_name}").count() == 0

    leaver = journey(phone=True)
    leaver.login(rep.username, TEST_PASSWORD)
    page = leaver.goto("/handover/my-tasks/")
    page.get_by_role("link", name=talking.display_name).click()
    page.wait_for_load_state()
    leaver.check_accessibility()
    page.get_by_label("电话或拜访的情况如何？").fill("已电话介绍新的对接人，客户同意")
    page.get_by_role("button", name="标记完成").click()
    page.wait_for_load_state()
    leaver.check_accessibility()

    page = successor.goto("/handover/incoming/")
    page.get_by_role("link", name=talking.display_name).click()
    page.wait_for_load_state()
    successor.check_accessibility()
    page.get_by_label("发生日期").fill(timezone.localdate().isoformat())
    page.get_by_label("情况说明").fill("客户已接到介绍电话")
    page.get_by_role("button", name="确认", exact=True).click()
    page.wait_for_load_state()
    successor.check_accessibility()
    talking.refresh_from_db()
    assert talking.owner == second_rep

    finish_due_departures()
    assert not Customer.objects.filter(owner=rep).exists()
    fresh.refresh_from_db()
    assert fresh.owner == second_rep

    gone = journey()
    gone.login(rep.username, TEST_PASSWORD)
    assert "/accounts/login/" in gone.page.url
    assert gone.page.locator(".alert-danger").count() == 1


def test_stricter_pool_policy_tried_applied_and_rep_warned(
    journey: Any, rep: User, crm_admin: User, global_pool_policy: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from ownership.models import PoolPolicy
    from ownership.review.run import review_run

    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(
        days_without_follow_up=30, warning_days=7, days_to_reach_50=60, days_to_reach_100=180
    )
    # Twenty days without a follow-up: ten days left now, five under the stricter policy.
    quiet = CustomerFactory(
        display_name="青岛海岸线食品有限公司",
        owner=rep,
        clock_started_at=timezone.now() - timedelta(days=20),
    )

    before = journey(phone=True)
    before.login(rep.username, TEST_PASSWORD)
    assert "即将退回公海" not in before.page.content()

    admin = journey()
    admin.login(crm_admin.username, TEST_PASSWORD)
    page = admin.goto("/ownership/what-if/")
    page.get_by_label("未跟进多少天后回收").fill("25")
    page.get_by_role("button", name="查看影响").click()
    page.wait_for_load_state()
    admin.check_accessibility()
    assert "→" in page.content()
    page.get_by_role("button", name="将这些取值应用到全局规则…").click()
    page.wait_for_load_state()
    admin.check_accessibility()
    page.get_by_role("button", name="确认应用这些取值").click()
    page.wait_for_load_state()
    admin.check_accessibility()
    global_pool_policy.refresh_from_db()
    assert global_pool_policy.days_without_follow_up == 25

    review_run()
    quiet.refresh_from_db()
    assert quiet.owner == rep

    # The home page with a warned (highlighted) row passes the accessibility check too.
    warned = journey(phone=True)
    warned.login(rep.username, TEST_PASSWORD)
    assert "1 个客户即将退回公海" in warned.page.content()
    assert warned.page.locator("tr.table-warning", has_text=quiet.display_name).count() == 1


def test_manager_reads_funnel_diagnosis_and_exports_xlsx(
    journey: Any, rep: User, second_rep: User, manager: User, team: Any
) -> None:
    from openpyxl import load_workbook

    from crm.funnel import funnel_snapshot_take

    # The first rep moves customers along; the second rep's customers all stay at 0%.
    for index, stage in enumerate([0, 25, 25, 50, 50, 75, 100, 25]):
        CustomerFactory(display_name=f"甲{index}号精工机械有限公司", owner=rep, stage=stage)
    for index in range(8):
        CustomerFactory(display_name=f"乙{index}号远景贸易有限公司", owner=second_rep)
    funnel_snapshot_take()

    boss = journey(phone=True)
    boss.login(manager.username, TEST_PASSWORD)
    page = boss.goto("/funnel/")
    page.get_by_role("link", name=team.name).first.click()
    page.wait_for_load_state()
    boss.check_accessibility()

    table = page.locator("table.funnel-table")
    shown: dict[str, list[int]] = {}
    for who in (str(rep), str(second_rep), "团队合计"):
        cells = table.locator("tr", has=page.locator("th", has_text=who)).first.locator("td")
        # Stage columns come first (0% … 100%): the first line of each cell is the count.
        shown[who] = [int(cells.nth(i).inner_text().split()[0]) for i in range(5)]
    second_row = table.locator("tr", has=page.locator("th", has_text=str(second_rep))).first
    diagnosis = second_row.locator("td.funnel-diagnosis").inner_text()
    totals = [a + b for a, b in zip(shown[str(rep)], shown[str(second_rep)], strict=True)]
    assert shown["团队合计"] == totals
    assert shown[str(second_rep)] == [8, 0, 0, 0, 0]
    # The second rep converts nothing: the page names a weakest stage and a training.
    assert diagnosis.strip() and "没有明显落后于团队的阶段" not in diagnosis

    with page.expect_download() as info:
        page.get_by_role("link", name="导出为 Excel（XLSX）").click()
    assert info.value.suggested_filename.endswith(".xlsx")
    # The download has no extension on disk; openpyxl judges by it, so hand it the bytes.
    with open(info.value.path(), "rb") as handle:
        sheet = load_workbook(io.BytesIO(handle.read()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    who_col, stage_col = header.index("销售"), header.index("销售阶段")
    reached_col = 5
    exported: dict[str, list[int]] = {}
    for row in rows[1:]:
        exported.setdefault(str(row[who_col]), []).append(int(row[reached_col]))
    for who, figures in shown.items():
        assert exported[who] == figures, who
    assert [row[stage_col] for row in rows[1:6]] == ["0%", "25%", "50%", "75%", "100%"]
