"""Votes, quorum and majority, conflicts of interest, the chair, rulings applied through the
ownership writer, appeals heard by fresh members, notifications of the ruling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from crm.models import Customer, Notification, Role, Team, User
from disputes import selectors, services
from disputes.models import (
    CommitteeMembership,
    Dispute,
    DisputeHistory,
    Ruling,
    RulingMethod,
    Vote,
)
from ownership.models import EventKind, OwnershipEvent
from tests.factories import UserFactory


def vote(member: User, case: Dispute, outcome: str, **kwargs: Any) -> Vote:
    return services.dispute_vote(
        actor=member, dispute=case, outcome=outcome, rationale=f"{member} 的理由", **kwargs
    )


def test_one_vote_does_not_decide_below_quorum(
    first_contact_case: Dispute, committee: list[User]
) -> None:
    vote(committee[1], first_contact_case, "award")
    first_contact_case.refresh_from_db()
    assert first_contact_case.state == "under_review"  # the first vote takes the case up
    assert not Ruling.objects.exists()


def test_a_majority_with_quorum_decides_and_the_ruling_goes_through_the_ledger(
    first_contact_case: Dispute,
    committee: list[User],
    claimant: User,
    rep: User,
    contested: Customer,
    manager: User,
    other_manager: User,
) -> None:
    vote(committee[1], first_contact_case, "award")
    vote(committee[2], first_contact_case, "award")
    case = Dispute.objects.get(pk=first_contact_case.pk)
    assert case.state == "decided" and case.appeal_until is not None
    ruling = Ruling.objects.get(dispute=case)
    assert ruling.outcome == "award" and ruling.method == RulingMethod.MAJORITY
    assert ruling.tally == {"award": 2}
    contested.refresh_from_db()
    assert contested.owner == claimant
    event = OwnershipEvent.objects.filter(customer=contested).order_by("-sequence").first()
    assert event is not None
    assert event.kind == EventKind.RULED and event.cause == ruling
    assert event.from_owner == rep and event.to_owner == claimant
    told = set(
        Notification.objects.filter(kind="dispute_decided").values_list("recipient_id", flat=True)
    )
    assert told == {claimant.pk, rep.pk, manager.pk, other_manager.pk}
    steps = list(
        DisputeHistory.objects.filter(dispute=case)
        .order_by("at", "id")
        .values_list("from_state", "to_state")
    )
    assert steps == [("", "filed"), ("filed", "under_review"), ("under_review", "decided")]


def test_uphold_changes_no_owner(
    first_contact_case: Dispute, committee: list[User], rep: User, contested: Customer
) -> None:
    events = OwnershipEvent.objects.filter(customer=contested).count()
    vote(committee[1], first_contact_case, "uphold")
    vote(committee[2], first_contact_case, "uphold")
    contested.refresh_from_db()
    assert contested.owner == rep
    assert OwnershipEvent.objects.filter(customer=contested).count() == events
    assert Ruling.objects.get().effects == ["无负责人变更。"]


def test_send_to_the_pool(
    first_contact_case: Dispute, committee: list[User], contested: Customer
) -> None:
    vote(committee[1], first_contact_case, "pool")
    vote(committee[2], first_contact_case, "pool")
    contested.refresh_from_db()
    assert contested.owner is None


def test_a_tie_goes_to_the_chair_once(
    first_contact_case: Dispute, committee: list[User], settings: Any
) -> None:
    chair, zhou, wu = committee
    vote(zhou, first_contact_case, "award")
    vote(wu, first_contact_case, "uphold")
    case = Dispute.objects.get(pk=first_contact_case.pk)
    assert case.state == "under_review" and selectors.tally(case).tied
    assert selectors.needs_chair(case)
    assert Notification.objects.filter(kind="dispute_escalated", recipient=chair).count() == 1
    with pytest.raises(services.NotEligible):
        services.dispute_chair_decide(
            actor=zhou, dispute=case, outcome="uphold", rationale="我来定"
        )
    ruling = services.dispute_chair_decide(
        actor=chair, dispute=case, outcome="uphold", rationale="报备在先的原负责人保留。"
    )
    assert ruling.method == RulingMethod.CHAIR and ruling.decided_by == chair
    assert ruling.tally == {"award": 1, "uphold": 1}


def test_the_chair_cannot_overrule_a_case_the_votes_can_still_decide(
    first_contact_case: Dispute, committee: list[User]
) -> None:
    with pytest.raises(services.DisputeError, match="主席"):
        services.dispute_chair_decide(
            actor=committee[0], dispute=first_contact_case, outcome="award", rationale="x"
        )


def test_the_chair_decides_an_overdue_case(
    first_contact_case: Dispute, committee: list[User], claimant: User
) -> None:
    Dispute.objects.filter(pk=first_contact_case.pk).update(
        deadline=timezone.now() - timedelta(hours=1)
    )
    case = Dispute.objects.get(pk=first_contact_case.pk)
    assert selectors.needs_chair(case)
    services.dispute_chair_decide(
        actor=committee[0], dispute=case, outcome="award", rationale="逾期，主席裁决。"
    )
    case.refresh_from_db()
    assert case.state == "decided" and case.customer.owner == claimant


def test_a_configurable_quorum_and_majority(
    first_contact_case: Dispute, committee: list[User], settings: Any
) -> None:
    settings.DISPUTE_QUORUM = 3
    settings.DISPUTE_MAJORITY = 0.6
    chair, zhou, wu = committee
    vote(zhou, first_contact_case, "award")
    vote(wu, first_contact_case, "award")
    assert Dispute.objects.get(pk=first_contact_case.pk).state == "under_review"
    vote(chair, first_contact_case, "uphold")
    # 2 of 3 = 0.67 > 0.6 with quorum 3.
    assert Ruling.objects.get().outcome == "award"


def test_a_member_who_manages_a_party_cannot_vote(
    first_contact_case: Dispute, committee: list[User], other_team: Team
) -> None:
    member = committee[1]
    # Committee member who also heads the parent team of the claimant's team.
    parent = Team.objects.create(name="华北大区", manager=member)
    other_team.parent = parent
    other_team.save(update_fields=["parent"])
    assert selectors.conflicted(member, first_contact_case)
    with pytest.raises(services.NotEligible, match="不能投票"):
        vote(member, first_contact_case, "award")
    assert member not in selectors.eligible_voters(first_contact_case)
    assert not Vote.objects.exists()


def test_a_party_cannot_vote(first_contact_case: Dispute, committee: list[User]) -> None:
    member = committee[2]
    Dispute.objects.filter(pk=first_contact_case.pk).update(respondent=member)
    case = Dispute.objects.get(pk=first_contact_case.pk)
    assert selectors.conflicted(member, case)
    with pytest.raises(services.NotEligible):
        vote(member, case, "uphold")


def test_non_members_and_double_votes_are_refused(
    first_contact_case: Dispute, committee: list[User], manager: User, crm_admin: User
) -> None:
    for outsider in (manager, crm_admin):
        with pytest.raises(services.NotEligible):
            vote(outsider, first_contact_case, "award")
    vote(committee[1], first_contact_case, "award")
    with pytest.raises(services.AlreadyVoted):
        vote(committee[1], first_contact_case, "uphold")


def test_a_vote_needs_a_rationale_and_merge_needs_two_records(
    first_contact_case: Dispute, committee: list[User]
) -> None:
    with pytest.raises(services.DisputeInvalid) as error:
        services.dispute_vote(
            actor=committee[1], dispute=first_contact_case, outcome="award", rationale=" "
        )
    assert "rationale" in error.value.errors
    with pytest.raises(services.DisputeInvalid) as error:
        vote(committee[1], first_contact_case, "merge", award_to="claimant")
    assert "outcome" in error.value.errors


def test_members_see_votes_only_after_voting(
    first_contact_case: Dispute, committee: list[User], crm_admin: User
) -> None:
    chair, zhou, wu = committee
    vote(zhou, first_contact_case, "award")
    assert list(selectors.votes_visible_to(wu, first_contact_case)) == []
    assert list(selectors.votes_visible_to(crm_admin, first_contact_case)) == []
    assert [v.member for v in selectors.votes_visible_to(zhou, first_contact_case)] == [zhou]
    vote(wu, first_contact_case, "award")  # decides
    assert len(selectors.votes_visible_to(chair, first_contact_case)) == 2
    assert len(selectors.votes_visible_to(crm_admin, first_contact_case)) == 2


def test_one_appeal_decided_by_members_who_did_not_vote(
    first_contact_case: Dispute, committee: list[User], claimant: User, rep: User, settings: Any
) -> None:
    settings.DISPUTE_QUORUM = 1
    _chair, zhou, wu = committee
    vote(zhou, first_contact_case, "award")
    case = Dispute.objects.get(pk=first_contact_case.pk)
    assert case.state == "decided" and case.customer.owner == claimant
    appealed = services.dispute_appeal(actor=rep, dispute=case, text="我的报备在先，请复议。")
    assert appealed.state == "appealed" and appealed.round == 2
    assert appealed.deadline > timezone.now()
    assert not selectors.can_vote(zhou, appealed)
    with pytest.raises(services.NotEligible, match="复议"):
        vote(zhou, appealed, "uphold")
    vote(wu, appealed, "uphold")
    case = Dispute.objects.get(pk=case.pk)
    assert case.state == "decided" and case.round == 2
    assert case.customer.owner == rep
    assert list(Ruling.objects.filter(dispute=case).values_list("round", "outcome")) == [
        (1, "award"),
        (2, "uphold"),
    ]
    with pytest.raises(services.DisputeError, match="终局"):
        services.dispute_appeal(actor=claimant, dispute=case, text="再次复议")


def test_the_appeal_window_closes(
    first_contact_case: Dispute, committee: list[User], rep: User, settings: Any
) -> None:
    settings.DISPUTE_QUORUM = 1
    vote(committee[1], first_contact_case, "award")
    later = timezone.now() + timedelta(days=8)
    with pytest.raises(services.DisputeError, match="已过"):
        services.dispute_appeal(actor=rep, dispute=first_contact_case, text="晚了", now=later)


def test_the_chair_falls_back_when_the_named_chair_is_conflicted(
    first_contact_case: Dispute, committee: list[User], team: Team
) -> None:
    chair = committee[0]
    assert selectors.chair_for(first_contact_case) == chair
    team.manager = chair
    team.save(update_fields=["manager"])
    assert selectors.chair_for(first_contact_case) == committee[1]
    CommitteeMembership.objects.filter(user=committee[2]).update(is_chair=True)
    assert selectors.chair_for(first_contact_case) == committee[2]


def test_withdrawal_by_the_claimant_only(first_contact_case: Dispute, rep: User) -> None:
    with pytest.raises(services.NotEligible):
        services.dispute_withdraw(actor=rep, dispute=first_contact_case)
    case = services.dispute_withdraw(actor=first_contact_case.claimant, dispute=first_contact_case)
    assert case.state == "withdrawn" and case.closed_at is not None
    assert Notification.objects.filter(kind="dispute_withdrawn", recipient=rep).exists()
    with pytest.raises(services.DisputeError):
        vote(UserFactory(role=Role.COMMITTEE), case, "award")
