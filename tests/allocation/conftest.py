"""Fixtures of the request and allocation suites: a second team with its own manager and
rep, a customer owned by the rep, e-mail captured by the test backend."""

from __future__ import annotations

from typing import Any

import pytest

from crm.models import Customer, Role, Team, User
from tests.factories import CustomerFactory, UserFactory


@pytest.fixture(autouse=True)
def captured_mail(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


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


@pytest.fixture
def owned(rep: User, global_pool_policy: Any) -> Customer:
    """A customer of the rep (registered through the ownership writer)."""
    return CustomerFactory(owner=rep, display_name="苏州恒远机械股份有限公司", value_tier="B")


@pytest.fixture
def territories(crm_admin: User, team: Team, other_team: Team, global_pool_policy: Any) -> Any:
    """An active rule set: 北京 needs the north team's approval, 天津 is routed to its pool,
    广东 is open to all (the north team's), 上海 is the east team's (tests.allocation.
    territory_setup)."""
    from tests.allocation.territory_setup import activate_rule_set

    return activate_rule_set(actor=crm_admin, east=team, north=other_team)
