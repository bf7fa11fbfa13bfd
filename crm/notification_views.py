"""The bell's pages: the user's notifications, and marking them read."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from crm import notifications
from crm.models import Notification, User


def notification_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    queryset = Notification.objects.filter(recipient=user)
    if request.GET.get("unread") == "1":
        queryset = queryset.filter(read_at__isnull=True)
    page = Paginator(queryset, 25).get_page(request.GET.get("page"))
    query = "unread=1" if request.GET.get("unread") == "1" else ""
    return render(request, "crm/notifications.html", {"page": page, "query": query})


def notification_badge(request: HttpRequest) -> HttpResponse:
    """The bell's unread count, fetched by htmx after the page has loaded."""
    user: User = request.user  # type: ignore[assignment]
    return render(
        request, "crm/_notification_badge.html", {"unread": notifications.unread_count(user)}
    )


@require_POST
def notification_read(request: HttpRequest) -> HttpResponse:
    """Mark one (``id``) or all notifications read; then follow its link or go back."""
    user: User = request.user  # type: ignore[assignment]
    raw_id = request.POST.get("id", "")
    if raw_id.isdigit():
        notifications.mark_read(actor=user, notification_ids=[int(raw_id)])
        target = (
            Notification.objects.filter(pk=int(raw_id), recipient=user)
            .values_list("url", flat=True)
            .first()
        )
        if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
            return redirect(target)
    else:
        notifications.mark_read(actor=user)
    return redirect("notification_list")
