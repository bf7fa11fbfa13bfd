"""Make django-celery-beat's tables match crm.schedules (run on every deploy)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from crm.schedules import SCHEDULES

MANAGED_PREFIX = "guishu:"


class Command(BaseCommand):
    help = "Create, update and disable periodic tasks so that beat runs exactly crm.schedules."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        declared: set[str] = set()
        for schedule in SCHEDULES:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=schedule.crontab.get("minute", "*"),
                hour=schedule.crontab.get("hour", "*"),
                day_of_week=schedule.crontab.get("day_of_week", "*"),
                day_of_month=schedule.crontab.get("day_of_month", "*"),
                month_of_year=schedule.crontab.get("month_of_year", "*"),
                timezone=settings.TIME_ZONE,
            )
            name = MANAGED_PREFIX + schedule.name
            declared.add(name)
            PeriodicTask.objects.update_or_create(
                name=name,
                defaults={
                    "task": schedule.task,
                    "crontab": crontab,
                    "interval": None,
                    "description": schedule.description,
                },
            )
        stale = PeriodicTask.objects.filter(name__startswith=MANAGED_PREFIX).exclude(
            name__in=declared
        )
        removed = stale.count()
        stale.delete()
        self.stdout.write(
            self.style.SUCCESS(f"{len(declared)} schedules in sync, {removed} stale removed.")
        )
