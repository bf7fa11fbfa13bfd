"""Create (or complete) the demo organisation. Safe to run any number of times."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from crm import services
from crm.demo import DEMO_CUSTOMERS, DEMO_PASSWORD, DEMO_PEOPLE, DEMO_TEAMS
from crm.models import Customer, FollowUpKind, Industry, Role, Source, Team, User


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
        customers = self.seed_customers()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo organisation ready ({created} people, {customers} customers created)."
            )
        )

    def seed_customers(self) -> int:
        """Demo customers with contacts and follow-ups; owners are set as a bulk import would."""
        created = 0
        now = timezone.now()
        for index, demo in enumerate(DEMO_CUSTOMERS):
            ref = f"DEMO-{index + 1:03d}"
            if Customer.objects.filter(external_ref=ref).exists():
                continue
            owner = User.objects.get(username=demo.owner) if demo.owner else None
            customer = services.customer_create(
                actor=owner,
                display_name=demo.name,
                address=demo.address,
                phone=demo.phone,
                industry=Industry.objects.filter(name=demo.industry).first(),
                value_tier=demo.tier,
                source=Source.IMPORT,
                external_ref=ref,
                owner=owner,
            )
            actor = owner or User.objects.get(username="admin")
            services.contact_add(
                actor=actor,
                customer=customer,
                name=demo.contact,
                title="采购经理",
                mobile=f"139{index + 1:08d}",
            )
            stages = [stage for stage in (25, 50, 75, 100) if stage <= demo.stage] or [0]
            for step, stage in enumerate(stages):
                services.follow_up_log(
                    actor=actor,
                    customer=customer,
                    kind=FollowUpKind.CALL if step % 2 == 0 else FollowUpKind.VISIT,
                    happened_at=now - timedelta(days=3 * (len(stages) - step) + index % 5),
                    summary=f"与{demo.contact}沟通需求，进展到 {stage}%。",
                    next_step="发送方案并约下次拜访",
                    stage_after=stage,
                )
            created += 1
        return created
