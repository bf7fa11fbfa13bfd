"""Permission-scoped reads of the people domain."""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from crm.models import EmploymentState, Role, Team, User

# One recursive query, so a manager's scope stays a single SQL subquery however deep the tree.
_SUBTREE_SQL = """
    WITH RECURSIVE subtree(id) AS (
        SELECT id FROM crm_team WHERE {root}
        UNION
        SELECT t.id FROM crm_team t JOIN subtree s ON t.parent_id = s.id
    )
    SELECT id FROM subtree
"""


def teams_under(team: Team) -> QuerySet[Team]:
    """The team and every team nested below it."""
    return Team.objects.filter(id__in=RawSQL(_SUBTREE_SQL.format(root="id = %s"), (team.pk,)))


def teams_managed_by(user: User) -> QuerySet[Team]:
    """Teams the user manages, with every team nested below them."""
    return Team.objects.filter(
        id__in=RawSQL(_SUBTREE_SQL.format(root="manager_id = %s"), (user.pk,))
    )


def team_members_for(user: User) -> QuerySet[User]:
    """People a user may see on the team page: a manager sees the teams they manage."""
    base = User.objects.select_related("team").order_by("team__name", "display_name", "username")
    if user.is_crm_admin:
        return base
    if user.is_manager:
        return base.filter(team__in=teams_managed_by(user))
    return base.none()


def active_reps(team: Team) -> QuerySet[User]:
    return User.objects.filter(
        team__in=teams_under(team), role=Role.REP, is_active=True, state=EmploymentState.ACTIVE
    )
