"""Team pools: with an active rule set, a pool customer belongs to the pool of the team(s)
responsible for its territory; the rest is the national pool, visible to all."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from allocation import selectors
from crm.models import Customer, Role, Team, User
from ownership.models import RuleSet
from tests.allocation.territory_setup import ADDRESS, activate_rule_set
from tests.conftest import login
from tests.factories import CustomerFactory, TeamFactory, UserFactory


def _pool_customer(where: str, name: str) -> Customer:
    return CustomerFactory(display_name=name, address=ADDRESS[where])


@pytest.fixture
def pool(db: None) -> dict[str, Customer]:
    """Pool customers in the north team's territories, the east team's, and none."""
    return {
        "north": _pool_customer("beijing", "北京公海一号科技有限公司"),
        "north_routed": _pool_customer("tianjin", "天津公海二号物流有限公司"),
        "east": _pool_customer("shanghai", "上海公海三号贸易有限公司"),
        "national": _pool_customer("chongqing", "重庆公海四号食品有限公司"),
    }


def _names(queryset: Any) -> set[str]:
    return set(queryset.values_list("display_name", flat=True))


def test_without_a_rule_set_the_whole_pool_is_national(
    pool: dict[str, Customer], rep: User, other_rep: User, other_team: Team
) -> None:
    everyone = {customer.display_name for customer in pool.values()}
    assert _names(selectors.pool_for(rep)) == everyone
    assert _names(selectors.pool_for(other_rep)) == everyone
    assert _names(selectors.team_pool(other_team)) == everyone


def test_each_team_sees_its_territories_and_the_national_pool(
    pool: dict[str, Customer],
    rep: User,
    other_rep: User,
    team: Team,
    other_team: Team,
    manager: User,
    crm_admin: User,
    territories: RuleSet,
) -> None:
    north = {pool["north"].display_name, pool["north_routed"].display_name}
    east = {pool["east"].display_name}
    national = {pool["national"].display_name}
    assert _names(selectors.pool_for(rep)) == east | national
    assert _names(selectors.pool_for(manager)) == east | national
    assert _names(selectors.pool_for(other_rep)) == north | national
    assert _names(selectors.team_pool(team)) == east | national
    assert _names(selectors.team_pool(other_team)) == north | national
    # Administrators, and the team-less view of the pool, see every pool.
    assert _names(selectors.pool_for(crm_admin)) == north | east | national
    assert _names(selectors.team_pool(None)) == north | east | national


def test_a_sub_team_sees_its_parent_teams_territory_pool(
    pool: dict[str, Customer], other_team: Team, territories: RuleSet
) -> None:
    sub_team = TeamFactory(name="华北一组", parent=other_team)
    sub_rep = UserFactory(username="subrep", role=Role.REP, team=sub_team)
    assert pool["north"].display_name in _names(selectors.pool_for(sub_rep))
    assert pool["north"].display_name in _names(selectors.team_pool(sub_team))
    # A manager of the parent team sees the pools of the teams under them too.
    director = UserFactory(username="director", role=Role.MANAGER)
    region = TeamFactory(name="北方大区", manager=director)
    Team.objects.filter(pk=other_team.pk).update(parent=region)
    assert pool["north"].display_name in _names(selectors.pool_for(director))


def test_the_rule_sets_default_team_owns_the_pool_of_unmatched_customers(
    pool: dict[str, Customer],
    rep: User,
    other_rep: User,
    team: Team,
    other_team: Team,
    crm_admin: User,
) -> None:
    activate_rule_set(actor=crm_admin, east=team, north=other_team, default_team=other_team)
    unmatched = pool["national"].display_name
    assert unmatched in _names(selectors.pool_for(other_rep))
    assert unmatched not in _names(selectors.pool_for(rep))
    # A customer not resolved yet (no territory record) counts as unmatched too.
    late = Customer.objects.filter(pk=pool["east"].pk)
    from ownership.models import CustomerTerritory

    CustomerTerritory.objects.filter(customer__in=late).delete()
    assert pool["east"].display_name in _names(selectors.pool_for(other_rep))


def test_claiming_from_another_teams_pool_is_refused(
    client: Client, pool: dict[str, Customer], rep: User, territories: RuleSet
) -> None:
    login(client, rep)
    page = client.get(reverse("pool")).content.decode()
    assert pool["east"].display_name in page
    assert pool["national"].display_name in page
    assert pool["north"].display_name not in page
    target = pool["north"]
    response = client.post(reverse("pool_claim"), {"customer": [str(target.pk)]}, follow=True)
    body = response.content.decode()
    assert "只有该团队的销售可以领取" in body and "华北销售部" in body
    target.refresh_from_db()
    assert target.owner is None
    # Its own pool still claims.
    client.post(reverse("pool_claim"), {"customer": [str(pool["east"].pk)]})
    assert Customer.objects.get(pk=pool["east"].pk).owner == rep


def test_allocation_offers_and_takes_only_the_teams_pool(
    client: Client,
    pool: dict[str, Customer],
    manager: User,
    rep: User,
    team: Team,
    territories: RuleSet,
) -> None:
    login(client, manager)
    page = client.get(reverse("allocation_pool"), {"team": team.pk}).content.decode()
    assert pool["east"].display_name in page
    assert pool["north"].display_name not in page
    response = client.post(
        reverse("allocation_one"),
        {"team": team.pk, "customer": pool["north"].pk, "rep": rep.pk},
        follow=True,
    )
    assert "该客户已不在公海" in response.content.decode()
    assert Customer.objects.get(pk=pool["north"].pk).owner is None


def test_pool_page_queries_stay_constant_with_territories(
    client: Client, rep: User, territories: RuleSet, django_assert_max_num_queries: Any
) -> None:
    login(client, rep)
    client.get(reverse("pool"))  # the compiled rule set is cached per process
    counts = []
    for count in (1, 10, 40):
        while Customer.objects.count() < count:
            where = ("shanghai", "beijing", "chongqing")[Customer.objects.count() % 3]
            CustomerFactory(address=ADDRESS[where])
        with django_assert_max_num_queries(12) as captured:
            response = client.get(reverse("pool"))
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1] == counts[2], counts
