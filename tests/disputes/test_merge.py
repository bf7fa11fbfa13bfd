"""A "merge" ruling loses nothing: every contact, follow-up, phone and ledger event of both
records is reachable from the survivor afterwards; the merged record keeps its row and its
ledger, points at the survivor and leaves the identity uniqueness scopes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from crm import services as crm_services
from crm.models import Contact, Customer, CustomerPhone, FollowUp, PossibleDuplicate, User
from disputes import services
from disputes.models import Dispute, Ruling
from ownership.models import EventKind, OwnershipEvent
from ownership.services import ownership_merge
from tests.factories import CustomerFactory


def _fill(customer: Customer, owner: User, tag: str, mobile: str) -> None:
    crm_services.contact_add(actor=owner, customer=customer, name=f"{tag}联系人", mobile=mobile)
    crm_services.contact_add(actor=owner, customer=customer, name=f"{tag}采购")
    for days in (3, 1):
        crm_services.follow_up_log(
            actor=owner,
            customer=customer,
            kind="call",
            happened_at=timezone.now() - timedelta(days=days),
            summary=f"{tag} 跟进 {days}",
            stage_after=25,
        )
    crm_services.customer_update(actor=owner, customer=customer, phone=mobile)


@pytest.fixture
def filled_pair(
    pair: tuple[Customer, Customer], rep: User, claimant: User
) -> tuple[Customer, Customer]:
    first, second = pair
    _fill(first, rep, "甲", "13900000001")
    _fill(second, claimant, "乙", "13900000002")
    # The second entry was accepted as a look-alike: the pair is recorded for review.
    assert PossibleDuplicate.objects.filter(customer=second, candidate=first).exists()
    return first, second


def test_a_merge_ruling_loses_nothing(
    filled_pair: tuple[Customer, Customer],
    claimant: User,
    rep: User,
    committee: list[User],
) -> None:
    first, second = filled_pair
    contacts = set(
        Contact.objects.filter(customer__in=[first, second]).values_list("pk", flat=True)
    )
    follow_ups = set(
        FollowUp.objects.filter(customer__in=[first, second]).values_list("pk", flat=True)
    )
    events = set(
        OwnershipEvent.objects.filter(customer__in=[first, second]).values_list("pk", flat=True)
    )
    case = services.dispute_file(
        actor=claimant,
        customer=second,
        other_customer=first,
        kind="same_company",
        statement="同一公司",
    )
    # Award the surviving record to the claimant although the other record came first.
    for member in committee[1:]:
        services.dispute_vote(
            actor=member, dispute=case, outcome="merge", award_to="claimant", rationale="同一公司"
        )
    ruling = Ruling.objects.get(dispute=case)
    # First entry decides which record survives.
    assert ruling.survivor == first and ruling.merged == second
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.merged_into == first and first.merged_into is None
    assert first.owner == claimant and second.owner is None

    # Every contact and follow-up of both records is on the survivor.
    assert set(Contact.objects.filter(customer=first).values_list("pk", flat=True)) == contacts
    assert set(FollowUp.objects.filter(customer=first).values_list("pk", flat=True)) == follow_ups
    # Both ledgers are whole, reachable from the survivor through merged_records, and the
    # new events name the ruling.
    reachable = OwnershipEvent.objects.filter(
        customer__in=[first, *first.merged_records.all()]
    ).values_list("pk", flat=True)
    assert events < set(reachable)
    merged_event = OwnershipEvent.objects.get(customer=second, kind=EventKind.MERGED)
    assert merged_event.cause == ruling and merged_event.from_owner == claimant
    ruled = OwnershipEvent.objects.get(customer=first, kind=EventKind.RULED)
    assert ruled.cause == ruling and ruled.from_owner == rep and ruled.to_owner == claimant

    # Identity keys: the merged record left the uniqueness scope; the survivor carries both
    # mobiles, so a new entry with either is a hard collision with the survivor.
    assert set(first.phones.filter(active=True).values_list("number", flat=True)) == {
        "+8613900000001",
        "+8613900000002",
    }
    assert not CustomerPhone.objects.filter(customer=second, active=True).exists()
    with pytest.raises(crm_services.DuplicateCustomer) as duplicate:
        crm_services.customer_create(actor=rep, display_name="完全不同的名字", phone="13900000002")
    assert [m.customer for m in duplicate.value.matches] == [first]
    assert PossibleDuplicate.objects.get(customer=second).resolved_at is not None
    # The ledger chain of the merged record still verifies.
    from django.core.management import call_command

    call_command("verify_ledger")


def test_merge_into_itself_or_twice_is_refused(pair: tuple[Customer, Customer], rep: User) -> None:
    first, second = pair
    with pytest.raises(crm_services.MergeRefused):
        crm_services.customer_merge(actor=rep, merged=first, survivor=first)
    crm_services.customer_merge(actor=rep, merged=second, survivor=first)
    with pytest.raises(crm_services.MergeRefused):
        crm_services.customer_merge(actor=rep, merged=second, survivor=first)


def test_ownership_merge_writes_one_merged_event_on_a_pool_record(
    rep: User, global_pool_policy: Any
) -> None:
    survivor = CustomerFactory(owner=rep)
    pool_record = CustomerFactory()
    event = ownership_merge(actor=rep, customer=pool_record, into=survivor, reason="合并")
    assert event.kind == EventKind.MERGED and event.from_owner is None and event.to_owner is None
    assert str(survivor.pk) in event.cause_label


def test_an_appeal_after_a_merge_rules_on_the_survivor(
    same_company_case: Dispute, committee: list[User], claimant: User, rep: User, settings: Any
) -> None:
    settings.DISPUTE_QUORUM = 1
    services.dispute_vote(
        actor=committee[1],
        dispute=same_company_case,
        outcome="merge",
        award_to="respondent",
        rationale="合并，归先报备者",
    )
    case = Dispute.objects.get(pk=same_company_case.pk)
    survivor = Ruling.objects.get(dispute=case).survivor
    assert survivor is not None and survivor.owner == rep
    services.dispute_appeal(actor=claimant, dispute=case, text="我先联系的")
    services.dispute_vote(actor=committee[2], dispute=case, outcome="award", rationale="改判")
    survivor.refresh_from_db()
    assert survivor.owner == claimant and survivor.merged_into is None
