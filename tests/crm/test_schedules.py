from __future__ import annotations

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from crm.celery import app
from crm.schedules import SCHEDULES


@pytest.mark.django_db
def test_sync_schedules_matches_the_code_and_is_idempotent() -> None:
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(
        name="guishu:obsolete", task="crm.tasks.gone", interval=every_minute
    )
    call_command("sync_schedules")
    call_command("sync_schedules")
    managed = PeriodicTask.objects.filter(name__startswith="guishu:")
    names = set(managed.values_list("name", flat=True))
    assert names == {f"guishu:{s.name}" for s in SCHEDULES}


def test_every_scheduled_task_is_registered() -> None:
    app.loader.import_default_modules()
    for schedule in SCHEDULES:
        assert schedule.task in app.tasks, schedule.task


def test_tasks_are_acknowledged_late_and_requeued_on_worker_loss() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
