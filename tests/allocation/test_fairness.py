"""The arithmetic of fair allocation (pure functions): properties over any input."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from allocation.fairness import TIERS, Slot, balance, held_value, weighted_round_robin

tiers = st.lists(st.sampled_from(TIERS), max_size=80)
capacities = st.lists(st.integers(min_value=0, max_value=25), min_size=1, max_size=10)


@given(customer_tiers=tiers, caps=capacities)
def test_balance_spreads_every_tier_within_one_where_capacity_allows(
    customer_tiers: list[str], caps: list[int]
) -> None:
    customers = list(enumerate(customer_tiers, start=1))
    slots = [Slot(rep_id=100 + i, capacity=cap, rank=i) for i, cap in enumerate(caps)]
    plan = balance(customers, slots)
    assigned = Counter(rep for _customer, rep in plan.assignments)
    # Every customer exactly once: assigned or left over.
    placed = [c for c, _r in plan.assignments] + plan.left_over
    assert sorted(placed) == [c for c, _t in customers]
    # Never above a rep's capacity; nobody left over while someone has room.
    capacity = {slot.rep_id: slot.capacity for slot in slots}
    assert all(assigned[rep] <= capacity[rep] for rep in capacity)
    assert len(plan.assignments) == min(len(customers), sum(caps))
    full = {rep for rep in capacity if assigned[rep] == capacity[rep]}
    # The fairness property: per tier, counts differ by at most one unless the rep
    # with fewer was full.
    for tier in TIERS:
        for r in capacity:
            for s in capacity:
                gap = plan.tier_counts[r][tier] - plan.tier_counts[s][tier]
                assert gap <= 1 or s in full, (tier, r, s, plan.tier_counts)


@given(customer_tiers=tiers, caps=capacities)
def test_balance_totals_differ_by_at_most_one_when_nobody_is_full(
    customer_tiers: list[str], caps: list[int]
) -> None:
    slots = [Slot(rep_id=i + 1, capacity=cap + len(customer_tiers)) for i, cap in enumerate(caps)]
    plan = balance(list(enumerate(customer_tiers)), slots)
    totals = [sum(plan.tier_counts[slot.rep_id].values()) for slot in slots]
    assert max(totals) - min(totals) <= 1


def test_balance_gives_the_extra_customer_to_the_lower_rank_first() -> None:
    plan = balance([(1, "A"), (2, "A"), (3, "A")], [Slot(7, 10, rank=1), Slot(8, 10, rank=0)])
    assert plan.tier_counts[8]["A"] == 2 and plan.tier_counts[7]["A"] == 1


@given(count=st.integers(min_value=0, max_value=120), caps=capacities)
def test_weighted_round_robin_respects_capacity_and_fills_it_first(
    count: int, caps: list[int]
) -> None:
    capacity = {i + 1: cap for i, cap in enumerate(caps)}
    plan = weighted_round_robin(((c, "C") for c in range(count)), capacity)
    assigned = Counter(rep for _c, rep in plan.assignments)
    assert all(assigned[rep] <= cap for rep, cap in capacity.items())
    assert all(rep in capacity and capacity[rep] > 0 for rep in assigned)
    assert len(plan.assignments) == min(count, sum(caps))
    assert len(plan.left_over) == count - len(plan.assignments)


@given(caps=capacities)
def test_weighted_round_robin_is_proportional_to_free_capacity(caps: list[int]) -> None:
    # Dealing exactly the total capacity fills everyone; half of it is dealt in proportion.
    capacity = {i + 1: cap for i, cap in enumerate(caps)}
    total = sum(caps)
    half = total // 2
    plan = weighted_round_robin(((c, "B") for c in range(half)), capacity)
    assigned = Counter(rep for _c, rep in plan.assignments)
    for rep, cap in capacity.items():
        expected = half * cap / total if total else 0
        assert abs(assigned[rep] - expected) <= 1.0 + 1e-9, (rep, assigned, capacity)


def test_weighted_round_robin_interleaves_instead_of_filling_one_rep() -> None:
    plan = weighted_round_robin(((c, "C") for c in range(6)), {1: 4, 2: 2})
    assert [rep for _c, rep in plan.assignments] == [1, 2, 1, 1, 2, 1]


def test_held_value_weighs_tiers() -> None:
    assert held_value({"A": 1, "B": 1, "C": 1, "D": 1}) == 15
