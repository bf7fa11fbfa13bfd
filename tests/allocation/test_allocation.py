"""Allocation from the pool (分配): suggestions with reasons, one-by-one, balanced bulk and
automatic distribution — every owner change through the ownership writer."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from allocation import selectors, services
from allocation.models import AllocationBatch, AllocationMethod
from crm.models import Customer, EmploymentState, FollowUp, Industry, Notification, Role, Team, User
from ownership.models import EventKind, OwnershipEvent, PoolPolicy
from ownership.services import ownership_recycle
from tests.factories import CustomerFactory, UserFactory


def _pool(count: int, tier: str = "C", **kwargs: Any) -> list[Customer]:
    return [CustomerFactory(value_tier=tier, **kwargs) for _ in range(count)]


def _won(rep: User, **kwargs: Any) -> Customer:
    """A customer the rep won: a follow-up by the rep moved it to 100%."""
    customer = CustomerFactory(owner=rep, **kwargs)
    FollowUp.objects.create(
        customer=customer,
        kind="visit",
        happened_at=timezone.now() - timedelta(days=10),
        summary="签约",
        stage_before=75,
        stage_after=100,
        by=rep,
    )
    Customer.objects.filter(pk=customer.pk).update(stage=100)
    return customer


def _industry() -> Industry:
    # Created here: transactional tests may have emptied the seeded industries.
    industry, _created = Industry.objects.get_or_create(
        code="test-machinery", defaults={"name": "测试机械行业"}
    )
    return industry


@pytest.fixture
def reps(team: Team, manager: User, global_pool_policy: PoolPolicy) -> list[User]:
    return [
        UserFactory(username=f"r{i}", display_name=f"销售{i}", role=Role.REP, team=team)
        for i in range(3)
    ]


def test_profiles_explain_capacity_wins_holdings_and_recycles(
    rep: User, second_rep: User, team: Team, global_pool_policy: PoolPolicy
) -> None:
    industry = _industry()
    _won(rep, province="江苏省", industry=industry)
    CustomerFactory(owner=rep, value_tier="A")
    recycled = CustomerFactory(owner=second_rep)
    ownership_recycle(customer=recycled, reason="30 天未跟进", now=timezone.now())
    profiles = {p.rep.pk: p for p in selectors.rep_profiles(team, timezone.now())}
    mine = profiles[rep.pk]
    assert (mine.owned_total, mine.wins_recent, mine.tiers["A"]) == (2, 1, 1)
    assert mine.free == global_pool_policy.max_owned - 1  # won customers do not count
    assert mine.won_industries[industry.pk] == 1 and mine.won_provinces["江苏省"] == 1
    assert profiles[second_rep.pk].recycles_recent == 1
    texts = [reason.text for reason in selectors.profile_reasons(profiles[second_rep.pk])]
    assert any("被回收" in text for text in texts)
    assert any("空余容量" in text for text in texts)


def test_suggestions_prefer_matching_industry_and_region_and_say_why(
    rep: User, second_rep: User, team: Team, global_pool_policy: PoolPolicy
) -> None:
    industry = _industry()
    for _ in range(3):
        _won(rep, province="江苏省", industry=industry)
    # Equal holdings otherwise: second_rep holds three ordinary customers.
    for _ in range(3):
        CustomerFactory(owner=second_rep)
    created = CustomerFactory(province="江苏省", industry=industry)
    customer = selectors.team_pool(team).get(pk=created.pk)
    rows = selectors.suggestions_for([customer], selectors.rep_profiles(team, timezone.now()))
    best = rows[0].suggestions[0]
    assert best.profile.rep == rep
    texts = " ".join(reason.text for reason in best.reasons)
    assert industry.name in texts and "江苏省" in texts


def test_inactive_departing_and_capped_reps_are_never_suggested_or_chosen(
    manager: User, team: Team, reps: list[User], global_pool_policy: PoolPolicy
) -> None:
    active, departing, inactive = reps
    User.objects.filter(pk=departing.pk).update(state=EmploymentState.DEPARTING)
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    capped = UserFactory(username="capped", role=Role.REP, team=team)
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=3, warning_days=1)
    _pool(3, owner=capped)
    customers = _pool(6)
    profiles = selectors.rep_profiles(team, timezone.now())
    excluded = {p.rep.pk: p.excluded for p in profiles if not p.eligible}
    assert set(excluded) == {departing.pk, inactive.pk, capped.pk}
    assert excluded[departing.pk] == "即将离职"
    for row in selectors.suggestions_for(customers, profiles):
        assert {s.profile.rep.pk for s in row.suggestions} == {active.pk}
    # Bulk with every rep ticked: only the eligible one receives.
    plan, _profiles = selectors.bulk_plan(team, customers, [r.pk for r in [*reps, capped]])
    assert {rep for _c, rep in plan.assignments} == {active.pk}
    outcome = services.distribute_pool_customers(actor=manager, team=team, customers=customers)
    assert {rep.pk for _c, rep in outcome.allocated} == {active.pk}
    assert len(outcome.allocated) == 3 and len(outcome.left_in_pool) == 3
    assert "留在公海" in outcome.left_message


def test_allocate_one_goes_through_the_ownership_writer(
    manager: User, rep: User, team: Team, global_pool_policy: PoolPolicy
) -> None:
    (customer,) = _pool(1)
    batch = services.allocate_one(actor=manager, team=team, customer=customer, rep=rep)
    customer.refresh_from_db()
    assert customer.owner == rep and customer.clock_started_at is not None
    event = OwnershipEvent.objects.get(customer=customer)
    assert (event.kind, event.actor, event.cause) == (EventKind.ALLOCATED, manager, batch)
    assert batch.method == AllocationMethod.MANUAL
    assert Notification.objects.get(recipient=rep).kind == "customers_allocated"


def test_allocate_one_refuses_outside_the_managers_teams(
    manager: User, other_rep: User, other_team: Team, rep: User, team: Team
) -> None:
    (customer,) = _pool(1)
    with pytest.raises(services.NotAllowed):
        services.allocate_one(actor=manager, team=other_team, customer=customer, rep=other_rep)
    with pytest.raises(services.NotAllowed):
        services.allocate_one(actor=manager, team=team, customer=customer, rep=other_rep)
    with pytest.raises(services.NotAllowed):
        services.allocate_one(actor=rep, team=team, customer=customer, rep=rep)
    customer.refresh_from_db()
    assert customer.owner is None and not AllocationBatch.objects.exists()


def test_bulk_allocation_balances_tiers_not_only_counts(
    manager: User, team: Team, reps: list[User], django_capture_on_commit_callbacks: Any
) -> None:
    customers = _pool(3, "A") + _pool(3, "B") + _pool(6, "D")
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.allocate_bulk(actor=manager, team=team, customers=customers, reps=reps)
    assert len(outcome.allocated) == 12 and not outcome.refused
    per_rep: dict[int, Counter[str]] = {rep.pk: Counter() for rep in reps}
    for customer, rep in outcome.allocated:
        per_rep[rep.pk][customer.value_tier] += 1
    for counts in per_rep.values():
        assert (counts["A"], counts["B"], counts["D"]) == (1, 1, 2)
    events = OwnershipEvent.objects.filter(kind=EventKind.ALLOCATED)
    assert events.count() == 12
    assert {e.cause for e in events} == {outcome.batch}
    assert outcome.batch is not None and outcome.batch.allocated == 12
    # Each rep is told once about the batch.
    assert Notification.objects.filter(kind="customers_allocated").count() == 3
    assert len(mail.outbox) == 3


def test_bulk_allocation_reports_a_customer_claimed_meanwhile(
    manager: User, team: Team, reps: list[User], second_rep: User
) -> None:
    customers = _pool(2)
    from ownership.services import ownership_claim

    ownership_claim(actor=second_rep, customer=customers[0])
    outcome = services.allocate_bulk(actor=manager, team=team, customers=customers, reps=reps)
    assert len(outcome.allocated) == 1 and len(outcome.refused) == 1
    assert "负责人已变更" in outcome.refused[0][1]


def test_distribution_leaves_customers_in_the_pool_when_nobody_has_room(
    manager: User, team: Team, rep: User, second_rep: User, global_pool_policy: PoolPolicy
) -> None:
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=1, warning_days=1)
    CustomerFactory(owner=rep)
    CustomerFactory(owner=second_rep)
    customers = _pool(2)
    outcome = services.distribute_pool_customers(actor=manager, team=team, customers=customers)
    assert outcome.allocated == [] and len(outcome.left_in_pool) == 2
    assert outcome.left_message.startswith("2 个客户留在公海")
    assert Customer.objects.filter(owner__isnull=True).count() == 2


def test_distribution_is_weighted_by_free_capacity(
    manager: User, team: Team, rep: User, second_rep: User, global_pool_policy: PoolPolicy
) -> None:
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=4, warning_days=1)
    CustomerFactory(owner=second_rep)
    CustomerFactory(owner=second_rep)  # second_rep: 2 free, rep: 4 free
    outcome = services.distribute_pool_customers(actor=manager, team=team, customers=_pool(6))
    counts = Counter(rep_.pk for _c, rep_ in outcome.allocated)
    assert counts == {rep.pk: 4, second_rep.pk: 2}


def test_team_overview_in_a_constant_number_of_queries(
    team: Team, reps: list[User], rep: User, second_rep: User, django_assert_max_num_queries: Any
) -> None:
    for index, person in enumerate([*reps, rep, second_rep]):
        for _ in range(index + 1):
            CustomerFactory(owner=person, value_tier="ABCD"[index % 4])
    # Clocks that end this week (already due, not yet recycled): no follow-up for 31 days.
    Customer.objects.filter(owner=rep).update(clock_started_at=timezone.now() - timedelta(days=31))
    with django_assert_max_num_queries(8):
        rows, pool_size = selectors.team_overview(team, timezone.now())
    row = next(r for r in rows if r.rep == rep)
    assert row.due_this_week == row.owned == 4 and row.cap == 50
    assert pool_size == 0
