"""Hashing and verification of the ownership ledger's per-customer chains."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet


def event_hash(
    *,
    customer_id: int,
    sequence: int,
    from_owner_id: int | None,
    to_owner_id: int | None,
    kind: str,
    reason: str,
    actor_id: int | None,
    cause_type_id: int | None,
    cause_id: int | None,
    cause_label: str,
    occurred_at: datetime,
    prev_hash: str,
) -> str:
    """SHA-256 over a canonical JSON of the event's content and the previous hash."""
    content = {
        "customer": customer_id,
        "sequence": sequence,
        "from": from_owner_id,
        "to": to_owner_id,
        "kind": kind,
        "reason": reason,
        "actor": actor_id,
        "cause_type": cause_type_id,
        "cause_id": cause_id,
        "cause_label": cause_label,
        # Microsecond UTC timestamps: the same instant always hashes the same way.
        "at": occurred_at.timestamp().__repr__(),
        "prev": prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hash_of(event: Any) -> str:
    return event_hash(
        customer_id=event.customer_id,
        sequence=event.sequence,
        from_owner_id=event.from_owner_id,
        to_owner_id=event.to_owner_id,
        kind=event.kind,
        reason=event.reason,
        actor_id=event.actor_id,
        cause_type_id=event.cause_type_id,
        cause_id=event.cause_id,
        cause_label=event.cause_label,
        occurred_at=event.occurred_at,
        prev_hash=event.prev_hash,
    )


@dataclass(frozen=True)
class ChainProblem:
    customer_id: int
    problem: str


def verify_chains(events: QuerySet[Any], owners: dict[int, int | None]) -> list[ChainProblem]:
    """Walk every chain in (customer, sequence) order; `owners` maps customer id → owner id.

    Streams the events (iterator) so memory stays flat for millions of rows.
    """
    problems: list[ChainProblem] = []
    current: int | None = None
    expected_sequence = 1
    prev_hash = ""
    last_to_owner: int | None = None
    broken = False

    def close(customer_id: int | None) -> None:
        if customer_id is None or broken:
            return
        if owners.get(customer_id) != last_to_owner:
            problems.append(
                ChainProblem(
                    customer_id,
                    f"owner is {owners.get(customer_id)} but the ledger ends with {last_to_owner}",
                )
            )

    seen: set[int] = set()
    for event in events.order_by("customer_id", "sequence").iterator(chunk_size=5000):
        if event.customer_id != current:
            close(current)
            current = event.customer_id
            seen.add(current)
            expected_sequence, prev_hash, broken = 1, "", False
        if broken:
            continue
        if event.sequence != expected_sequence:
            problems.append(
                ChainProblem(event.customer_id, f"event #{expected_sequence} is missing")
            )
            broken = True
            continue
        if event.prev_hash != prev_hash:
            problems.append(
                ChainProblem(event.customer_id, f"event #{event.sequence} does not chain")
            )
            broken = True
            continue
        if hash_of(event) != event.hash:
            problems.append(ChainProblem(event.customer_id, f"event #{event.sequence} was altered"))
            broken = True
            continue
        prev_hash = event.hash
        last_to_owner = event.to_owner_id
        expected_sequence += 1
    close(current)
    for customer_id, owner_id in owners.items():
        if customer_id not in seen and owner_id is not None:
            problems.append(ChainProblem(customer_id, "owned, but no ledger event"))
    return problems
