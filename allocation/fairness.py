"""The arithmetic of fair allocation, free of the database (property-tested).

- `balance`: a bulk allocation that spreads every value tier (A/B/C/D) evenly over the
  chosen reps, not only the counts: within each tier, per-rep counts differ by at most one
  unless a rep ran out of capacity.
- `weighted_round_robin`: the automatic distribution of inbound customers, weighted by each
  rep's free capacity (smooth weighted round robin, as nginx balances upstreams).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

TIERS: tuple[str, ...] = ("A", "B", "C", "D")
# How much one customer of a tier weighs when comparing what reps already hold.
TIER_WEIGHTS: dict[str, int] = {"A": 8, "B": 4, "C": 2, "D": 1}


@dataclass(frozen=True)
class Slot:
    """A rep that can take customers: `capacity` free places; lower `rank` is served first
    when everything else is equal (the caller ranks by what the reps already hold)."""

    rep_id: int
    capacity: int
    rank: int = 0


@dataclass
class Plan:
    assignments: list[tuple[int, int]] = field(default_factory=list)  # (customer, rep)
    left_over: list[int] = field(default_factory=list)  # customers nobody could take
    tier_counts: dict[int, dict[str, int]] = field(default_factory=dict)

    def totals(self) -> dict[int, int]:
        return {rep: sum(counts.values()) for rep, counts in self.tier_counts.items()}


def _tier(value: str) -> str:
    return value if value in TIER_WEIGHTS else "D"


def balance(customers: Sequence[tuple[int, str]], slots: Sequence[Slot]) -> Plan:
    """Assign (customer id, tier) pairs to slots, tier by tier, most valuable first.

    Each customer of a tier goes to the rep with free capacity that has the fewest of that
    tier so far, then the fewest in total, then the lowest rank. Consequence (pinned by a
    property test): if rep r ends with two more of a tier than rep s, s was full.
    """
    remaining = {slot.rep_id: max(0, slot.capacity) for slot in slots}
    rank = {slot.rep_id: (slot.rank, index) for index, slot in enumerate(slots)}
    plan = Plan(tier_counts={slot.rep_id: dict.fromkeys(TIERS, 0) for slot in slots})
    totals = dict.fromkeys(remaining, 0)
    by_tier: dict[str, list[int]] = {tier: [] for tier in TIERS}
    for customer_id, tier in customers:
        by_tier[_tier(tier)].append(customer_id)
    for tier in TIERS:
        for customer_id in by_tier[tier]:
            open_slots = [rep for rep, free in remaining.items() if free > 0]
            if not open_slots:
                plan.left_over.append(customer_id)
                continue
            rep = min(open_slots, key=lambda r: (plan.tier_counts[r][tier], totals[r], rank[r]))
            plan.assignments.append((customer_id, rep))
            plan.tier_counts[rep][tier] += 1
            totals[rep] += 1
            remaining[rep] -= 1
    return plan


def weighted_round_robin(customers: Iterable[tuple[int, str]], capacities: dict[int, int]) -> Plan:
    """Deal customers to reps in proportion to their free capacity, never above it.

    Smooth weighted round robin: every turn each rep gains its weight (its free capacity at
    the start), the rep with the most credit takes the customer and pays the total weight.
    A full rep leaves the rotation; with nobody left, customers stay in the pool.
    """
    weights = {rep: cap for rep, cap in capacities.items() if cap > 0}
    remaining = dict(weights)
    credit = dict.fromkeys(weights, 0)
    plan = Plan(tier_counts={rep: dict.fromkeys(TIERS, 0) for rep in capacities})
    for customer_id, tier in customers:
        active = [rep for rep, free in remaining.items() if free > 0]
        if not active:
            plan.left_over.append(customer_id)
            continue
        total = sum(weights[rep] for rep in active)
        for rep in active:
            credit[rep] += weights[rep]
        # Ties go to the larger weight, then the smaller id: deterministic.
        chosen = max(active, key=lambda r: (credit[r], weights[r], -r))
        credit[chosen] -= total
        remaining[chosen] -= 1
        plan.assignments.append((customer_id, chosen))
        plan.tier_counts[chosen][_tier(tier)] += 1
    return plan


def held_value(tier_counts: dict[str, int]) -> int:
    """One number for what a rep holds: A counts 8, B 4, C 2, D 1."""
    return sum(TIER_WEIGHTS[tier] * tier_counts.get(tier, 0) for tier in TIERS)
