"""Template tags other apps' pages use to show disputes without importing this app in
Python: the customer page's badge and button, the committee's home summary."""

from __future__ import annotations

from typing import Any

from django import template

from crm.models import Customer, Role, User
from disputes import selectors

register = template.Library()


@register.inclusion_tag("disputes/_customer_badge.html")
def dispute_badge(customer: Customer) -> dict[str, Any]:
    """ "Under dispute" on a customer whose case waits for a ruling (one EXISTS query)."""
    return {"under_dispute": selectors.is_under_dispute(customer)}


@register.inclusion_tag("disputes/_customer_button.html")
def dispute_button(customer: Customer, user: User) -> dict[str, Any]:
    """ "File a dispute" for a rep about a customer they may dispute (not merged)."""
    show = (
        user.is_authenticated
        and user.role == Role.REP
        and customer.merged_into_id is None
        and selectors.customers_disputable_by(user).filter(pk=customer.pk).exists()
    )
    return {"show": show, "customer": customer}


@register.simple_tag
def committee_queue_summary(user: User) -> selectors.QueueSummary:
    return selectors.committee_summary(user)
