"""Thin Celery tasks of the crm app."""

from __future__ import annotations

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task(acks_late=True)
def clear_expired_sessions() -> int:
    """Idempotent: deleting what has expired twice deletes nothing the second time."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task(acks_late=True)
def run_import_job(job_id: int) -> None:
    """Preview or import an uploaded customer file; a job already claimed is left alone."""
    from crm.importer import import_job_run

    import_job_run(job_id=job_id)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_notification_email(notification_id: int) -> bool:
    from crm.notifications import send_email

    return send_email(notification_id)


@shared_task(acks_late=True)
def take_weekly_funnel_snapshot() -> int:
    """Weekly (crm/schedules.py): last week's funnel snapshot and the managers' summaries;
    a second run in the same week reuses the snapshot and sends nothing again."""
    from crm.funnel import funnel_weekly_snapshot

    return funnel_weekly_snapshot().pk


@shared_task(acks_late=True)
def take_funnel_snapshot(actor_id: int | None = None) -> int:
    """An on-demand snapshot asked for from the report page."""
    from crm.funnel import funnel_snapshot_take
    from crm.models import User

    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    return funnel_snapshot_take(actor=actor).pk


@shared_task(acks_late=True)
def refresh_name_parts() -> int:
    """Nightly (crm/schedules.py): re-stamp stored parsed names another parser version made."""
    from crm.services import customer_name_parts_refresh

    return customer_name_parts_refresh()
