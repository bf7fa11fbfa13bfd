"""Create (or complete) the demo organisation. Safe to run any number of times."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from crm import services
from crm.demo import DEMO_PASSWORD, DEMO_PEOPLE, DEMO_TEAMS
from crm.models import Role, Team, User


class Command(BaseCommand):
    help = "Seed the demo organisation (teams, reps, managers, committee, administrator)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        created = 0
        teams: dict[str, Team] = {}
        for name, parent_name, _manager in DEMO_TEAMS:
            parent = teams.get(parent_name) if parent_name else None
            teams[name], _ = Team.objects.get_or_create(name=name, defaults={"parent": parent})
        for person in DEMO_PEOPLE:
            user = User.objects.filter(username=person.username).first()
            if user is None:
                user = services.user_create(
                    actor=None,
                    username=person.username,
                    password=DEMO_PASSWORD,
                    role=person.role,
                    team=teams.get(person.team) if person.team else None,
                    display_name=person.display_name,
                    email=f"{person.username}@demo.guishu.local",
                )
                created += 1
            if person.role == Role.ADMIN and not user.is_superuser:
                user.is_superuser = True
                user.save(update_fields=["is_superuser"])
                services.user_set_role(actor=None, user=user, role=Role.ADMIN)
        for name, _parent, manager_username in DEMO_TEAMS:
            team = teams[name]
            if team.manager_id is None:
                team.manager = User.objects.get(username=manager_username)
                team.save(update_fields=["manager"])
        # Each app that has demo data seeds it (crm knows no other app by name).
        reports = [f"{created} people"]
        # The periodic jobs' demo (review run, funnel snapshot) reads what the workflow apps
        # seeded, so apps whose demo runs jobs go last.
        configs = sorted(apps.get_app_configs(), key=lambda c: c.name == "ownership")
        for config in configs:
            if config.name == "crm" or importlib.util.find_spec(f"{config.name}.demo") is None:
                continue
            module = importlib.import_module(f"{config.name}.demo")
            if hasattr(module, "seed"):
                reports.append(f"{config.label}: {module.seed()}")
        self.stdout.write(self.style.SUCCESS("Demo organisation ready: " + "; ".join(reports)))
