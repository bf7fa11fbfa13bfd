"""Territory writes: activation (validated, recorded, recomputing), customers' territories
kept current, per-territory clocks, and realignment (preview = what is applied)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from crm import services as crm_services
from crm.models import Customer, Industry, Team, User
from ownership.models import (
    CustomerTerritory,
    EventKind,
    OwnershipEvent,
    PoolPolicy,
    RuleSet,
    RuleSetStatus,
    Territory,
)
from ownership.selectors import clock_for, owned_by_urgency
from ownership.territories import selectors
from ownership.territories import services as territories
from tests.factories import CustomerFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

BEIJING_ADDRESS = "北京市海淀区中关村大街1号"
SHANGHAI_ADDRESS = "上海市浦东新区世纪大道100号"
GUANGZHOU_ADDRESS = "广东省广州市天河区体育西路1号"


@pytest.fixture
def north(other_team: Team) -> Team:
    return other_team  # 华北销售部


@pytest.fixture
def draft(team: Team, north: Team) -> RuleSet:
    """华北 (北京) → 北京软件 (software only); 华东 (上海) for the east team."""
    rule_set = RuleSet.objects.create(name="2027 版")
    beijing = Territory.objects.create(rule_set=rule_set, name="华北", division_codes=["11"])
    beijing.teams.set([north])
    software = Territory.objects.create(rule_set=rule_set, name="北京软件", parent=beijing)
    software.industries.set([software_industry()])
    east = Territory.objects.create(rule_set=rule_set, name="华东", division_codes=["310000"])
    east.teams.set([team])
    return rule_set


def software_industry() -> Industry:
    industry, _created = Industry.objects.get_or_create(
        code="software-test", defaults={"name": "软件（测试）"}
    )
    return industry


def territory(rule_set: RuleSet, name: str) -> Territory:
    return Territory.objects.get(rule_set=rule_set, name=name)


def test_activation_records_itself_retires_the_previous_set_and_resolves_everyone(
    draft: RuleSet, crm_admin: User, rep: User
) -> None:
    beijing = CustomerFactory(address=BEIJING_ADDRESS)
    shanghai = CustomerFactory(address=SHANGHAI_ADDRESS)
    nowhere = CustomerFactory(address=GUANGZHOU_ADDRESS)
    activation = territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    assert activation.customers_resolved >= 3
    assert activation.activated_by == crm_admin
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.ACTIVE and draft.activated_at is not None
    records = {r.customer_id: r for r in CustomerTerritory.objects.all()}
    assert records[beijing.pk].territory == territory(draft, "华北")
    assert records[shanghai.pk].territory == territory(draft, "华东")
    assert records[nowhere.pk].territory is None  # the default (national pool)

    PoolPolicy.objects.create(territory=territory(draft, "华东"), days_without_follow_up=12)
    second = territories.rule_set_copy(actor=crm_admin, source=draft, name="第二版")
    assert PoolPolicy.objects.get(territory=territory(second, "华东")).days_without_follow_up == 12
    assert second.status == RuleSetStatus.DRAFT
    assert second.territories.count() == draft.territories.count()
    copied_child = territory(second, "北京软件")
    assert copied_child.parent == territory(second, "华北")
    assert list(copied_child.industries.all()) == [software_industry()]
    again = territories.rule_set_activate(actor=crm_admin, rule_set=second)
    assert again.previous == draft
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.RETIRED
    assert RuleSet.objects.filter(status=RuleSetStatus.ACTIVE).get() == second
    assert CustomerTerritory.objects.get(customer=beijing).territory == territory(second, "华北")


def test_activation_is_refused_while_undecided_overlaps_or_problems_exist(
    draft: RuleSet, crm_admin: User, north: Team
) -> None:
    clash = Territory.objects.create(rule_set=draft, name="北京制造", division_codes=["1101"])
    clash.teams.set([north])
    with pytest.raises(territories.RuleSetInvalid) as refused:
        territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    assert refused.value.overlaps and not refused.value.problems
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.DRAFT
    assert not CustomerTerritory.objects.exists()

    clash.priority = 50  # decided by priority now
    clash.division_codes = ["1101", "999999"]  # ... but an unknown code is a problem
    clash.save()
    with pytest.raises(territories.RuleSetInvalid) as refused:
        territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    assert [p.kind for p in refused.value.problems] == ["unknown_code"]

    clash.division_codes = ["1101"]
    clash.save()
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)


def test_the_database_allows_one_active_rule_set(draft: RuleSet) -> None:
    from django.db import IntegrityError, transaction

    RuleSet.objects.filter(pk=draft.pk).update(status=RuleSetStatus.ACTIVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        RuleSet.objects.create(name="另一个", status=RuleSetStatus.ACTIVE)


def test_a_customer_follows_its_facts(draft: RuleSet, crm_admin: User, rep: User) -> None:
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    customer = CustomerFactory(address=BEIJING_ADDRESS)  # created after activation
    assert CustomerTerritory.objects.get(customer=customer).territory == territory(draft, "华北")
    crm_services.customer_update(actor=crm_admin, customer=customer, industry=software_industry())
    assert CustomerTerritory.objects.get(customer=customer).territory == territory(
        draft, "北京软件"
    )
    crm_services.customer_update(actor=crm_admin, customer=customer, address=SHANGHAI_ADDRESS)
    assert CustomerTerritory.objects.get(customer=customer).territory == territory(draft, "华东")


def test_a_refresh_is_one_statement_and_keeps_a_realignment_exception(
    draft: RuleSet, crm_admin: User
) -> None:
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    customer = CustomerFactory(address=BEIJING_ADDRESS)
    CustomerTerritory.objects.filter(customer=customer).update(
        realignment_exception=True, exception_reason="老客户，保留"
    )
    selectors.active_compiled()  # compiled once per process; not what is counted here
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        territories.customer_territory_refresh(
            customer=Customer(pk=customer.pk, address=BEIJING_ADDRESS, division_code="110108")
        )
    touching = [
        q["sql"] for q in captured.captured_queries if "ownership_customerterritory" in q["sql"]
    ]
    assert len(touching) == 1 and "ON CONFLICT" in touching[0]
    assert not any("SAVEPOINT" in q["sql"] for q in captured.captured_queries)
    crm_services.customer_update(actor=crm_admin, customer=customer, industry=software_industry())
    record = CustomerTerritory.objects.get(customer=customer)
    assert record.territory == territory(draft, "北京软件")
    assert (record.realignment_exception, record.exception_reason) == (True, "老客户，保留")


def test_the_catch_up_job_resolves_customers_missed_and_is_idempotent(
    draft: RuleSet, crm_admin: User
) -> None:
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    customer = CustomerFactory(address=SHANGHAI_ADDRESS)
    CustomerTerritory.objects.filter(customer=customer).delete()  # as if created by a bulk path
    assert territories.customer_territories_catch_up() == 1
    assert CustomerTerritory.objects.get(customer=customer).territory == territory(draft, "华东")
    assert territories.customer_territories_catch_up() == 0


def test_resolution_for_a_form_being_typed(draft: RuleSet, crm_admin: User) -> None:
    assert selectors.resolve(selectors.facts_of_form(address=BEIJING_ADDRESS)) is None
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    result = selectors.resolve(
        selectors.facts_of_form(address=BEIJING_ADDRESS, industry=software_industry())
    )
    assert result is not None
    assert result.territory_id == territory(draft, "北京软件").pk
    assert "华北 → 北京软件" in result.reason


def test_team_coverage_follows_the_team_tree(draft: RuleSet, crm_admin: User, north: Team) -> None:
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    beijing_desk = TeamFactory(name="华北销售部北京组", parent=north)
    result = selectors.resolve(selectors.facts_of_form(address=BEIJING_ADDRESS))
    assert result is not None
    assert selectors.team_covers(north, result)
    assert selectors.team_covers(beijing_desk, result)
    assert not selectors.team_covers(TeamFactory(name="华南销售部"), result)
    nowhere = selectors.resolve(selectors.facts_of_form(address=GUANGZHOU_ADDRESS))
    assert nowhere is not None and selectors.team_covers(None, nowhere)


# --- per-territory clocks ----------------------------------------------------------------


def test_a_territory_policy_overrides_the_clock_and_names_its_level(
    draft: RuleSet, crm_admin: User, rep: User, global_pool_policy: Any
) -> None:
    customer = CustomerFactory(address=SHANGHAI_ADDRESS, owner=rep)
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    before = clock_for(customer)
    assert before.days == global_pool_policy.days_without_follow_up
    PoolPolicy.objects.create(
        territory=territory(draft, "华东"),
        days_without_follow_up=10,
        days_to_reach_50=20,
        days_to_reach_100=40,
        warning_days=3,
    )
    after = clock_for(customer)
    assert after.days == 10
    assert "华东" in after.level
    assert after.returns_at == customer.clock_started_at + timedelta(days=10)
    [row] = owned_by_urgency(rep, timezone.now())
    assert row.clock == after


def test_the_review_recycles_by_the_territory_clock(
    draft: RuleSet, crm_admin: User, rep: User, global_pool_policy: Any
) -> None:
    from ownership.review import review_run

    east = CustomerFactory(address=SHANGHAI_ADDRESS, owner=rep)
    elsewhere = CustomerFactory(address=GUANGZHOU_ADDRESS, owner=rep)
    started = timezone.now() - timedelta(days=15)
    Customer.objects.filter(pk__in=[east.pk, elsewhere.pk]).update(clock_started_at=started)
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    PoolPolicy.objects.create(
        territory=territory(draft, "华东"),
        days_without_follow_up=10,
        days_to_reach_50=20,
        days_to_reach_100=40,
        warning_days=3,
    )
    review_run()
    east.refresh_from_db()
    elsewhere.refresh_from_db()
    assert east.owner is None  # 15 days > the territory's 10
    assert elsewhere.owner == rep  # 15 days < the global default's 30


# --- realignment -------------------------------------------------------------------------


@pytest.fixture
def realignable(draft: RuleSet, crm_admin: User, rep: User, second_rep: User, north: Team) -> dict:
    """Owned customers of the east team (rep, second_rep); two lie in 北京 (华北's)."""
    north_rep = UserFactory(username="rep_north", role="rep", team=north)
    beijing_1 = CustomerFactory(address=BEIJING_ADDRESS, owner=rep)
    beijing_2 = CustomerFactory(address="北京市朝阳区建国路1号", owner=second_rep)
    shanghai = CustomerFactory(address=SHANGHAI_ADDRESS, owner=rep)
    guangzhou = CustomerFactory(address=GUANGZHOU_ADDRESS, owner=rep)
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    return {
        "north_rep": north_rep,
        "beijing": [beijing_1, beijing_2],
        "staying": [shanghai, guangzhou],
    }


def ledger_size() -> int:
    return OwnershipEvent.objects.count()


def test_preview_lists_owned_customers_outside_their_team_and_moves_nothing(
    realignable: dict, team: Team, north: Team
) -> None:
    events = ledger_size()
    preview = territories.realignment_preview()
    assert [(g.owner_team, g.responsible_teams) for g in preview.groups] == [(team, [north])]
    [group] = preview.groups
    assert sorted(c.pk for c in group.customers) == sorted(c.pk for c in realignable["beijing"])
    assert preview.total == 2 and preview.fingerprint
    lines = territories.realignment_csv(preview).strip().splitlines()
    assert len(lines) == 3 and all("华北销售部" in line for line in lines[1:])
    assert ledger_size() == events
    for customer in realignable["beijing"]:
        assert Customer.objects.get(pk=customer.pk).owner_id == customer.owner_id


@pytest.mark.parametrize("choice", ["pool", "allocate", "keep"])
def test_apply_does_exactly_what_the_preview_showed(
    realignable: dict, crm_admin: User, choice: str
) -> None:
    preview = territories.realignment_preview()
    [group] = preview.groups
    shown = sorted(c.pk for c in group.customers)
    events = ledger_size()
    north_rep = realignable["north_rep"]
    record = territories.realignment_apply(
        actor=crm_admin,
        fingerprint=preview.fingerprint,
        decisions=[
            territories.GroupDecision(
                key=group.key, choice=choice, rep=north_rep if choice == "allocate" else None
            )
        ],
    )
    assert record.counts[choice] == 2
    assert sorted(record.decisions[0]["customers"]) == shown
    moved = OwnershipEvent.objects.filter(cause_id=record.pk, cause_type__model="realignment")
    owners = dict(Customer.objects.filter(pk__in=shown).values_list("pk", "owner_id"))
    if choice == "pool":
        assert sorted(moved.values_list("customer_id", flat=True)) == shown
        assert set(moved.values_list("kind", flat=True)) == {EventKind.RECYCLED}
        assert set(owners.values()) == {None}
    elif choice == "allocate":
        assert sorted(moved.values_list("customer_id", flat=True)) == shown
        assert set(owners.values()) == {north_rep.pk}
    else:
        assert ledger_size() == events
        assert (
            CustomerTerritory.objects.filter(
                customer_id__in=shown, realignment_exception=True
            ).count()
            == 2
        )
        # Exceptions stay out of later previews until cleared.
        assert territories.realignment_preview().groups == []
        territories.realignment_exception_clear(
            actor=crm_admin, customer=Customer.objects.get(pk=shown[0])
        )
        assert territories.realignment_preview().total == 1
    # The customers that stayed inside their team were not touched.
    for customer in realignable["staying"]:
        customer_now = Customer.objects.get(pk=customer.pk)
        assert customer_now.owner_id == customer.owner_id
    call_command_verify_ledger()


def call_command_verify_ledger() -> None:
    from django.core.management import call_command

    call_command("verify_ledger")


def test_apply_refuses_a_stale_preview_and_moves_nothing(
    realignable: dict, crm_admin: User, rep: User
) -> None:
    preview = territories.realignment_preview()
    [group] = preview.groups
    CustomerFactory(address="北京市西城区金融街1号", owner=rep)  # one more outside the team
    events = ledger_size()
    with pytest.raises(territories.RealignmentStale):
        territories.realignment_apply(
            actor=crm_admin,
            fingerprint=preview.fingerprint,
            decisions=[territories.GroupDecision(key=group.key, choice="pool")],
        )
    assert ledger_size() == events


def test_apply_refuses_a_rep_outside_the_responsible_team(
    realignable: dict, crm_admin: User, second_rep: User
) -> None:
    preview = territories.realignment_preview()
    [group] = preview.groups
    events = ledger_size()
    with pytest.raises(territories.TerritoryError):
        territories.realignment_apply(
            actor=crm_admin,
            fingerprint=preview.fingerprint,
            decisions=[territories.GroupDecision(key=group.key, choice="allocate", rep=second_rep)],
        )
    with pytest.raises(territories.TerritoryError):
        territories.realignment_apply(
            actor=crm_admin, fingerprint=preview.fingerprint, decisions=[]
        )
    assert ledger_size() == events


def test_recompute_is_set_based_and_counts_only_changes(draft: RuleSet, crm_admin: User) -> None:
    for n in range(30):
        CustomerFactory(address=BEIJING_ADDRESS if n % 2 else SHANGHAI_ADDRESS)
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    resolved, changed = territories.customer_territories_recompute(rule_set=draft)
    assert (resolved, changed) == (30, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ownership_customerterritory SET territory_id = NULL WHERE customer_id IN "
            "(SELECT customer_id FROM ownership_customerterritory LIMIT 4)"
        )
    assert territories.customer_territories_recompute(rule_set=draft) == (30, 4)


def test_a_whole_base_recompute_leaves_the_foreign_keys_in_place_and_validated(
    draft: RuleSet, crm_admin: User
) -> None:
    def keys() -> list[tuple[str, str, bool]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
                "WHERE conrelid = 'ownership_customerterritory'::regclass AND contype = 'f' "
                "ORDER BY conname"
            )
            return list(cursor.fetchall())

    before = keys()
    assert len(before) == 2 and all(valid for _name, _definition, valid in before)
    CustomerFactory(address=BEIJING_ADDRESS)
    territories.rule_set_activate(actor=crm_admin, rule_set=draft)
    assert keys() == before
    # ... and they hold: a territory that does not exist is refused.
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerTerritory.objects.update(territory_id=10**9)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_exceptions_survive_the_next_activation(realignable: dict, crm_admin: User) -> None:
    preview = territories.realignment_preview()
    [group] = preview.groups
    # One of them has no record yet (as if created while the activation ran).
    CustomerTerritory.objects.filter(customer=group.customers[0]).delete()
    territories.realignment_apply(
        actor=crm_admin,
        fingerprint=preview.fingerprint,
        decisions=[territories.GroupDecision(key=group.key, choice="keep")],
    )
    kept = sorted(c.pk for c in group.customers)
    active = RuleSet.objects.get(status=RuleSetStatus.ACTIVE)
    next_set = territories.rule_set_copy(actor=crm_admin, source=active, name="下一版")
    territories.rule_set_activate(actor=crm_admin, rule_set=next_set)
    records = CustomerTerritory.objects.filter(realignment_exception=True)
    assert sorted(records.values_list("customer_id", flat=True)) == kept
    assert all(r.rule_set_id == next_set.pk and r.exception_reason for r in records)
    assert territories.realignment_preview().groups == []
