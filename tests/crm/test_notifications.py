"""The shared notification mechanism: in-app + e-mail, once, in the recipient's language."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from crm import notifications
from crm.models import Notification, User
from tests.conftest import login


@pytest.fixture(autouse=True)
def eager_celery(settings: object) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True  # type: ignore[attr-defined]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # type: ignore[attr-defined]


def test_notify_creates_one_row_and_one_email_per_recipient(
    rep: User, second_rep: User, django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        created = notifications.notify(
            recipients=[rep, second_rep, rep],
            kind="message",
            context={"title": "转移申请已批准", "text": "客户已转到您名下。"},
            url="/customers/1/",
        )
    assert len(created) == 2
    assert Notification.objects.filter(recipient=rep).count() == 1
    assert sorted(m.to[0] for m in mail.outbox) == sorted([rep.email, second_rep.email])
    message = mail.outbox[0]
    assert message.subject == "转移申请已批准"
    assert "/customers/1/" in message.body
    assert message.alternatives and "text/html" in message.alternatives[0][1]


def test_dedup_key_sends_only_once(rep: User, django_capture_on_commit_callbacks: object) -> None:
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
            notifications.notify(
                recipients=[rep],
                kind="message",
                context={"title": "提醒", "text": "即将回收"},
                dedup_key="customer:1:window:2026-11-30",
            )
    assert Notification.objects.filter(recipient=rep).count() == 1
    assert len(mail.outbox) == 1


def test_email_is_claimed_before_sending_so_a_retry_does_not_resend(rep: User) -> None:
    notification = Notification.objects.create(recipient=rep, kind="message", title="t", body="b")
    assert notifications.send_email(notification.pk) is True
    assert notifications.send_email(notification.pk) is False
    assert len(mail.outbox) == 1


def test_inactive_users_are_not_notified(rep: User) -> None:
    rep.is_active = False
    rep.save(update_fields=["is_active"])
    assert notifications.notify(recipients=[rep], kind="message", context={}) == []


def test_bell_shows_unread_count_and_pages_mark_read(client: Client, rep: User) -> None:
    notifications.notify(
        recipients=[rep], kind="message", context={"title": "甲", "text": "一"}, email=False
    )
    notifications.notify(
        recipients=[rep],
        kind="message",
        context={"title": "乙", "text": "二"},
        email=False,
        url="/pool/",
    )
    login(client, rep)
    badge = client.get(reverse("notification_badge")).content.decode()
    assert '<span class="badge text-bg-warning">2<span class="visually-hidden"> 未读' in badge
    page = client.get(reverse("notification_list")).content.decode()
    assert "甲" in page and "乙" in page
    opened = Notification.objects.get(title="乙")
    response = client.post(reverse("notification_read"), {"id": opened.pk})
    assert response.status_code == 302 and response["Location"] == "/pool/"
    assert notifications.unread_count(rep) == 1
    client.post(reverse("notification_read"))
    assert notifications.unread_count(rep) == 0


def test_users_cannot_read_or_mark_others_notifications(
    client: Client, rep: User, second_rep: User
) -> None:
    notifications.notify(
        recipients=[rep], kind="message", context={"title": "私密", "text": "x"}, email=False
    )
    login(client, second_rep)
    assert "私密" not in client.get(reverse("notification_list")).content.decode()
    other = Notification.objects.get(recipient=rep)
    client.post(reverse("notification_read"), {"id": other.pk})
    other.refresh_from_db()
    assert other.read_at is None


def test_email_uses_the_recipients_language(
    rep: User, django_capture_on_commit_callbacks: object
) -> None:
    rep.language = "en"
    rep.save(update_fields=["language"])
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        notifications.notify(recipients=[rep], kind="message", context={"title": "Hi", "text": "x"})
    html = mail.outbox[0].alternatives[0][0]
    assert 'lang="en"' in html
    assert "Open in Guishu" not in html  # no url given: no link
    assert "who owns which customer" in html
