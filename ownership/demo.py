"""Demo data of the ownership review and the funnel report (called by `manage.py seed_demo`).

The workflow apps seed their customers after this app (INSTALLED_APPS order), so the first
review run and funnel snapshot are taken once the whole demo has committed. Idempotent:
nothing happens when a run and a snapshot exist."""

from __future__ import annotations

from contextlib import suppress

from django.db import transaction

from crm.funnel import funnel_snapshot_take
from crm.models import FunnelSnapshot
from ownership.models import ReviewRun
from ownership.review import ReviewAlreadyRunning, review_run


def seed() -> str:
    if ReviewRun.objects.exists() and FunnelSnapshot.objects.exists():
        return "review run and funnel snapshot already there"
    transaction.on_commit(_after_demo)
    return "review run and funnel snapshot once the demo is committed"


def _after_demo() -> None:
    if not ReviewRun.objects.exists():
        # If the nightly run is at it, it produces the same demo figures.
        with suppress(ReviewAlreadyRunning):
            review_run()
    if not FunnelSnapshot.objects.exists():
        funnel_snapshot_take()
