"""Roles are Django groups (permissions live there); `User.role` names the one a user holds.

Group names are stable identifiers used by migrations; their labels are translated in the UI.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from crm.models import Role

if TYPE_CHECKING:
    from crm.models import User

GROUP_NAMES: dict[str, str] = {
    Role.REP: "sales_rep",
    Role.MANAGER: "sales_manager",
    Role.COMMITTEE: "arbitration_committee",
    Role.ADMIN: "crm_admin",
}

# Roles that work in the Django admin (the committee's queue lives there).
STAFF_ROLES = frozenset({Role.COMMITTEE, Role.ADMIN})

# Model permissions per group: "app_label.codename". Later apps extend this table and a
# migration applies it (see crm.migrations.0002_role_groups and crm.roles.sync_role_groups).
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.REP: (),
    Role.MANAGER: ("crm.view_user", "crm.view_team"),
    Role.COMMITTEE: (
        "crm.view_user",
        "crm.view_team",
        # The dispute queue in the admin: read every case; votes and rulings go through the
        # services (admin views and actions), never through model edits.
        "disputes.view_dispute",
        "disputes.view_disputehistory",
        "disputes.view_disputestatement",
        "disputes.view_disputeattachment",
        "disputes.view_ruling",
        "disputes.view_committeemembership",
    ),
    Role.ADMIN: (
        "crm.view_user",
        "crm.add_user",
        "crm.change_user",
        "crm.view_team",
        "crm.add_team",
        "crm.change_team",
        "crm.delete_team",
        "django_celery_beat.view_periodictask",
        "django_celery_beat.change_periodictask",
        "ownership.view_poolpolicy",
        "ownership.add_poolpolicy",
        "ownership.change_poolpolicy",
        "ownership.delete_poolpolicy",
        "ownership.view_ownershipevent",
        # Territories: drafts are edited in the admin; activation, copy and realignment go
        # through the territory services (admin views and pages).
        "ownership.view_ruleset",
        "ownership.add_ruleset",
        "ownership.change_ruleset",
        "ownership.delete_ruleset",
        "ownership.view_territory",
        "ownership.add_territory",
        "ownership.change_territory",
        "ownership.delete_territory",
        "ownership.view_rulesetactivation",
        "ownership.view_realignment",
        "allocation.view_registration",
        # Administrators name the committee's chair and read the cases.
        "disputes.view_dispute",
        "disputes.view_committeemembership",
        "disputes.add_committeemembership",
        "disputes.change_committeemembership",
        "disputes.delete_committeemembership",
    ),
}


def sync_role_groups(apps: Any = None) -> None:
    """Create the four role groups and give each exactly its permissions (idempotent)."""
    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, group_name in GROUP_NAMES.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        wanted = []
        for dotted in ROLE_PERMISSIONS[role]:
            app_label, codename = dotted.split(".", 1)
            wanted.extend(
                permission_model.objects.filter(
                    content_type__app_label=app_label, codename=codename
                )
            )
        group.permissions.set(wanted)


P = ParamSpec("P")
R = TypeVar("R")


def role_required(*roles: str, admins: bool = True) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Refuse (403) a signed-in user whose role is not one of `roles`. Administrators pass
    too unless `admins=False` (pages that act as the rep themself: register, claim)."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            request = args[0]
            assert isinstance(request, HttpRequest)
            user: User = request.user  # type: ignore[assignment]
            if not user.is_authenticated:
                raise PermissionDenied
            if user.role not in roles and not (admins and user.is_crm_admin):
                raise PermissionDenied
            return view(*args, **kwargs)

        return wrapped

    return decorator


def sync_role_groups_migration(apps: Any, schema_editor: Any) -> None:
    """RunPython body for migrations that add permissions to ROLE_PERMISSIONS."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_role_groups(apps)
