"""Fixtures of the handover suites: a leaving rep with customers at every funnel stage, two
colleagues in the same team, another team with its manager, e-mail captured."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from crm import services as crm_services
from crm.models import Customer, FollowUpKind, Role, Team, User
from tests.factories import CustomerFactory, UserFactory


@pytest.fixture(autouse=True)
def captured_mail(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def leaver(rep: User) -> User:
    return rep


@pytest.fixture
def successor(second_rep: User) -> User:
    return second_rep


@pytest.fixture
def third_rep(team: Team, manager: User) -> User:
    return UserFactory(username="rep3", display_name="张伟", role=Role.REP, team=team)


@pytest.fixture
def other_manager(other_team: Team) -> User:
    user = UserFactory(
        username="othermgr", display_name="赵经理", role=Role.MANAGER, team=other_team
    )
    other_team.manager = user
    other_team.save(update_fields=["manager"])
    return user


@pytest.fixture
def other_rep(other_team: Team, other_manager: User) -> User:
    return UserFactory(username="otherrep", display_name="刘洋", role=Role.REP, team=other_team)


def make_customers(owner: User, stages: list[int], prefix: int = 0) -> list[Customer]:
    """Customers of `owner` at the given stages, each with a contact and a promised next step."""
    customers = []
    for index, stage in enumerate(stages):
        customer = CustomerFactory(owner=owner, stage=stage)
        crm_services.contact_add(
            actor=owner, customer=customer, name=f"联系人{prefix + index}", mobile=""
        )
        if stage:
            crm_services.follow_up_log(
                actor=owner,
                customer=customer,
                kind=FollowUpKind.CALL,
                happened_at=timezone.now() - timedelta(days=1),
                summary="电话沟通",
                next_step=f"下周发送方案{prefix + index}",
            )
        customers.append(customer)
    return customers


@pytest.fixture
def book(leaver: User, global_pool_policy: Any) -> list[Customer]:
    """Two customers at every stage: 0, 25, 50, 75, 100."""
    return make_customers(leaver, [0, 0, 25, 25, 50, 50, 75, 75, 100, 100])


def in_days(days: int) -> date:
    return timezone.localdate() + timedelta(days=days)
