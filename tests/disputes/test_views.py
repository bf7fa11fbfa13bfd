"""The parties' pages: filing from the three entry points, following the case, statements,
withdrawal, appeal, attachments; non-parties get 404; nothing of the other side's customer
leaks beyond what a duplicate answer shows."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm import services as crm_services
from crm.models import Customer, Role, User
from disputes import services
from disputes.models import Dispute, DisputeAttachment
from tests.conftest import login
from tests.disputes.conftest import png
from tests.factories import UserFactory


def test_the_rep_picks_a_customer_from_my_customers(
    client: Client, rep: User, contested: Customer
) -> None:
    login(client, rep)
    body = client.get(reverse("dispute_file")).content.decode()
    assert "上海云帆信息技术有限公司" in body
    page = client.get(reverse("dispute_file"), {"customer": contested.pk})
    assert page.status_code == 200
    assert "这两条客户记录是同一家公司" in page.content.decode()


def test_the_customer_page_offers_the_button_and_shows_the_badge(
    client: Client, rep: User, contested: Customer, first_contact_case: Dispute
) -> None:
    login(client, rep)
    body = client.get(reverse("customer_detail", args=[contested.pk])).content.decode()
    assert "争议中" in body
    assert f"{reverse('dispute_file')}?customer={contested.pk}" in body


def test_filing_from_the_collision_page(
    client: Client, claimant: User, contested: Customer, committee: list[User]
) -> None:
    registration = apps.get_model("allocation", "Registration").objects.create(
        rep=claimant,
        submitted_at=timezone.now(),
        outcome="collision",
        customer=contested,
        entered_name="上海云帆信息技术有限公司",
    )
    login(client, claimant)
    url = reverse("dispute_file") + f"?customer={contested.pk}&kind=first_contact"
    page = client.get(url)
    assert page.status_code == 200 and registration.pk
    response = client.post(
        reverse("dispute_file"),
        {
            "customer": contested.pk,
            "kind": "first_contact",
            "statement": "展会上先认识的采购",
            "attachments": [png("名片.png")],
        },
    )
    case = Dispute.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "dispute_detail", args=[case.pk]
    )
    assert case.claimant == claimant and case.attachments.count() == 1


def test_a_refused_attachment_is_a_form_error(
    client: Client, claimant: User, contested: Customer
) -> None:
    apps.get_model("allocation", "Registration").objects.create(
        rep=claimant, submitted_at=timezone.now(), outcome="collision", customer=contested
    )
    login(client, claimant)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        reverse("dispute_file"),
        {
            "customer": contested.pk,
            "kind": "first_contact",
            "statement": "见附件",
            "attachments": [SimpleUploadedFile("x.pdf", b"not a pdf")],
        },
    )
    assert response.status_code == 200
    assert "不是图片" in response.content.decode()
    assert not Dispute.objects.exists()


def test_a_rep_cannot_file_about_a_customer_they_never_met(
    client: Client, second_rep: User, contested: Customer
) -> None:
    login(client, second_rep)
    assert client.get(reverse("dispute_file"), {"customer": contested.pk}).status_code == 404
    response = client.post(
        reverse("dispute_file"),
        {"customer": contested.pk, "kind": "first_contact", "statement": "x"},
    )
    assert response.status_code == 404 and not Dispute.objects.exists()


def test_parties_and_their_managers_see_the_case_others_get_404(
    client: Client,
    first_contact_case: Dispute,
    claimant: User,
    rep: User,
    manager: User,
    other_manager: User,
    second_rep: User,
    committee: list[User],
    crm_admin: User,
) -> None:
    url = reverse("dispute_detail", args=[first_contact_case.pk])
    for user in (claimant, rep, manager, other_manager, crm_admin):
        client.logout()
        login(client, user)
        assert client.get(url).status_code == 200, user
    outsider_manager = UserFactory(role=Role.MANAGER)
    for user in (second_rep, committee[0], outsider_manager, UserFactory(role=Role.REP)):
        client.logout()
        login(client, user)
        assert client.get(url).status_code == 404, user
        for name in ("dispute_statement", "dispute_withdraw", "dispute_appeal"):
            post = client.post(reverse(name, args=[first_contact_case.pk]), {"text": "x"})
            assert post.status_code == 404, (name, user)
    first_contact_case.refresh_from_db()
    assert first_contact_case.state == "filed" and first_contact_case.statements.count() == 1


def test_the_case_page_shows_no_contact_details_of_the_other_side(
    client: Client, claimant: User, rep: User, first_contact_case: Dispute, contested: Customer
) -> None:
    crm_services.contact_add(actor=rep, customer=contested, name="机密联系人", mobile="13912345678")
    services.dispute_refresh_dossier(actor=None, dispute=first_contact_case)
    login(client, claimant)
    body = client.get(reverse("dispute_detail", args=[first_contact_case.pk])).content.decode()
    assert "上海云帆信息技术有限公司" in body
    assert "机密联系人" not in body and "13912345678" not in body


def test_the_other_party_answers_and_the_claimant_withdraws(
    client: Client, first_contact_case: Dispute, claimant: User, rep: User
) -> None:
    login(client, rep)
    url = reverse("dispute_statement", args=[first_contact_case.pk])
    response = client.post(url, {"text": "我先报备的", "attachments": [png("记录.png")]})
    assert response.status_code == 302
    assert first_contact_case.statements.count() == 2
    response = client.post(url, {"text": ""})
    assert response.status_code == 200 and "invalid-feedback" in response.content.decode()
    # The respondent cannot withdraw the claimant's case.
    client.post(reverse("dispute_withdraw", args=[first_contact_case.pk]))
    first_contact_case.refresh_from_db()
    assert first_contact_case.state == "filed"
    client.logout()
    login(client, claimant)
    response = client.post(reverse("dispute_withdraw", args=[first_contact_case.pk]), {"note": ""})
    first_contact_case.refresh_from_db()
    assert first_contact_case.state == "withdrawn"


def test_attachments_are_read_by_their_side_and_the_managers_only(
    client: Client, first_contact_case: Dispute, claimant: User, rep: User, manager: User
) -> None:
    services.dispute_add_statement(
        actor=claimant, dispute=first_contact_case, text="附件", attachments=[png("证据.png")]
    )
    attachment = DisputeAttachment.objects.get()
    url = reverse("dispute_attachment", args=[attachment.pk])
    login(client, claimant)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "attachment" in response["Content-Disposition"]
    client.logout()
    login(client, rep)
    assert client.get(url).status_code == 404
    detail = client.get(reverse("dispute_detail", args=[first_contact_case.pk]))
    assert "证据.png" not in detail.content.decode()
    client.logout()
    login(client, manager)
    assert client.get(url).status_code == 200


def test_the_ruling_and_appeal_on_the_page(
    client: Client, first_contact_case: Dispute, committee: list[User], rep: User, settings: Any
) -> None:
    settings.DISPUTE_QUORUM = 1
    services.dispute_vote(
        actor=committee[1], dispute=first_contact_case, outcome="award", rationale="先联系有证据"
    )
    login(client, rep)
    url = reverse("dispute_detail", args=[first_contact_case.pk])
    body = client.get(url).content.decode()
    assert "裁决" in body and "判给另一方" in body and "先联系有证据" in body
    assert str(committee[1]) not in body  # who voted what stays private
    response = client.post(
        reverse("dispute_appeal", args=[first_contact_case.pk]), {"text": "复议理由"}
    )
    assert response.status_code == 302
    first_contact_case.refresh_from_db()
    assert first_contact_case.state == "appealed"


def test_the_list_pages_are_scoped_and_constant_in_queries(
    client: Client,
    first_contact_case: Dispute,
    rep: User,
    second_rep: User,
    django_assert_max_num_queries: Any,
) -> None:
    login(client, rep)
    with django_assert_max_num_queries(12):
        body = client.get(reverse("dispute_list"), {"sort": "deadline"}).content.decode()
    assert f"#{first_contact_case.pk}" in body
    client.logout()
    login(client, second_rep)
    assert f"#{first_contact_case.pk}" not in client.get(reverse("dispute_list")).content.decode()


def test_the_report_is_for_administrators_and_the_committee(
    client: Client,
    first_contact_case: Dispute,
    committee: list[User],
    crm_admin: User,
    rep: User,
    settings: Any,
) -> None:
    settings.DISPUTE_QUORUM = 1
    services.dispute_vote(
        actor=committee[1], dispute=first_contact_case, outcome="uphold", rationale="维持"
    )
    login(client, crm_admin)
    body = client.get(reverse("dispute_report")).content.decode()
    assert "争议报表" in body and "100%" in body
    client.logout()
    login(client, committee[0])
    assert client.get(reverse("dispute_report")).status_code == 200
    client.logout()
    login(client, rep)
    assert client.get(reverse("dispute_report")).status_code == 403


def test_the_committee_home_summarises_the_queue(
    client: Client, first_contact_case: Dispute, committee: list[User]
) -> None:
    login(client, committee[1])
    body = client.get(reverse("home")).content.decode()
    assert "等待我投票" in body
    assert reverse("admin:disputes_dispute_changelist") in body


@pytest.mark.parametrize("persona", ["rep", "manager", "committee", "admin"])
def test_the_navigation_links_to_disputes(
    client: Client, personas: dict[str, User], persona: str
) -> None:
    login(client, personas[persona])
    body = client.get(reverse("home")).content.decode()
    target = "dispute_list" if persona in ("rep", "manager") else "dispute_report"
    assert reverse(target) in body
