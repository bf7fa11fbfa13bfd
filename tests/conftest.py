"""Named personas used across the suites: a rep, a second rep, a manager, a committee
member and an administrator, in one team (and an outsider team for the second rep's peer)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from crm.models import Role, Team, User
from tests.factories import TeamFactory, UserFactory


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """Mark the throw-away test database so transactional tests may empty the ledger with
    TRUNCATE between tests (the ledger's trigger refuses it everywhere else)."""
    from django.db import connection

    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            name = connection.ops.quote_name(connection.settings_dict["NAME"])
            cursor.execute(f"ALTER DATABASE {name} SET guishu.test_database = 'on'")
            # Transactional tests empty every table (TRUNCATE) and Django then recreates
            # only content types and permissions; with --reuse-db the next session would
            # start without the rows data migrations seeded. Put them back.
            import importlib

            from django.apps import apps

            from crm.roles import sync_role_groups
            from ownership.selectors import global_policy

            sync_role_groups()
            global_policy()
            importlib.import_module("crm.migrations.0005_seed_industries").seed(apps, None)
        # The setting applies to new sessions only.
        connection.close()


@pytest.fixture(autouse=True)
def fast_password_hasher(settings: Any) -> None:
    # PBKDF2's deliberate slowness costs ~0.3 s per persona; tests need no protection.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def global_pool_policy(db: None) -> Any:
    """The global default pool policy (transactional tests' flush removes the seeded row)."""
    from ownership.selectors import global_policy

    return global_policy()


@pytest.fixture
def team(db: None) -> Team:
    return TeamFactory(name="华东销售部")


@pytest.fixture
def other_team(db: None) -> Team:
    return TeamFactory(name="华北销售部")


@pytest.fixture
def manager(team: Team) -> User:
    user = UserFactory(username="manager", display_name="陈经理", role=Role.MANAGER, team=team)
    team.manager = user
    team.save(update_fields=["manager"])
    return user


@pytest.fixture
def rep(team: Team, manager: User) -> User:
    return UserFactory(username="rep", display_name="王小明", role=Role.REP, team=team)


@pytest.fixture
def second_rep(team: Team, manager: User) -> User:
    return UserFactory(username="rep2", display_name="李娜", role=Role.REP, team=team)


@pytest.fixture
def committee_member(db: None) -> User:
    return UserFactory(username="committee", display_name="孙委员", role=Role.COMMITTEE)


@pytest.fixture
def crm_admin(db: None) -> User:
    return UserFactory(username="crmadmin", display_name="管理员", role=Role.ADMIN)


@pytest.fixture
def personas(
    rep: User, second_rep: User, manager: User, committee_member: User, crm_admin: User
) -> dict[str, User]:
    return {
        "rep": rep,
        "second_rep": second_rep,
        "manager": manager,
        "committee": committee_member,
        "admin": crm_admin,
    }


def login(client: Client, user: User) -> Client:
    # force_login: axes' backend needs a request, which Client.login() does not pass.
    client.force_login(user)
    return client


@pytest.fixture
def rep_client(client: Client, rep: User) -> Client:
    return login(client, rep)
