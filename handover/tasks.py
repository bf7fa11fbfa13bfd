"""Thin Celery tasks of the handover app."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(acks_late=True)
def finish_due_departures() -> dict[str, int]:
    """The daily last-day job: move what has not moved, deactivate who has left, remind
    about overdue tasks. Idempotent and set-based: a second run, or two at once, moves
    nothing more and notifies nobody twice."""
    from handover.services import departures_finish_due, tasks_remind_overdue

    now = timezone.now()
    moved = departures_finish_due(now=now)
    reminded = tasks_remind_overdue(now=now)
    return {"moved": moved, "reminded": reminded}
