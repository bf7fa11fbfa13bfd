"""Ownership pages: the explanation of who owns a customer, since when and why."""

from __future__ import annotations

from datetime import datetime, time

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from crm.models import User
from crm.selectors import customer_for
from ownership import selectors


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
