"""Effective pool policies: the nearest policy up the team tree, in one query."""

from __future__ import annotations

from typing import Any

from crm.models import Team
from ownership.models import PoolPolicy
from ownership.selectors import effective_policy, policy_for_owner
from tests.factories import TeamFactory, UserFactory


def test_the_nearest_policy_up_the_tree_wins_in_one_query(
    global_pool_policy: PoolPolicy, django_assert_num_queries: Any
) -> None:
    region = TeamFactory(name="华东大区")
    city = TeamFactory(name="上海分部", parent=region)
    group = TeamFactory(name="浦东小组", parent=city)
    PoolPolicy.objects.create(team=region, max_owned=80, days_without_follow_up=45)
    rep = UserFactory(team=group)
    with django_assert_num_queries(1):
        policy = policy_for_owner(rep)
    assert (policy.max_owned, policy.days_without_follow_up) == (80, 45)
    assert policy.levels["max_owned"] == "团队 华东大区"
    PoolPolicy.objects.create(team=city, max_owned=60)
    assert effective_policy(group).max_owned == 60
    assert effective_policy(group).levels["max_owned"] == "团队 上海分部"
    # Above the policy's team, and beside the tree, the global default applies.
    assert effective_policy(region).max_owned == 80
    plain = effective_policy(TeamFactory(name="独立组"))
    assert plain.max_owned == global_pool_policy.max_owned
    assert plain.levels["max_owned"] == "全局默认"
    assert effective_policy(None).max_owned == global_pool_policy.max_owned


def test_a_team_cycle_ends_the_walk_as_before(global_pool_policy: PoolPolicy) -> None:
    first = TeamFactory(name="甲组")
    second = TeamFactory(name="乙组", parent=first)
    # A cycle is never saved through the admin; the lookup must still end.
    Team.objects.filter(pk=first.pk).update(parent=second)
    first.refresh_from_db()
    assert effective_policy(first).max_owned == global_pool_policy.max_owned
    PoolPolicy.objects.create(team=second, max_owned=7)
    assert effective_policy(first).max_owned == 7


def test_a_missing_global_default_comes_back(db: None) -> None:
    PoolPolicy.objects.filter(team__isnull=True, territory__isnull=True).delete()
    team = TeamFactory(name="无默认组")
    assert effective_policy(team).max_owned == PoolPolicy._meta.get_field("max_owned").default
    assert PoolPolicy.objects.filter(team__isnull=True, territory__isnull=True).count() == 1
