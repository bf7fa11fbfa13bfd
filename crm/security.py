"""Login brute-force protection (django-axes hooks): tiered, finite cool-off and a 429 page;
the security log of refused authorisations, also in the admin."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

security_log = logging.getLogger("guishu.security")
_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


def log_refusal(request: HttpRequest, status: int) -> None:
    """One line per refused authorisation: status, method, path, user and time."""
    user = getattr(request, "user", None)
    security_log.warning(
        "refused %s %s %s user=%s at=%s",
        status,
        request.method,
        request.path,
        getattr(user, "username", "") or "anonymous",
        timezone.now().isoformat(),
    )


class GuishuAdminSite(AdminSite):
    """Django's admin site, except that a signed-in user without admin access is logged
    when the admin turns them away. Django answers them with a redirect to the admin's login
    page, which the 403/404 handlers (the site's refusal log) never see."""

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        guarded = super().admin_view(view, cacheable)

        @wraps(guarded)
        def logged(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            refused = (
                request.user.is_authenticated
                and not self.has_permission(request)
                # Signing out of the admin is not a refusal (Django sends them to the index).
                and request.path != reverse("admin:logout", current_app=self.name)
            )
            response = guarded(request, *args, **kwargs)
            if refused:
                log_refusal(request, response.status_code)
            return response

        return cast(_View, logged)


def _attempt_failures(request: HttpRequest | None) -> int:
    if request is None:
        return 0
    from axes.helpers import get_client_username
    from axes.models import AccessAttempt

    username = get_client_username(request)
    address = getattr(request, "axes_ip_address", None)
    if not username or not address:
        return 0
    failures = (
        AccessAttempt.objects.filter(username=username, ip_address=address)
        .values_list("failures_since_start", flat=True)
        .first()
    )
    return failures or 0


def login_cool_off(request: HttpRequest | None = None) -> timedelta:
    """15 minutes after the 5th failure, 1 hour after the 10th, 24 hours after the 15th.

    Finite on purpose: axes' default locks forever, which turns a typo storm into a help-desk
    ticket; escalation still makes guessing impractical.
    """
    tiers: list[timedelta] = settings.LOGIN_COOL_OFF_TIERS
    failures = _attempt_failures(request)
    tier = max(0, failures // settings.AXES_FAILURE_LIMIT - 1)
    return tiers[min(tier, len(tiers) - 1)]


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    cool_off = login_cool_off(request)
    minutes = max(1, int(cool_off.total_seconds() // 60))
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": minutes},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
