"""The committee's admin: the queue (filters, overdue highlight), the dossier rendered
read-only, voting and the chair's decision through admin views, and admin actions that
leave exactly the history the services leave."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import Customer, User
from disputes import services
from disputes.models import Dispute, DisputeHistory, Ruling, Vote
from tests.conftest import login


def _history(case: Dispute) -> list[tuple[str, str, int | None, str]]:
    return list(
        DisputeHistory.objects.filter(dispute=case)
        .order_by("at", "id")
        .values_list("from_state", "to_state", "actor_id", "note")
    )


def test_admin_actions_leave_the_same_history_as_the_services(
    client: Client,
    claimant: User,
    contested: Customer,
    pair: tuple[Customer, Customer],
    committee: list[User],
) -> None:
    member = committee[1]
    by_service = services.dispute_file(
        actor=claimant, customer=contested, kind="first_contact", statement="x"
    )
    first, second = pair
    by_admin = services.dispute_file(
        actor=claimant, customer=second, other_customer=first, kind="same_company", statement="x"
    )
    services.dispute_start_review(actor=member, dispute=by_service)
    login(client, member)
    response = client.post(
        reverse("admin:disputes_dispute_changelist"),
        {"action": "take_under_review", "_selected_action": [by_admin.pk], "index": 0},
    )
    assert response.status_code == 302
    strip = [(a, b, c, d) for a, b, c, d in _history(by_service)]
    assert [(a, b, c, d) for a, b, c, d in _history(by_admin)] == strip
    assert _history(by_admin)[-1] == ("filed", "under_review", member.pk, "")


def test_voting_in_the_admin_calls_the_service(
    client: Client, first_contact_case: Dispute, committee: list[User], claimant: User
) -> None:
    login(client, committee[1])
    url = reverse("admin:disputes_dispute_vote", args=[first_contact_case.pk])
    page = client.get(url)
    assert page.status_code == 200 and "合并" not in page.content.decode()
    response = client.post(url, {"outcome": "award", "rationale": ""})
    assert response.status_code == 200 and not Vote.objects.exists()
    response = client.post(url, {"outcome": "award", "rationale": "证据充分"})
    assert response.status_code == 302
    client.logout()
    login(client, committee[2])
    client.post(url, {"outcome": "award", "rationale": "同意"})
    ruling = Ruling.objects.get()
    assert ruling.outcome == "award"
    first_contact_case.refresh_from_db()
    assert first_contact_case.customer.owner == claimant
    # Same history as voting through the service: filed → under review → decided.
    assert [(a, b) for a, b, _c, _d in _history(first_contact_case)] == [
        ("", "filed"),
        ("filed", "under_review"),
        ("under_review", "decided"),
    ]


def test_a_conflicted_member_is_told_and_refused(
    client: Client, first_contact_case: Dispute, committee: list[User], team: Any
) -> None:
    member = committee[1]
    team.manager = member
    team.save(update_fields=["manager"])
    login(client, member)
    change = client.get(reverse("admin:disputes_dispute_change", args=[first_contact_case.pk]))
    body = change.content.decode()
    assert "不能投票" in body
    assert reverse("admin:disputes_dispute_vote", args=[first_contact_case.pk]) not in body
    response = client.post(
        reverse("admin:disputes_dispute_vote", args=[first_contact_case.pk]),
        {"outcome": "award", "rationale": "x"},
    )
    assert response.status_code == 200 and not Vote.objects.exists()


def test_the_change_page_renders_the_dossier_and_hides_votes_until_one_votes(
    client: Client, first_contact_case: Dispute, committee: list[User]
) -> None:
    services.dispute_vote(
        actor=committee[1], dispute=first_contact_case, outcome="award", rationale="秘密理由"
    )
    login(client, committee[2])
    url = reverse("admin:disputes_dispute_change", args=[first_contact_case.pk])
    body = client.get(url).content.decode()
    assert "归属台账" in body and "上海云帆信息技术有限公司" in body
    assert "秘密理由" not in body
    assert "投票后才显示" in body
    client.logout()
    login(client, committee[1])
    assert "秘密理由" in client.get(url).content.decode()


def test_the_queue_filters_and_highlights_overdue_cases(
    client: Client, first_contact_case: Dispute, committee: list[User], other_team: Any
) -> None:
    Dispute.objects.filter(pk=first_contact_case.pk).update(
        deadline=timezone.now() - timedelta(hours=2)
    )
    login(client, committee[0])
    changelist = reverse("admin:disputes_dispute_changelist")
    body = client.get(changelist, {"deadline": "overdue"}).content.decode()
    assert "已逾期" in body and "上海云帆信息技术有限公司" in body
    body = client.get(changelist, {"deadline": "later"}).content.decode()
    assert "上海云帆信息技术有限公司" not in body
    body = client.get(changelist, {"team": other_team.pk}).content.decode()
    assert "上海云帆信息技术有限公司" in body
    body = client.get(changelist, {"state__in": "filed,under_review,appealed"})
    assert body.status_code == 200 and "上海云帆信息技术有限公司" in body.content.decode()


def test_the_chair_decides_in_the_admin(
    client: Client, first_contact_case: Dispute, committee: list[User]
) -> None:
    Dispute.objects.filter(pk=first_contact_case.pk).update(
        deadline=timezone.now() - timedelta(hours=2)
    )
    login(client, committee[1])
    url = reverse("admin:disputes_dispute_chair", args=[first_contact_case.pk])
    client.post(url, {"outcome": "uphold", "rationale": "x"})
    assert not Ruling.objects.exists()
    client.logout()
    login(client, committee[0])
    response = client.post(url, {"outcome": "uphold", "rationale": "逾期维持"})
    assert response.status_code == 302
    assert Ruling.objects.get().decided_by == committee[0]


def test_reps_and_managers_have_no_admin_queue(
    client: Client, first_contact_case: Dispute, rep: User, manager: User
) -> None:
    for user in (rep, manager):
        client.logout()
        login(client, user)
        response = client.get(reverse("admin:disputes_dispute_changelist"))
        assert response.status_code in (302, 403)
