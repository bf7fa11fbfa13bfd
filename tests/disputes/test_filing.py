"""Filing a dispute: who may, about what, one open case per pair, under-dispute marking, the
dossier frozen at filing, notifications."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Customer, Notification, User
from disputes import selectors, services
from disputes.models import Dispute, DisputeHistory, DisputeKind, DisputeState
from ownership.models import EventKind
from ownership.services import ownership_recycle
from tests.factories import CustomerFactory


def test_filing_opens_a_case_with_history_statement_and_dossier(
    first_contact_case: Dispute, claimant: User, rep: User, contested: Customer
) -> None:
    case = first_contact_case
    assert case.state == DisputeState.FILED
    assert case.claimant == claimant and case.respondent == rep
    assert case.claimant_team == claimant.team and case.respondent_team == rep.team
    assert case.deadline > case.filed_at
    steps = list(DisputeHistory.objects.filter(dispute=case).values_list("from_state", "to_state"))
    assert steps == [("", DisputeState.FILED)]
    assert case.statements.get().text == "我三周前就拜访过他们的采购。"
    records = case.dossier["records"]
    assert [r["id"] for r in records] == [contested.pk]
    assert [e["kind"] for e in records[0]["ledger"]] == [EventKind.REGISTERED]
    assert case.dossier["parties"]["claimant"]["name"] == str(claimant)


def test_the_other_party_managers_and_committee_are_told(
    first_contact_case: Dispute,
    rep: User,
    manager: User,
    other_manager: User,
    committee: list[User],
) -> None:
    told = set(
        Notification.objects.filter(kind="dispute_filed").values_list("recipient_id", flat=True)
    )
    assert told == {rep.pk, manager.pk, other_manager.pk, *(m.pk for m in committee)}
    assert Notification.objects.get(kind="dispute_filed", recipient=rep).title.startswith("新争议")


def test_customers_of_a_pending_case_are_under_dispute(
    first_contact_case: Dispute, contested: Customer, global_pool_policy: Any
) -> None:
    other = CustomerFactory()
    assert selectors.is_under_dispute(contested)
    assert list(selectors.customers_under_dispute()) == [contested]
    # Usable by the review as a subquery: recycle candidates exclude them.
    candidates = Customer.objects.exclude(pk__in=selectors.customer_ids_under_dispute())
    assert contested not in candidates and other in candidates
    services.dispute_withdraw(actor=first_contact_case.claimant, dispute=first_contact_case)
    assert not selectors.is_under_dispute(contested)


def test_one_open_dispute_per_pair(
    first_contact_case: Dispute, claimant: User, second_rep: User, contested: Customer
) -> None:
    with pytest.raises(services.DisputeExists) as error:
        services.dispute_file(
            actor=second_rep,
            customer=contested,
            kind=DisputeKind.FIRST_CONTACT,
            statement="我也先联系过",
        )
    assert error.value.dispute == first_contact_case
    assert "已有一个未结的争议" in error.value.message


def test_the_database_refuses_a_second_open_case_for_the_same_pair_in_either_order(
    same_company_case: Dispute, pair: tuple[Customer, Customer]
) -> None:
    first, second = pair
    case = same_company_case
    with pytest.raises(IntegrityError), transaction.atomic():
        Dispute.objects.create(
            kind=DisputeKind.SAME_COMPANY,
            customer=first,
            other_customer=second,
            claimant=case.claimant,
            filed_at=timezone.now(),
            deadline=timezone.now(),
        )
    # A closed case frees the pair.
    services.dispute_withdraw(actor=case.claimant, dispute=case)
    Dispute.objects.create(
        kind=DisputeKind.SAME_COMPANY,
        customer=first,
        other_customer=second,
        claimant=case.claimant,
        filed_at=timezone.now(),
        deadline=timezone.now(),
    )


def test_a_single_record_case_and_a_pair_case_do_not_block_each_other(
    first_contact_case: Dispute, claimant: User, contested: Customer, global_pool_policy: Any
) -> None:
    mine = CustomerFactory(owner=claimant, display_name="上海云帆软件有限公司")
    case = services.dispute_file(
        actor=claimant,
        customer=mine,
        other_customer=contested,
        kind=DisputeKind.SAME_COMPANY,
        statement="同一公司",
    )
    assert case.respondent == contested.owner


@pytest.mark.parametrize(
    ("field", "kwargs", "message"),
    [
        ("statement", {"statement": "  "}, "请填写"),
        ("kind", {"kind": "nonsense"}, "请选择"),
        ("other_customer", {"kind": DisputeKind.SAME_COMPANY}, "另一条记录"),
        ("rule_event", {"kind": DisputeKind.WRONG_RULE}, "异议的变更"),
    ],
)
def test_bad_input_gets_a_clear_message_and_saves_nothing(
    claimant: User, contested: Customer, field: str, kwargs: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "actor": claimant,
        "customer": contested,
        "kind": DisputeKind.FIRST_CONTACT,
        "statement": "理由",
        **kwargs,
    }
    with pytest.raises(services.DisputeInvalid) as error:
        services.dispute_file(**arguments)
    assert field in error.value.errors and message in error.value.errors[field]
    assert not Dispute.objects.exists()


def test_pool_and_own_customers_cannot_be_disputed_as_first_contact(
    rep: User, contested: Customer, global_pool_policy: Any
) -> None:
    pool = CustomerFactory()
    with pytest.raises(services.DisputeInvalid, match="公海"):
        services.dispute_file(
            actor=rep, customer=pool, kind=DisputeKind.FIRST_CONTACT, statement="x"
        )
    with pytest.raises(services.DisputeInvalid, match="已归属于您"):
        services.dispute_file(
            actor=rep, customer=contested, kind=DisputeKind.FIRST_CONTACT, statement="x"
        )


def test_only_reps_file(manager: User, contested: Customer) -> None:
    with pytest.raises(services.NotEligible):
        services.dispute_file(
            actor=manager, customer=contested, kind=DisputeKind.FIRST_CONTACT, statement="x"
        )


def test_a_rep_contests_a_recycle_that_took_their_customer(
    rep: User, contested: Customer, committee: list[User]
) -> None:
    event = ownership_recycle(customer=contested, reason="30 天未跟进", now=timezone.now())
    contested.refresh_from_db()
    assert selectors.customers_disputable_by(rep).filter(pk=contested.pk).exists()
    case = services.dispute_file(
        actor=rep,
        customer=contested,
        kind=DisputeKind.WRONG_RULE,
        rule_event=event,
        statement="我上周有拜访记录，只是忘了录入。",
    )
    assert case.respondent is None and case.rule_event == event
    assert case.dossier["rule_event"]["kind"] == EventKind.RECYCLED


def test_a_collision_makes_the_customer_disputable_and_is_in_the_dossier(
    claimant: User, contested: Customer, committee: list[User]
) -> None:
    registration = apps.get_model("allocation", "Registration")
    assert not selectors.customers_disputable_by(claimant).filter(pk=contested.pk).exists()
    registration.objects.create(
        rep=claimant,
        submitted_at=timezone.now(),
        outcome="collision",
        customer=contested,
        entered_name="云帆信息技术（上海）有限公司",
        evidence="展会名片",
    )
    assert selectors.customers_disputable_by(claimant).filter(pk=contested.pk).exists()
    case = services.dispute_file(
        actor=claimant, customer=contested, kind=DisputeKind.FIRST_CONTACT, statement="先联系"
    )
    registrations = case.dossier["records"][0]["registrations"]
    assert [r["outcome"] for r in registrations] == ["collision"]
    assert registrations[0]["evidence"] == "展会名片"
    assert "_entered_phone" not in registrations[0]
    (explanation,) = case.dossier["identity"]
    assert explanation["tier"] == "hard" and explanation["reasons"]


def test_the_dossier_explains_the_match_between_two_records(same_company_case: Dispute) -> None:
    (explanation,) = same_company_case.dossier["identity"]
    assert explanation["tier"] == "soft"
    assert explanation["score"] > 0.6
    assert any("字号相同" in reason for reason in explanation["reasons"])


def test_refreshing_the_dossier_picks_up_new_facts(
    first_contact_case: Dispute, rep: User, contested: Customer
) -> None:
    from crm.services import follow_up_log

    follow_up_log(
        actor=rep,
        customer=contested,
        kind="call",
        happened_at=timezone.now(),
        summary="电话确认需求",
    )
    assert first_contact_case.dossier["records"][0]["follow_ups"] == []
    refreshed = services.dispute_refresh_dossier(actor=None, dispute=first_contact_case)
    (follow_up,) = refreshed.dossier["records"][0]["follow_ups"]
    assert follow_up["summary"] == "电话确认需求" and follow_up["by"]["name"] == str(rep)


def test_the_review_neither_recycles_nor_warns_a_customer_under_dispute(
    first_contact_case: Dispute, contested: Customer, rep: User
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from ownership.review.run import review_run

    # The contested customer's clock ran out long ago (set-up through the database).
    Customer.objects.filter(pk=contested.pk).update(
        clock_started_at=timezone.now() - timedelta(days=400), last_follow_up_at=None
    )
    review_run()
    contested.refresh_from_db()
    assert contested.owner == rep
    services.dispute_withdraw(actor=first_contact_case.claimant, dispute=first_contact_case)
    review_run()
    contested.refresh_from_db()
    assert contested.owner is None


def test_the_dossier_names_the_territory_and_the_rule_that_matched(
    first_contact_case: Dispute, rep: User, contested: Customer, crm_admin: User
) -> None:
    from crm.services import customer_update
    from ownership.models import RuleSet, Territory
    from ownership.territories.services import rule_set_activate

    assert first_contact_case.dossier["records"][0]["territory"] is None  # no rule set yet
    customer_update(actor=crm_admin, customer=contested, address="上海市浦东新区世纪大道1号")
    rule_set = RuleSet.objects.create(name="区域")
    east = Territory.objects.create(rule_set=rule_set, name="华东", division_codes=["31"])
    assert rep.team is not None
    east.teams.set([rep.team])
    rule_set_activate(actor=crm_admin, rule_set=rule_set)
    refreshed = services.dispute_refresh_dossier(actor=None, dispute=first_contact_case)
    territory = refreshed.dossier["records"][0]["territory"]
    assert territory["territory"] == "华东"
    assert territory["teams"] == [rep.team.name]
    assert "华东" in territory["rule"]
