"""The deadline task: reminders before the deadline, escalation of overdue cases to the
chair, closing decided cases after the appeal window — each once, however often it runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core import mail
from django.utils import timezone

from crm.models import Notification, User
from crm.schedules import SCHEDULES
from disputes import services
from disputes.models import Dispute
from disputes.tasks import send_deadline_reminders


def test_the_schedule_is_declared() -> None:
    assert any(s.task == "disputes.tasks.send_deadline_reminders" for s in SCHEDULES)


def test_reminders_go_once_to_members_who_have_not_voted(
    first_contact_case: Dispute,
    committee: list[User],
    django_capture_on_commit_callbacks: Any,
) -> None:
    chair, zhou, wu = committee
    services.dispute_vote(actor=zhou, dispute=first_contact_case, outcome="award", rationale="x")
    Dispute.objects.filter(pk=first_contact_case.pk).update(
        deadline=timezone.now() + timedelta(hours=5)
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        first = send_deadline_reminders()
    second = send_deadline_reminders()
    assert first["reminded"] == 2 and second["reminded"] == 0
    reminded = set(
        Notification.objects.filter(kind="dispute_reminder").values_list("recipient", flat=True)
    )
    assert reminded == {chair.pk, wu.pk}
    assert len(mail.outbox) == 2 and "提醒" in mail.outbox[0].subject


def test_overdue_cases_are_escalated_to_the_chair_once(
    first_contact_case: Dispute, committee: list[User]
) -> None:
    Dispute.objects.filter(pk=first_contact_case.pk).update(
        deadline=timezone.now() - timedelta(minutes=1)
    )
    assert send_deadline_reminders()["escalated"] == 1
    assert send_deadline_reminders()["escalated"] == 0
    (note,) = Notification.objects.filter(kind="dispute_escalated")
    assert note.recipient == committee[0] and "主席" in note.body
    assert Dispute.objects.get(pk=first_contact_case.pk).escalated_at is not None


def test_decided_cases_close_after_the_appeal_window(
    first_contact_case: Dispute, committee: list[User], settings: Any
) -> None:
    settings.DISPUTE_QUORUM = 1
    services.dispute_vote(
        actor=committee[1], dispute=first_contact_case, outcome="uphold", rationale="x"
    )
    assert send_deadline_reminders()["closed"] == 0
    Dispute.objects.filter(pk=first_contact_case.pk).update(
        appeal_until=timezone.now() - timedelta(minutes=1)
    )
    assert send_deadline_reminders()["closed"] == 1
    assert send_deadline_reminders()["closed"] == 0
    case = Dispute.objects.get(pk=first_contact_case.pk)
    assert case.state == "closed"
    assert case.history.order_by("-id").first().actor is None


def test_overdue_cases_in_the_review_s_anomaly_shape(
    first_contact_case: Dispute, rep: User
) -> None:
    from disputes.selectors import overdue_anomalies
    from ownership.models import ReviewAction

    assert overdue_anomalies(timezone.now()).count == 0
    later = first_contact_case.deadline + timedelta(minutes=1)
    result = overdue_anomalies(later)
    assert result.action == ReviewAction.DISPUTE_OVERDUE and result.count == 1
    (item,) = result.items
    assert item.customer_id == first_contact_case.customer_id
    assert item.rep_id == rep.pk and item.team_id == rep.team_id
    assert f"#{first_contact_case.pk}" in item.detail
