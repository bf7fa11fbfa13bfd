"""Ownership pages: the explanation of who owns a customer, since when and why."""

from __future__ import annotations

from datetime import datetime, time

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.errors import DomainError
from crm.models import User
from crm.selectors import customer_for
from ownership import selectors, services


def customer_ownership(request: HttpRequest, pk: int) -> HttpResponse:
    """The ownership timeline, "who owned it on date D" and the clock of one customer."""
    user: User = request.user  # type: ignore[assignment]
    customer = customer_for(user, pk)
    events = list(selectors.ledger_for(customer))
    clock = selectors.clock_for(customer)
    now = timezone.now()
    context: dict[str, object] = {
        "customer": customer,
        "events": events,
        "clock": clock,
        "days_left": clock.days_left(now),
        "policy": selectors.policy_for_owner(customer.owner) if customer.owner_id else None,
    }
    raw_date = request.GET.get("on", "").strip()
    if raw_date:
        day = parse_date(raw_date) if len(raw_date) == 10 else None
        if day is None:
            context["date_error"] = _("Enter a date as YYYY-MM-DD.")
        else:
            # End of that day in the user's time zone: "who owned it on D" includes D.
            moment = timezone.make_aware(datetime.combine(day, time.max))
            owner, event = selectors.owner_at(customer, moment)
            context.update({"on_date": day, "owner_on_date": owner, "event_on_date": event})
    return render(request, "ownership/customer_ownership.html", context)


@require_http_methods(["GET", "POST"])
def customer_sharing(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner shares read access with colleagues of the team (and takes it back)."""
    user: User = request.user  # type: ignore[assignment]
    customer = customer_for(user, pk)
    if customer.owner_id != user.pk:
        raise PermissionDenied
    candidates = selectors.share_candidates(user)
    if request.method == "POST":
        colleague = candidates.filter(pk=request.POST.get("colleague") or 0).first()
        action = request.POST.get("action")
        if colleague is None or action not in {"share", "unshare"}:
            messages.error(request, _("Choose a colleague from your team."))
        else:
            try:
                if action == "share":
                    services.customer_share(actor=user, customer=customer, colleague=colleague)
                    messages.success(
                        request, _("%(name)s can now read this customer.") % {"name": colleague}
                    )
                else:
                    services.customer_unshare(actor=user, customer=customer, colleague=colleague)
                    messages.success(
                        request, _("%(name)s can no longer read it.") % {"name": colleague}
                    )
            except DomainError as error:
                messages.error(request, error.message)
        return redirect("customer_sharing", pk=customer.pk)
    return render(
        request,
        "ownership/customer_sharing.html",
        {
            "customer": customer,
            "shared": selectors.shared_with(customer),
            "candidates": candidates,
        },
    )
