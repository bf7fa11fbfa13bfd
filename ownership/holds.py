"""Pool holds: customers nobody owns that are nevertheless not in the pool.

A workflow app that keeps an unowned customer out of the pool for a while (the allocation
app, while a registration waits for a manager's approval) registers a hold here from its
AppConfig.ready(); the ownership writer then refuses to claim or allocate such a customer,
and pool reads exclude it. This app never imports the workflow apps: it only calls what
they registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm.models import Customer


@dataclass(frozen=True)
class PoolHold:
    # A subquery of held customer ids (never a Python list).
    customer_ids: Callable[[], Any]
    # Why `customer` is held, in the words a refusal shows.
    message: Callable[[Customer], str]


_HOLDS: dict[str, PoolHold] = {}


def register_pool_hold(
    name: str, *, customer_ids: Callable[[], Any], message: Callable[[Customer], str]
) -> None:
    """The hook for workflow apps (registering again under the same name replaces)."""
    _HOLDS[name] = PoolHold(customer_ids=customer_ids, message=message)


def held_customer_ids() -> list[Any]:
    """One subquery per registered hold, for pool reads: `.exclude(pk__in=...)` each."""
    return [hold.customer_ids() for hold in _HOLDS.values()]


def hold_message(customer: Customer) -> str:
    """Why `customer` is held out of the pool, or "" when it is not (one query per hold)."""
    for hold in _HOLDS.values():
        if Customer.objects.filter(pk=customer.pk, pk__in=hold.customer_ids()).exists():
            return hold.message(customer)
    return ""
