"""Thin Celery tasks of the allocation app."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(acks_late=True)
def expire_requests() -> int:
    """Expire reassignment requests past their date. Idempotent and set-based: a second
    run, or two at once, expires nothing more."""
    from allocation.services import requests_expire

    return requests_expire(now=timezone.now())
