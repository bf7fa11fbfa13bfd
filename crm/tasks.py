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
