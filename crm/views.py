"""Pages of the people domain: role-aware home, team page, health, language switch, errors."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm import selectors, services
from crm.errors import DomainError
from crm.models import Language, Role, User
from crm.roles import role_required
from crm.security import log_refusal

HOME_TEMPLATES: dict[str, str] = {
    Role.REP: "crm/home_rep.html",
    Role.MANAGER: "crm/home_manager.html",
    Role.COMMITTEE: "crm/home_committee.html",
    Role.ADMIN: "crm/home_admin.html",
}


def home(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    role = Role.ADMIN if user.is_superuser else user.role
    context: dict[str, Any] = {"role": role}
    if role == Role.MANAGER:
        context["members"] = selectors.team_members_for(user)[:20]
    if role == Role.REP:
        # A page that combines: the rep's customers with their ownership clocks.
        from ownership.selectors import owned_by_urgency, policy_for_owner

        rows = owned_by_urgency(user, timezone.now())
        context["page"] = Paginator(rows, 25).get_page(request.GET.get("page"))
        context["warnings"] = sum(1 for row in rows if row.warning)
        context["policy"] = policy_for_owner(user)
        context["owned"] = len(rows)
    return render(request, HOME_TEMPLATES[role], context)


@role_required(Role.MANAGER, Role.ADMIN)
def team(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    members = selectors.team_members_for(user)
    page = Paginator(members, 25).get_page(request.GET.get("page"))
    return render(request, "crm/team.html", {"page": page})


@login_not_required
@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the UI language; for a signed-in user the choice is stored on the user."""
    language = request.POST.get("language", "")
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/"
    if language not in Language.values:
        messages.error(request, _("Unsupported language."))
        return redirect(next_url)
    user = request.user
    if user.is_authenticated:
        try:
            services.user_set_language(actor=user, user=user, language=language)
        except DomainError as error:
            messages.error(request, error.message)
    translation.activate(language)
    response = HttpResponseRedirect(next_url)
    response.set_cookie("django_language", language, max_age=365 * 24 * 3600, samesite="Lax")
    return response


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Reachability of PostgreSQL and Redis, for load balancers and `make run`."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
        checks["database"] = f"error: {type(error).__name__}"
    try:
        from django.core.cache import cache

        cache.set("healthz", "1", timeout=5)
        checks["redis"] = "ok" if cache.get("healthz") == "1" else "error: no round trip"
    except Exception as error:  # noqa: BLE001
        checks["redis"] = f"error: {type(error).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    log_refusal(request, 403)
    return render(request, "403.html", status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Selectors answer 404 for someone else's records: a refused authorisation too.
    log_refusal(request, 404)
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    # No context processors that may touch the failing database: a static page.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render({}), status=500)
