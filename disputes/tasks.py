"""Thin Celery tasks of the disputes app."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(acks_late=True)
def send_deadline_reminders() -> dict[str, int]:
    """Remind members before a deadline, escalate overdue cases to the chair, close decided
    cases that can no longer be appealed. Idempotent: a second run sends nothing again."""
    from disputes.services import disputes_check_deadlines

    run = disputes_check_deadlines(now=timezone.now())
    return {"reminded": run.reminded, "escalated": run.escalated, "closed": run.closed}
