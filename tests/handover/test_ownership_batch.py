"""The ownership writer's batch form used by the handover (`ownership_hand_over_many`): the
same trail as one-by-one hand-overs — a verifiable hash chain, the clock restarted, shares
revoked — and the same refusals."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from guardian.shortcuts import assign_perm

from crm.models import Customer, EmploymentState, User
from crm.selectors import customers_visible_to
from ownership import services as ownership
from ownership.models import EventKind, OwnershipEvent
from tests.factories import CustomerFactory


@pytest.fixture
def customers(rep: User, global_pool_policy: Any) -> list[Customer]:
    return [CustomerFactory(owner=rep, stage=25) for _ in range(5)]


def test_a_batch_leaves_a_verifiable_ledger_and_restarts_clocks(
    rep: User, second_rep: User, third_colleague: User, customers: list[Customer]
) -> None:
    # Half of them already have a longer history.
    ownership.ownership_release(actor=rep, customer=customers[0], reason="无需求")
    ownership.ownership_claim(actor=rep, customer=customers[0])
    assign_perm("crm.view_shared_customer", third_colleague, customers[1])
    now = timezone.now()
    result = ownership.ownership_hand_over_many(
        actor=None,
        moves=[
            ownership.HandOverMove(
                customer_id=c.pk, to_rep=second_rep, from_owner=rep, reason="离职交接", cause=c
            )
            for c in customers
        ],
        now=now,
    )
    assert set(result.events) == {c.pk for c in customers} and result.refused == {}
    call_command("verify_ledger")  # raises CommandError on a broken chain
    for customer in customers:
        customer.refresh_from_db()
        assert customer.owner == second_rep
        assert customer.owned_since == now and customer.clock_started_at == now
        event = OwnershipEvent.objects.filter(customer=customer).latest("sequence")
        assert (event.kind, event.from_owner, event.cause) == (EventKind.HANDED_OVER, rep, customer)
    # The previous owner's share ends with the ownership.
    assert not customers_visible_to(third_colleague).filter(pk=customers[1].pk).exists()


def test_customers_that_left_meanwhile_are_refused_alone(
    rep: User, second_rep: User, customers: list[Customer]
) -> None:
    ownership.ownership_release(actor=rep, customer=customers[2], reason="无需求")
    result = ownership.ownership_hand_over_many(
        actor=None,
        moves=[
            ownership.HandOverMove(customer_id=c.pk, to_rep=second_rep, from_owner=rep, reason="x")
            for c in customers
        ],
    )
    assert list(result.refused) == [customers[2].pk]
    assert len(result.events) == 4
    customers[2].refresh_from_db()
    assert customers[2].owner is None


@pytest.mark.parametrize("change", [{"state": EmploymentState.DEPARTING}, {"is_active": False}])
def test_an_ineligible_successor_refuses_the_whole_batch(
    rep: User, second_rep: User, customers: list[Customer], change: dict[str, Any]
) -> None:
    User.objects.filter(pk=second_rep.pk).update(**change)
    second_rep.refresh_from_db()
    with pytest.raises(ownership.OwnerNotEligible):
        ownership.ownership_hand_over_many(
            actor=None,
            moves=[
                ownership.HandOverMove(
                    customer_id=c.pk, to_rep=second_rep, from_owner=rep, reason="x"
                )
                for c in customers
            ],
        )
    assert Customer.objects.filter(owner=rep).count() == 5
    assert not OwnershipEvent.objects.filter(kind=EventKind.HANDED_OVER).exists()


@pytest.fixture
def third_colleague(team: Any, manager: User) -> User:
    from tests.factories import UserFactory

    return UserFactory(username="rep7", role="rep", team=team)
