"""Role-aware navigation for the base layout."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.http import HttpRequest
from django.urls import get_script_prefix, get_urlconf
from django.urls import reverse as reverse_uncached
from django.utils.translation import gettext_lazy as _

from crm.models import Role


@lru_cache(maxsize=256)
def _reverse(name: str, urlconf: str | None, prefix: str) -> str:
    return reverse_uncached(name, urlconf=urlconf)


def reverse(name: str) -> str:
    """A navigation link, reversed once per process (and URLconf and script prefix, which
    are all its answer depends on): every page shows the menu."""
    return _reverse(name, get_urlconf(), get_script_prefix())


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
    if user.role == Role.MANAGER:
        items.append(
            {"label": _("Approvals"), "url": reverse("request_queue"), "name": "request_queue"}
        )
        items.append(
            {"label": _("Allocation"), "url": reverse("allocation_pool"), "name": "allocation_pool"}
        )
        items.append(
            {"label": _("Team overview"), "url": reverse("team_overview"), "name": "team_overview"}
        )
    if user.role == Role.REP:
        items.append(
            {"label": _("My requests"), "url": reverse("request_list"), "name": "request_list"}
        )
    if user.role in (Role.MANAGER, Role.ADMIN) or user.is_superuser:
        items.append(
            {"label": _("Funnel report"), "url": reverse("funnel_report"), "name": "funnel_report"}
        )
        items.append(
            {
                "label": _("Ownership review"),
                "url": reverse("review_run_list"),
                "name": "review_run_list",
            }
        )
        items.append(
            {
                "label": _("My territories") if user.role == Role.MANAGER else _("Territories"),
                "url": reverse("territory_mine"),
                "name": "territory_mine",
            }
        )
    if user.role == Role.MANAGER or user.is_crm_admin:
        items.append(
            {
                "label": _("Departures"),
                "url": reverse("handover_departure_list"),
                "name": "handover_departure_list",
            }
        )
    if user.role == Role.REP:
        items.append(
            {
                "label": _("Handovers"),
                "url": reverse("handover_incoming"),
                "name": "handover_incoming",
            }
        )
    if user.role in (Role.REP, Role.MANAGER):
        items.append(
            {"label": _("Disputes"), "url": reverse("dispute_list"), "name": "dispute_list"}
        )
    if user.role in (Role.COMMITTEE, Role.ADMIN) or user.is_superuser:
        items.append(
            {
                "label": _("Dispute report"),
                "url": reverse("dispute_report"),
                "name": "dispute_report",
            }
        )
    if user.is_staff:
        items.append({"label": _("Admin"), "url": reverse("admin:index"), "name": "admin"})
    return items


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = _nav_for(user)
    match = getattr(request, "resolver_match", None)
    current = match.url_name if match is not None else None
    for item in items:
        item["active"] = item["name"] == current
    return {"nav_items": items}
