from __future__ import annotations

import pytest
from django.core.management import call_command

from crm.demo import DEMO_PASSWORD, demo_logins
from crm.models import Role, Team, User


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_complete() -> None:
    call_command("seed_demo")
    call_command("seed_demo")
    assert Team.objects.count() >= 2
    assert User.objects.filter(role=Role.REP).count() >= 6
    assert User.objects.filter(role=Role.MANAGER).count() >= 2
    assert User.objects.filter(role=Role.COMMITTEE).count() >= 3
    assert User.objects.filter(role=Role.ADMIN).count() >= 1
    assert all(team.manager_id for team in Team.objects.all())
    for username, password, _label in demo_logins():
        assert password == DEMO_PASSWORD
        assert User.objects.get(username=username).check_password(password)
