"""Business writes of the people domain. Keyword-only, typed, atomic, with the acting user."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import Language, Role, Team, User
from crm.roles import GROUP_NAMES, STAFF_ROLES


class UserError(DomainError):
    pass


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str,
    role: str = Role.REP,
    team: Team | None = None,
    display_name: str = "",
    email: str = "",
    phone: str = "",
    language: str = Language.ZH_HANS,
) -> User:
    if User.objects.filter(username__iexact=username).exists():
        raise UserError(_("The username %(username)s is already taken.") % {"username": username})
    user = User(
        username=username,
        display_name=display_name,
        email=email,
        phone=phone,
        team=team,
        language=language,
    )
    user.set_password(password)
    user.save()
    user_set_role(actor=actor, user=user, role=role)
    return user


@transaction.atomic
def user_set_role(*, actor: User | None, user: User, role: str) -> User:
    """Give a user exactly one role: the field, the matching group and admin-site access."""
    if role not in Role.values:
        raise UserError(_("Unknown role: %(role)s") % {"role": role})
    user.role = role
    # Superusers keep their staff flag whatever role they are given.
    user.is_staff = role in STAFF_ROLES or user.is_superuser
    user.save(update_fields=["role", "is_staff"])
    role_groups = Group.objects.filter(name__in=GROUP_NAMES.values())
    user.groups.remove(*role_groups)
    group, _created = Group.objects.get_or_create(name=GROUP_NAMES[role])
    user.groups.add(group)
    return user


def user_set_language(*, actor: User, user: User, language: str) -> User:
    if language not in Language.values:
        raise UserError(_("Unsupported language: %(language)s") % {"language": language})
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])
    return user


@transaction.atomic
def team_create(
    *, actor: User | None, name: str, manager: User | None = None, parent: Team | None = None
) -> Team:
    if Team.objects.filter(name=name).exists():
        raise UserError(_("A team named %(name)s already exists.") % {"name": name})
    team = Team.objects.create(name=name, manager=manager, parent=parent)
    if manager is not None and manager.team_id is None:
        manager.team = team
        manager.save(update_fields=["team"])
    return team


def team_check_parent(*, team: Team, parent: Team | None) -> None:
    """Refuse a parent that would make the team tree a cycle."""
    node = parent
    while node is not None:
        if node.pk == team.pk:
            raise UserError(_("The parent team cannot be the team itself or one of its sub-teams."))
        node = node.parent
