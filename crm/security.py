"""Login brute-force protection (django-axes hooks): tiered, finite cool-off and a 429 page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


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
