"""Keep each customer's territory current when crm changes the facts rules look at."""

from __future__ import annotations

from typing import Any

from crm.models import Customer
from ownership.territories import services


def refresh_customer_territory(sender: Any, *, customer: Customer, **kwargs: Any) -> None:
    services.customer_territory_refresh(customer=customer)


def resolve_created_customers(sender: Any, *, customer_ids: list[int], **kwargs: Any) -> None:
    services.customer_territories_recompute(customer_ids=customer_ids)
