"""Thin Celery tasks of the ownership app."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.utils.dateparse import parse_datetime

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def run_ownership_review(
    dry_run: bool = False, as_of: str | None = None, actor_id: int | None = None
) -> dict[str, Any]:
    """The nightly review (crm/schedules.py). Safe to redeliver: a run that finds another
    one holding the lock does nothing, and a rerun after a crash resumes where it stopped."""
    from crm.models import User
    from ownership.review import ReviewAlreadyRunning, review_run

    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    try:
        run = review_run(
            dry_run=dry_run, as_of=parse_datetime(as_of) if as_of else None, actor=actor
        )
    except ReviewAlreadyRunning as error:
        logger.warning("ownership review skipped: %s", error.message)
        return {"skipped": error.message}
    return {"run": run.pk, "status": run.status, "counts": run.counts}


@shared_task(acks_late=True)
def resolve_missing_territories() -> int:
    """Hourly (crm/schedules.py): customers without a territory under the active rule set
    get one. Set-based and idempotent."""
    from ownership.territories.services import customer_territories_catch_up

    return customer_territories_catch_up()


@shared_task(acks_late=True)
def activate_rule_set(rule_set_id: int, actor_id: int | None = None) -> None:
    """A rule set's activation over a large customer base, with progress for the admin page.
    Safe to redeliver: activating the active set again is refused and recorded as such."""
    from ownership.territories.services import rule_set_activate_with_progress

    rule_set_activate_with_progress(rule_set_id=rule_set_id, actor_id=actor_id)
