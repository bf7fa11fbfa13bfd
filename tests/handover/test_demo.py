"""The demo shows a departure in progress with tasks in several states; seeding is
idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from crm.models import EmploymentState, User
from handover import demo
from handover.models import Departure, HandoverTask


@pytest.mark.django_db
def test_the_demo_has_a_departure_in_progress_with_tasks_in_several_states(
    settings: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("seed_demo")
    departure = Departure.objects.get(leaver__username="rep_zhang")
    assert departure.state == "in_progress"
    states = set(HandoverTask.objects.filter(departure=departure).values_list("state", flat=True))
    assert {
        "moved_at_once",
        "proposed",
        "accepted",
        "refused",
        "done_by_leaver",
        "confirmed",
    } <= states
    assert User.objects.get(username="rep_zhang").state == EmploymentState.DEPARTING
    tasks = HandoverTask.objects.count()
    assert demo.seed() == "departure already there"
    call_command("seed_demo")
    assert HandoverTask.objects.count() == tasks
