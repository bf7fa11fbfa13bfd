"""The one notification mechanism of Guishu: in-app (the bell) and e-mail, in each
recipient's language. Every app calls `notify`; none sends mail by itself."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from crm.models import Notification, User


def _render(kind: str, context: dict[str, Any], language: str) -> tuple[str, str]:
    with translation.override(language):
        title = render_to_string(f"emails/{kind}_subject.txt", context).strip()
        body = render_to_string(f"emails/{kind}.txt", context).strip()
    return " ".join(title.split())[:200], body


@transaction.atomic
def notify(
    *,
    recipients: Iterable[User],
    kind: str,
    context: dict[str, Any],
    url: str = "",
    dedup_key: str = "",
    email: bool = True,
) -> list[Notification]:
    """Notify each recipient once. With `dedup_key`, a repeat for the same (recipient, kind,
    key) is silently skipped — also under concurrency (a unique index decides). E-mails are
    sent by a Celery task after the transaction commits, only for new notifications."""
    created: list[Notification] = []
    for recipient in {user.pk: user for user in recipients}.values():
        if not recipient.is_active:
            continue
        title, body = _render(kind, {**context, "recipient": recipient}, recipient.language)
        if dedup_key:
            notification, was_created = Notification.objects.get_or_create(
                recipient=recipient,
                kind=kind,
                dedup_key=dedup_key,
                defaults={"title": title, "body": body, "url": url},
            )
        else:
            notification = Notification.objects.create(
                recipient=recipient, kind=kind, title=title, body=body, url=url
            )
            was_created = True
        if not was_created:
            continue
        created.append(notification)
        if email and recipient.email:
            from crm.tasks import send_notification_email

            # celery-types does not know delay_on_commit (Celery ≥ 5.4) yet.
            send_notification_email.delay_on_commit(notification.pk)  # type: ignore[attr-defined]
    return created


def send_email(notification_id: int, context: dict[str, Any] | None = None) -> bool:
    """Send one notification's e-mail (subject / text / HTML) once. Safe to retry: the row
    is claimed with a conditional UPDATE before the side effect, so two workers never both
    send it."""
    claimed = Notification.objects.filter(pk=notification_id, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    if claimed != 1:
        return False
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    recipient = notification.recipient
    with translation.override(recipient.language):
        html = render_to_string(
            "emails/base.html",
            {"notification": notification, "recipient": recipient, "site_url": settings.SITE_URL},
        )
    message = EmailMultiAlternatives(
        subject=notification.title,
        body=notification.body
        + (f"\n\n{settings.SITE_URL}{notification.url}" if notification.url else ""),
        to=[recipient.email],
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:
        # Give the row back so a retry may send it.
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)
        raise
    return True


def mark_read(*, actor: User, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the actor's notifications read (all of them when no ids are given)."""
    queryset = Notification.objects.filter(recipient=actor, read_at__isnull=True)
    if notification_ids is not None:
        queryset = queryset.filter(pk__in=list(notification_ids))
    return queryset.update(read_at=timezone.now())


def unread_count(user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
