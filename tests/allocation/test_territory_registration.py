"""Registration outside the rep's team's territory: allow, approval (pending, the hold, the
decision) and route — through the services, with the ledger and notifications checked."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from allocation import selectors
from allocation.models import Registration, RegistrationOutcome
from allocation.services import (
    RegistrationAlreadyDecided,
    RegistrationError,
    RegistrationForm,
    RegistrationNotAllowed,
    RegistrationRepAtCap,
    allocate_one,
    registration_approve,
    registration_reject,
    registration_submit,
)
from crm.models import Customer, Notification, Role, Team, User
from ownership.models import CustomerTerritory, EventKind, OwnershipEvent, PoolPolicy
from ownership.services import NotInPool, OwnershipError, ownership_claim, ownership_release
from tests.allocation.territory_setup import ADDRESS
from tests.factories import CustomerFactory, TeamFactory, UserFactory


def _register(rep: User, name: str, where: str, **kwargs: Any) -> Any:
    return registration_submit(
        actor=rep, form=RegistrationForm(display_name=name, address=ADDRESS[where], **kwargs)
    )


@pytest.fixture
def pending(rep: User, other_manager: User, territories: Any) -> Registration:
    """The east rep's registration of a 北京 company: the north team must approve it."""
    result = _register(rep, "北京星河智能科技有限公司", "beijing", evidence="展会上认识的")
    assert result.outcome == RegistrationOutcome.PENDING
    assert result.registration is not None
    return result.registration


def test_without_an_active_rule_set_everything_registers_as_before(rep: User) -> None:
    result = _register(rep, "北京星河智能科技有限公司", "beijing")
    assert result.outcome == RegistrationOutcome.REGISTERED
    assert result.customer is not None and result.customer.owner == rep


def test_allow_registers_outside_the_territory(rep: User, territories: Any) -> None:
    result = _register(rep, "深圳南山云端软件有限公司", "guangdong")
    assert result.outcome == RegistrationOutcome.REGISTERED
    assert result.customer is not None and result.customer.owner == rep
    territory = CustomerTerritory.objects.get(customer=result.customer).territory
    assert territory is not None and territory.name == "华南"


def test_a_registration_resolves_its_territory_under_one_rule_set_once(
    rep: User, territories: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _register(rep, "上海浦江信息技术有限公司", "shanghai")  # the rule set compiled once
    with CaptureQueriesContext(connection) as captured:
        result = _register(rep, "上海外滩物流有限公司", "shanghai")
    assert result.outcome == RegistrationOutcome.REGISTERED
    statements = [query["sql"] for query in captured.captured_queries]
    # Which set is in force is asked once; the territory the form resolved to is recorded
    # by one statement (the receiver of crm's signal reuses the set); the rep's own team is
    # responsible, so no team is loaded to walk a lineage.
    assert sum("ownership_ruleset" in sql for sql in statements) == 1
    [recorded] = [sql for sql in statements if "ownership_customerterritory" in sql]
    assert recorded.startswith("INSERT")
    assert not any('FROM "crm_team"' in sql for sql in statements)
    record = CustomerTerritory.objects.get(customer=result.customer)
    assert record.territory is not None and record.territory.name == "华东"
    assert record.rule_set == territories


def test_the_responsible_team_and_its_sub_teams_register_as_usual(
    other_rep: User, other_team: Team, territories: Any
) -> None:
    assert _register(other_rep, "北京星河智能科技有限公司", "beijing").outcome == "registered"
    sub_team_rep = UserFactory(
        username="subrep", role=Role.REP, team=TeamFactory(name="华北一组", parent=other_team)
    )
    # A sub-team is covered by its parent team's territory.
    assert _register(sub_team_rep, "天津和平港口物流有限公司", "tianjin").outcome == "registered"


def test_approval_creates_the_customer_unowned_and_holds_it(
    pending: Registration, rep: User, other_team: Team, other_manager: User
) -> None:
    customer = pending.customer
    assert customer is not None and customer.owner is None
    assert not OwnershipEvent.objects.filter(customer=customer).exists()
    assert pending.territory is not None and pending.territory.name == "华北"
    assert pending.territory_label == "华北"
    assert list(pending.responsible_teams.all()) == [other_team]
    assert pending.evidence == "展会上认识的"
    # The responsible team's manager is told.
    note = Notification.objects.get(kind="registration_to_approve")
    assert note.recipient == other_manager
    assert "北京星河智能科技有限公司" in note.title
    # In no pool: not the rep's, not the responsible team's, not the whole pool.
    assert not selectors.pool_for(rep).filter(pk=customer.pk).exists()
    assert not selectors.team_pool(other_team).filter(pk=customer.pk).exists()
    assert not selectors.team_pool(None).filter(pk=customer.pk).exists()


def test_a_pending_customer_cannot_be_claimed_or_allocated(
    pending: Registration, other_rep: User, other_manager: User, other_team: Team
) -> None:
    customer = pending.customer
    assert customer is not None
    with pytest.raises(NotInPool, match="等待负责团队经理的审批"):
        ownership_claim(actor=other_rep, customer=customer)
    with pytest.raises(OwnershipError, match="等待负责团队经理的审批"):
        allocate_one(actor=other_manager, team=other_team, customer=customer, rep=other_rep)
    customer.refresh_from_db()
    assert customer.owner is None
    assert not OwnershipEvent.objects.filter(customer=customer).exists()


def test_a_second_registration_of_the_company_is_told_it_awaits_approval(
    pending: Registration, second_rep: User, other_rep: User
) -> None:
    for someone in (second_rep, other_rep):
        result = _register(someone, "星河智能科技（北京）有限公司", "beijing")
        assert result.outcome == RegistrationOutcome.AWAITING
        assert result.pending == pending
        assert result.customer == pending.customer
        assert "正在等待审批" in result.message and "王小明" in result.message
    # Each attempt is recorded (evidence for a dispute); the pending one stays the only one.
    assert Registration.objects.filter(outcome="awaiting").count() == 2
    assert Registration.objects.filter(outcome="pending").count() == 1
    assert Customer.objects.count() == 1


def test_one_pending_registration_per_customer_in_the_database(pending: Registration) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Registration.objects.create(
            rep=pending.rep,
            submitted_at=pending.submitted_at,
            outcome=RegistrationOutcome.PENDING,
            customer=pending.customer,
            entered_name="again",
        )


def test_approval_makes_the_rep_the_owner_with_a_ledger_entry(
    pending: Registration, rep: User, other_manager: User
) -> None:
    decided = registration_approve(actor=other_manager, registration=pending, note="欢迎合作")
    assert decided.outcome == RegistrationOutcome.REGISTERED
    customer = Customer.objects.get(pk=pending.customer_id)
    assert customer.owner == rep
    assert customer.clock_started_at is not None
    event = OwnershipEvent.objects.get(customer=customer)
    assert event.kind == EventKind.REGISTERED
    assert event.to_owner == rep and event.actor == other_manager
    assert event.cause == decided and decided.ledger_event == event
    assert "欢迎合作" in event.reason
    # The precedence time stays the submission's.
    assert decided.submitted_at == pending.submitted_at < event.occurred_at
    told = Notification.objects.get(kind="registration_decided")
    assert told.recipient == rep
    # Deciding twice is refused and changes nothing.
    with pytest.raises(RegistrationAlreadyDecided):
        registration_reject(actor=other_manager, registration=pending, note="再拒绝")
    assert OwnershipEvent.objects.filter(customer=customer).count() == 1


def test_approval_at_the_holding_cap_is_refused_and_stays_pending(
    pending: Registration, rep: User, other_manager: User, global_pool_policy: PoolPolicy
) -> None:
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=1, warning_days=1)
    CustomerFactory(owner=rep, display_name="上海已有客户贸易有限公司")
    with pytest.raises(RegistrationRepAtCap, match="持有上限为 1"):
        registration_approve(actor=other_manager, registration=pending)
    pending.refresh_from_db()
    assert pending.outcome == RegistrationOutcome.PENDING and pending.ledger_event is None
    customer = Customer.objects.get(pk=pending.customer_id)
    assert customer.owner is None
    assert not OwnershipEvent.objects.filter(customer=customer).exists()


def test_rejection_needs_a_reason_and_sends_the_customer_to_the_teams_pool(
    pending: Registration, rep: User, other_rep: User, other_manager: User
) -> None:
    with pytest.raises(RegistrationError, match="请说明驳回"):
        registration_reject(actor=other_manager, registration=pending, note="  ")
    decided = registration_reject(actor=other_manager, registration=pending, note="本区域已在跟进")
    assert decided.outcome == RegistrationOutcome.REJECTED
    customer = Customer.objects.get(pk=pending.customer_id)
    assert customer.owner is None
    event = OwnershipEvent.objects.get(customer=customer)
    assert event.kind == EventKind.RELEASED
    assert event.from_owner is None and event.to_owner is None
    assert event.actor == other_manager and event.cause == decided
    assert "本区域已在跟进" in event.reason
    # The responsible team's pool now, not the rep's.
    assert selectors.pool_for(other_rep).filter(pk=customer.pk).exists()
    assert not selectors.pool_for(rep).filter(pk=customer.pk).exists()
    assert Notification.objects.get(kind="registration_decided").recipient == rep
    ownership_claim(actor=other_rep, customer=customer)


def test_only_managers_of_the_responsible_team_or_admins_decide(
    pending: Registration, manager: User, crm_admin: User, other_rep: User
) -> None:
    for someone in (manager, other_rep):
        with pytest.raises(RegistrationNotAllowed):
            registration_approve(actor=someone, registration=pending)
        assert not selectors.registration_queue(someone).exists()
    assert list(selectors.registration_queue(crm_admin)) == [pending]
    registration_approve(actor=crm_admin, registration=pending)


def test_a_manager_above_the_responsible_team_decides_too(
    rep: User, other_team: Team, crm_admin: User, territories: Any
) -> None:
    director = UserFactory(username="director", role=Role.MANAGER)
    region = TeamFactory(name="北方大区", manager=director)
    Team.objects.filter(pk=other_team.pk).update(parent=region)
    result = _register(rep, "北京星河智能科技有限公司", "beijing")
    assert list(selectors.registration_queue(director)) == [result.registration]


def test_route_creates_the_customer_in_the_responsible_teams_pool(
    rep: User, other_rep: User, other_team: Team, global_pool_policy: PoolPolicy, territories: Any
) -> None:
    # The rep's cap does not matter: a routed customer is never theirs.
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=1, warning_days=1)
    CustomerFactory(owner=rep, display_name="上海已有客户贸易有限公司")
    result = _register(rep, "天津和平港口物流有限公司", "tianjin", first_contact_name="刘总")
    assert result.outcome == RegistrationOutcome.ROUTED
    assert result.pool == "华北销售部 的公海"
    customer = result.customer
    assert customer is not None and customer.owner is None
    assert customer.contacts.get().name == "刘总"
    registration = result.registration
    assert registration is not None and registration.territory_label == "天津"
    event = OwnershipEvent.objects.get(customer=customer)
    assert event.kind == EventKind.RELEASED and event.to_owner is None
    assert event.actor == rep and event.cause == registration == result.registration
    assert registration.ledger_event == event
    assert "华北销售部" in event.reason
    assert selectors.pool_for(other_rep).filter(pk=customer.pk).exists()
    assert selectors.team_pool(other_team).filter(pk=customer.pk).exists()
    assert not selectors.pool_for(rep).filter(pk=customer.pk).exists()


def test_registering_a_customer_of_another_teams_pool_is_no_claim(
    rep: User, other_rep: User, territories: Any
) -> None:
    owned = _register(other_rep, "天津和平港口物流有限公司", "tianjin").customer  # the north's
    ownership_release(actor=other_rep, customer=owned, reason="暂不跟进")
    result = _register(rep, "天津和平港口物流有限公司", "tianjin")
    assert result.outcome == RegistrationOutcome.IN_POOL
    assert not result.claimable
    assert "华北销售部" in result.message
