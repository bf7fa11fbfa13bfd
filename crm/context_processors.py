"""Role-aware navigation for the base layout."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.models import Role


def _nav_for(user: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [{"label": _("Home"), "url": reverse("home"), "name": "home"}]
    if user.role in (Role.REP, Role.MANAGER, Role.ADMIN) or user.is_superuser:
        items.append(
            {"label": _("Customers"), "url": reverse("customer_list"), "name": "customer_list"}
        )
    if user.role == Role.REP:
        items.append({"label": _("Register"), "url": reverse("register"), "name": "register"})
    if user.role in (Role.REP, Role.MANAGER):
        items.append({"label": _("Public pool"), "url": reverse("pool"), "name": "pool"})
    if user.role in (Role.MANAGER, Role.ADMIN) or user.is_superuser:
        items.append({"label": _("My team"), "url": reverse("team"), "name": "team"})
    if user.is_staff:
        items.append({"label": _("Admin"), "url": reverse("admin:index"), "name": "admin"})
    return items


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    from crm.notifications import unread_count

    return {"nav_items": _nav_for(user), "unread_notifications": unread_count(user)}
