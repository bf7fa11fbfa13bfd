"""Roles are groups with permissions; one service keeps field, group and staff flag in step."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from crm import services
from crm.models import Role, User
from crm.roles import GROUP_NAMES


@pytest.mark.django_db
def test_migration_created_every_role_group_with_permissions() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= set(GROUP_NAMES.values())
    admin_group = Group.objects.get(name=GROUP_NAMES[Role.ADMIN])
    codenames = set(admin_group.permissions.values_list("codename", flat=True))
    assert {"add_user", "change_user", "add_team", "change_team"} <= codenames


def test_changing_role_moves_the_user_between_groups(rep: User) -> None:
    assert list(rep.groups.values_list("name", flat=True)) == [GROUP_NAMES[Role.REP]]
    assert not rep.is_staff
    services.user_set_role(actor=None, user=rep, role=Role.COMMITTEE)
    rep.refresh_from_db()
    assert list(rep.groups.values_list("name", flat=True)) == [GROUP_NAMES[Role.COMMITTEE]]
    assert rep.is_staff
    assert rep.is_committee_member


def test_unknown_role_is_refused(rep: User) -> None:
    with pytest.raises(services.UserError):
        services.user_set_role(actor=None, user=rep, role="king")


def test_duplicate_username_is_refused(rep: User) -> None:
    with pytest.raises(services.UserError, match=r"已被使用|already taken"):
        services.user_create(actor=None, username=rep.username.upper(), password="x" * 12)


def test_team_tree_cannot_become_a_cycle(team: object, other_team: object) -> None:
    from crm.models import Team

    assert isinstance(team, Team) and isinstance(other_team, Team)
    other_team.parent = team
    other_team.save()
    with pytest.raises(services.UserError):
        services.team_check_parent(team=team, parent=other_team)


def test_manager_scope_includes_sub_teams(manager: User, team: object) -> None:
    from crm.selectors import team_members_for
    from tests.factories import TeamFactory, UserFactory

    sub_team = TeamFactory(name="华东一组", parent=team)
    nested_rep = UserFactory(username="nested", team=sub_team)
    assert nested_rep in team_members_for(manager)
