"""The holding the cap counts (ownership.services.owned_count)."""

from __future__ import annotations

from dataclasses import replace

from crm.models import Customer, FunnelStage, User
from ownership.models import PoolPolicy
from ownership.selectors import policy_for_owner
from ownership.services import owned_count
from tests.factories import CustomerFactory


def test_the_holding_leaves_out_merged_records_and_won_customers_unless_counted(
    rep: User, second_rep: User, global_pool_policy: PoolPolicy
) -> None:
    kept = [CustomerFactory(owner=rep) for _ in range(4)]
    CustomerFactory(owner=second_rep)
    Customer.objects.filter(pk=kept[0].pk).update(stage=FunnelStage.WON)
    Customer.objects.filter(pk=kept[1].pk).update(merged_into=kept[2])
    policy = policy_for_owner(rep)
    assert not policy.count_won_in_cap
    assert owned_count(rep, policy) == 2
    assert owned_count(rep, replace(policy, count_won_in_cap=True)) == 3
    assert owned_count(second_rep, policy) == 1
