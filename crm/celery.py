"""The Celery application. Every periodic schedule is declared in crm/schedules.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("guishu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
