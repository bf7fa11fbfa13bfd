"""Journey 1 in full: a registration, a collision on the same company written differently,
a dispute filed from the collision page, worked by the committee in the admin (taken up,
a tied vote, the chair's ruling), and the ruling seen by both reps and in the ledger."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from crm.models import Customer, Notification, User
from disputes.models import CommitteeMembership, Dispute, DisputeState, Ruling, RulingMethod
from ownership.models import EventKind, OwnershipEvent
from ownership.selectors import clock_for
from tests.factories import TEST_PASSWORD, UserFactory, credit_code_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REGISTERED_NAME = "深圳市腾飞电子科技有限公司"
# The same company: province prefix, the city in full-width brackets after the trade name,
# and another legal form. The duplicate check treats this as a hard match.
COLLIDING_NAME = "广东腾飞电子科技（深圳）有限责任公司"
CREDIT_CODE = credit_code_for(7311, division="440305")
# What the first rep typed that nobody else may read (DESIGN.md invariant 4).
SECRETS = {
    "credit code": CREDIT_CODE,
    "company phone": "0755-86123456",
    "address": "南山区科技园深南大道9988号",
    "first contact": "周采购经理",
    "first contact's mobile": "13823456789",
    "evidence": "高交会展台交换名片",
}
# The collision page names exactly these facts of someone else's customer.
PUBLIC_FACTS = ["客户", "负责人", "团队", "归属起始", "保护期截止"]


@pytest.fixture
def committee(committee_member: User, settings: Any) -> dict[str, User]:
    """Three members; the chair decides ties. The rules are pinned here rather than taken
    from the environment: two votes make a quorum, a choice needs more than half of them."""
    settings.DISPUTE_QUORUM = 2
    settings.DISPUTE_MAJORITY = 0.5
    # Notifications' e-mails are sent in-process and kept, so the test can read them.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    members = {
        "chair": committee_member,
        "zhou": UserFactory(username="zhou", display_name="周委员", role="committee"),
        "wu": UserFactory(username="wu", display_name="吴委员", role="committee"),
    }
    CommitteeMembership.objects.create(user=members["chair"], is_chair=True)
    CommitteeMembership.objects.create(user=members["zhou"])
    CommitteeMembership.objects.create(user=members["wu"])
    return members


def _assert_nothing_leaks(body: str, where: str) -> None:
    for what, secret in SECRETS.items():
        assert secret not in body, f"{where} shows the owner's {what}"


def _vote(browser: Any, case: Dispute, outcome: str, rationale: str) -> None:
    page = browser.goto(f"/admin/disputes/dispute/{case.pk}/change/")
    assert "归属台账" in page.content()  # the dossier is on the page
    page.get_by_role("link", name="投票", exact=True).click()
    page.wait_for_load_state()
    browser.check_accessibility()
    page.get_by_label(outcome).check()
    page.get_by_label("理由").fill(rationale)
    page.get_by_role("button", name="提交投票").click()
    page.wait_for_load_state()
    browser.check_accessibility()
    assert "您的投票已记录" in page.content()


def test_collision_dispute_ruled_by_the_committee(
    journey: Any,
    rep: User,
    second_rep: User,
    committee: dict[str, User],
    global_pool_policy: Any,
) -> None:
    # --- the first rep registers the company, with details only they may read ---
    first = journey(phone=True)
    first.login(rep.username, TEST_PASSWORD)
    page = first.goto("/register/")
    page.get_by_label("公司名称").fill(REGISTERED_NAME)
    page.get_by_label("统一社会信用代码").fill(SECRETS["credit code"])
    page.get_by_label("公司电话").fill(SECRETS["company phone"])
    page.get_by_label("地址").fill(SECRETS["address"])
    page.get_by_label("首位联系人", exact=True).fill(SECRETS["first contact"])
    page.get_by_label("首位联系人手机").fill(SECRETS["first contact's mobile"])
    page.get_by_label("我如何发现或首次联系该客户").fill(SECRETS["evidence"])
    page.get_by_role("button", name="报备", exact=True).click()
    page.wait_for_load_state()
    first.check_accessibility()
    assert "已报备" in page.content()
    customer = Customer.objects.get()
    assert customer.owner == rep and customer.credit_code == CREDIT_CODE
    # The owner reads them on the customer's page (so their absence below means something).
    page = first.goto(reverse("customer_detail", args=[customer.pk]))
    body = page.content()
    assert all(secret in body for secret in SECRETS.values() if secret != SECRETS["evidence"])

    # --- the second rep registers it written differently: the collision page ---
    second = journey(phone=True)
    second.login(second_rep.username, TEST_PASSWORD)
    page = second.goto("/register/")
    page.get_by_label("公司名称").fill(COLLIDING_NAME)
    page.get_by_label("我如何发现或首次联系该客户").fill("上周电话联系过对方采购")
    page.get_by_role("button", name="报备", exact=True).click()
    page.wait_for_load_state()
    second.check_accessibility()
    assert "撞单" in page.inner_text("h1")
    customer.refresh_from_db()
    card = page.locator(".card dl")
    assert card.locator("dt").all_inner_texts() == PUBLIC_FACTS
    facts = dict(zip(PUBLIC_FACTS, card.locator("dd").all_inner_texts(), strict=True))
    local = timezone.localtime
    assert facts == {
        "客户": REGISTERED_NAME,
        "负责人": str(rep),
        "团队": str(rep.team),
        "归属起始": local(customer.owned_since).strftime("%Y-%m-%d %H:%M"),
        "保护期截止": local(clock_for(customer).returns_at).strftime("%Y-%m-%d %H:%M"),
    }
    _assert_nothing_leaks(page.content(), "the collision page")
    assert Customer.objects.count() == 1

    # --- ... and files a dispute from there ---
    page.get_by_role("link", name="发起争议").click()
    page.wait_for_load_state()
    second.check_accessibility()
    _assert_nothing_leaks(page.content(), "the dispute form")
    assert page.get_by_label("我先报备或先联系了该客户").is_checked()
    page.get_by_label("您的陈述").fill("我上周已电话联系过该公司的采购，比对方报备更早。")
    page.get_by_role("button", name="提交争议").click()
    page.wait_for_load_state()
    second.check_accessibility()
    case = Dispute.objects.get()
    assert page.url.endswith(f"/disputes/{case.pk}/")
    assert (case.claimant, case.respondent, case.state) == (second_rep, rep, DisputeState.FILED)
    _assert_nothing_leaks(page.content(), "the claimant's dispute page")

    # --- the committee: one member takes it up and votes, another votes otherwise ---
    zhou = journey()
    zhou.login(committee["zhou"].username, TEST_PASSWORD)
    page = zhou.goto("/admin/disputes/dispute/?state__exact=filed")
    row = page.locator("#result_list tbody tr", has_text=REGISTERED_NAME)
    row.locator("input.action-select").check()
    page.locator("select[name=action]").select_option("take_under_review")
    page.locator("button[name=index]").click()
    page.wait_for_load_state()
    zhou.check_accessibility()
    case.refresh_from_db()
    assert case.state == DisputeState.UNDER_REVIEW
    _vote(zhou, case, "判给另一方", "报备前一周已有电话记录，支持申请方。")

    wu = journey()
    wu.login(committee["wu"].username, TEST_PASSWORD)
    _vote(wu, case, "维持现负责人", "电话记录无法核实，先报备者得。")
    case.refresh_from_db()
    assert case.state == DisputeState.UNDER_REVIEW and not Ruling.objects.exists()

    # --- a tie at quorum: the chair is told and decides ---
    chair = journey()
    chair.login(committee["chair"].username, TEST_PASSWORD)
    escalation = Notification.objects.get(recipient=committee["chair"], kind="dispute_escalated")
    page = chair.goto(escalation.url)
    page.get_by_role("link", name="以主席身份裁决").click()
    page.wait_for_load_state()
    chair.check_accessibility()
    page.get_by_label("判给另一方").check()
    page.get_by_label("理由").fill("通话记录与展会名单相互印证，申请方先联系。")
    page.get_by_role("button", name="裁决", exact=True).click()
    page.wait_for_load_state()
    chair.check_accessibility()
    assert "您的裁决已记录并执行" in page.content()
    ruling = Ruling.objects.get()
    assert (ruling.outcome, ruling.method, ruling.decided_by) == (
        "award",
        RulingMethod.CHAIR,
        committee["chair"],
    )
    customer.refresh_from_db()
    assert customer.owner == second_rep

    # --- both reps see the ruling: a notification and the dispute page ---
    for browser, who in ((first, rep), (second, second_rep)):
        page = browser.goto("/notifications/")
        item = page.locator(".list-group-item", has_text=f"争议 #{case.pk}")
        assert item.filter(has_text="判给另一方").count() >= 1, who
        page = browser.goto(f"/disputes/{case.pk}/")
        ruling_card = page.locator("section.border-success")
        assert "判给另一方" in ruling_card.inner_text(), who
        assert "孙委员" in ruling_card.inner_text(), who
        assert f"{REGISTERED_NAME}：{rep} → {second_rep}" in ruling_card.inner_text(), who
    assert {message.to[0] for message in mail.outbox if f"#{case.pk}" in message.subject} >= {
        rep.email,
        second_rep.email,
    }

    # --- the ledger shows the ruled event, with its reason ---
    event = OwnershipEvent.objects.filter(customer=customer).order_by("sequence").last()
    assert event is not None and event.kind == EventKind.RULED
    ledger = reverse("customer_ownership", args=[customer.pk])
    page = second.goto(ledger)
    last_row = page.locator("table tbody tr").last
    text = last_row.inner_text()
    assert "仲裁裁决" in text and str(rep) in text and str(second_rep) in text
    assert f"争议 #{case.pk}" in text
    # The rep who lost it can no longer open it.
    response = first.page.goto(first.base_url + ledger)
    assert response is not None and response.status == 404
