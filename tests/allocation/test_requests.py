"""Reassignment requests (转移申请): the state machine, the two-manager rule, caps at
approval time, expiry and notifications — at service level, on real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from allocation import services
from allocation.models import (
    HistoryAction,
    ReassignmentRequest,
    RequestHistory,
    RequestKind,
    RequestState,
)
from allocation.services import (
    TRANSITIONS,
    IllegalTransition,
    NotAllowed,
    OpenRequestExists,
    ReceiverAtCap,
    RequestInvalid,
    request_transition,
)
from crm.models import Customer, EmploymentState, Notification, Role, User
from ownership.models import EventKind, OwnershipEvent, PoolPolicy
from tests.factories import CustomerFactory, TeamFactory, UserFactory

STATES = list(RequestState.values)


def _offer(rep: User, customer: Customer, to: User, **kwargs: Any) -> ReassignmentRequest:
    return services.request_offer(
        actor=rep, customer=customer, to_rep=to, reason="他更熟悉这个行业", **kwargs
    )


def _steps(request: ReassignmentRequest) -> list[tuple[str, str, str]]:
    return list(
        RequestHistory.objects.filter(request=request)
        .order_by("at", "id")
        .values_list("action", "from_state", "to_state")
    )


# --- The transition table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_state", "to_state"), [(a, b) for a in STATES for b in STATES if a != b]
)
def test_every_transition_is_legal_or_refused_by_name(
    rep: User, second_rep: User, manager: User, owned: Customer, from_state: str, to_state: str
) -> None:
    request = _offer(rep, owned, second_rep)
    # Put the row into `from_state` (test set-up only); `applied` needs its ledger event.
    event = OwnershipEvent.objects.filter(customer=owned).first()
    ReassignmentRequest.objects.filter(pk=request.pk).update(state=from_state, applied_event=event)
    before = RequestHistory.objects.filter(request=request).count()
    if to_state in TRANSITIONS[from_state]:
        changed, did_change = request_transition(
            request_id=request.pk, to_state=to_state, actor=manager, comment="按规则"
        )
        assert did_change and changed.state == to_state
        step = RequestHistory.objects.filter(request=request).latest("id")
        assert (step.from_state, step.to_state, step.actor, step.comment) == (
            from_state,
            to_state,
            manager,
            "按规则",
        )
        assert step.at is not None
    else:
        with pytest.raises(IllegalTransition) as refused:
            request_transition(request_id=request.pk, to_state=to_state, actor=manager)
        assert (refused.value.from_state, refused.value.to_state) == (from_state, to_state)
        assert "不能" in refused.value.message
        request.refresh_from_db()
        assert request.state == from_state
        assert RequestHistory.objects.filter(request=request).count() == before


def test_the_table_is_exactly_the_documented_machine() -> None:
    legal = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert legal == {
        ("pending", "approved"),
        ("pending", "rejected"),
        ("pending", "withdrawn"),
        ("pending", "expired"),
        ("approved", "applied"),
    }


def test_a_transition_to_the_current_state_changes_nothing(
    rep: User, second_rep: User, owned: Customer
) -> None:
    request = _offer(rep, owned, second_rep)
    before = _steps(request)
    same, changed = request_transition(request_id=request.pk, to_state="pending", actor=rep)
    assert not changed and same.state == "pending"
    assert _steps(request) == before


# --- Creating requests -------------------------------------------------------------------


def test_an_offer_is_recorded_with_its_history(
    rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    request = _offer(rep, owned, second_rep)
    assert request.kind == RequestKind.OFFER and request.state == RequestState.PENDING
    assert (request.from_owner, request.to_rep, request.requested_by) == (rep, second_rep, rep)
    assert request.source_team == rep.team and not request.needs_target_approval
    assert _steps(request) == [("submitted", "", "pending")]
    owned.refresh_from_db()
    assert owned.owner == rep  # nothing moves before approval


def test_only_the_owner_can_offer(second_rep: User, manager: User, owned: Customer) -> None:
    with pytest.raises(NotAllowed):
        _offer(second_rep, owned, manager)


def test_asking_needs_reason_and_evidence(second_rep: User, owned: Customer) -> None:
    with pytest.raises(RequestInvalid) as refused:
        services.request_ask(actor=second_rep, customer=owned, reason=" ", evidence="")
    assert set(refused.value.errors) == {"reason", "evidence"}
    assert ReassignmentRequest.objects.count() == 0


def test_only_one_open_request_per_customer(
    rep: User, second_rep: User, other_rep: User, owned: Customer
) -> None:
    _offer(rep, owned, second_rep)
    with pytest.raises(OpenRequestExists):
        services.request_ask(actor=other_rep, customer=owned, reason="我先联系的", evidence="展会")


def test_the_partial_unique_index_backs_the_one_open_rule(
    rep: User, second_rep: User, owned: Customer
) -> None:
    request = _offer(rep, owned, second_rep)
    copy = ReassignmentRequest.objects.get(pk=request.pk)
    copy.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save(force_insert=True)


def test_pool_customers_are_claimed_not_requested(second_rep: User, db: None) -> None:
    customer = CustomerFactory()
    with pytest.raises(NotAllowed) as refused:
        services.request_ask(actor=second_rep, customer=customer, reason="r", evidence="e")
    assert "公海" in refused.value.message


def test_a_departing_rep_cannot_receive(rep: User, second_rep: User, owned: Customer) -> None:
    User.objects.filter(pk=second_rep.pk).update(state=EmploymentState.DEPARTING)
    second_rep.refresh_from_db()
    with pytest.raises(services.DomainError):
        _offer(rep, owned, second_rep)


# --- Approval: one manager, two managers, implicit ---------------------------------------


def test_same_team_request_is_applied_on_the_managers_approval(
    rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    request = _offer(rep, owned, second_rep)
    before = timezone.now()
    applied = services.request_approve(actor=manager, request=request, comment="同意")
    assert applied.state == RequestState.APPLIED
    assert applied.source_approved_by == manager and applied.source_approved_at is not None
    owned.refresh_from_db()
    assert owned.owner == second_rep
    assert owned.clock_started_at is not None and owned.clock_started_at >= before
    event = OwnershipEvent.objects.filter(customer=owned).latest("sequence")
    assert event.kind == EventKind.TRANSFERRED
    assert event.cause == applied and applied.applied_event == event
    assert (event.from_owner, event.to_owner, event.actor) == (rep, second_rep, manager)
    assert _steps(applied) == [
        ("submitted", "", "pending"),
        ("approved_source", "pending", "pending"),
        ("approved", "pending", "approved"),
        ("applied", "approved", "applied"),
    ]


def test_cross_team_needs_both_managers_and_records_both(
    rep: User, manager: User, other_rep: User, other_manager: User, owned: Customer
) -> None:
    request = services.request_ask(
        actor=other_rep, customer=owned, reason="客户要求华北团队服务", evidence="11 月 3 日拜访"
    )
    assert request.needs_target_approval
    assert (request.source_team, request.target_team) == (rep.team, other_rep.team)
    # The receiving team's manager alone is not enough.
    half = services.request_approve(actor=other_manager, request=request)
    assert half.state == RequestState.PENDING and half.target_approved_by == other_manager
    owned.refresh_from_db()
    assert owned.owner == rep
    with pytest.raises(NotAllowed):
        services.request_approve(actor=other_manager, request=request)
    done = services.request_approve(actor=manager, request=request)
    assert done.state == RequestState.APPLIED
    assert (done.source_approved_by, done.target_approved_by) == (manager, other_manager)
    owned.refresh_from_db()
    assert owned.owner == other_rep
    assert [step[0] for step in _steps(done)] == [
        "submitted",
        "approved_target",
        "approved_source",
        "approved",
        "applied",
    ]


def test_reps_and_managers_of_unrelated_teams_cannot_approve(
    rep: User, second_rep: User, owned: Customer, other_manager: User
) -> None:
    request = _offer(rep, owned, second_rep)
    for person in (rep, second_rep, other_manager):
        with pytest.raises(NotAllowed):
            services.request_approve(actor=person, request=request)
        with pytest.raises(NotAllowed):
            services.request_reject(actor=person, request=request, comment="不行")
    request.refresh_from_db()
    assert request.state == RequestState.PENDING and request.source_approved_at is None


def test_a_parent_teams_manager_approves_for_the_nested_team(
    rep: User, owned: Customer, db: None
) -> None:
    assert rep.team is not None
    head = UserFactory(username="head", role=Role.MANAGER)
    parent = TeamFactory(name="销售中心", manager=head)
    rep.team.parent = parent
    rep.team.save(update_fields=["parent"])
    colleague = UserFactory(username="colleague", role=Role.REP, team=rep.team)
    request = _offer(rep, owned, colleague)
    assert services.request_approve(actor=head, request=request).state == "applied"


def test_a_manager_moving_within_the_team_approves_implicitly_but_it_is_recorded(
    rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    request = services.request_move(
        actor=manager, customer=owned, to_rep=second_rep, reason="均衡负荷"
    )
    assert request.kind == RequestKind.MOVE and request.state == RequestState.APPLIED
    assert request.source_approved_by == manager
    assert [step[0] for step in _steps(request)] == [
        "submitted",
        "approved_source",
        "approved",
        "applied",
    ]
    owned.refresh_from_db()
    assert owned.owner == second_rep


def test_a_manager_moving_into_another_team_waits_for_that_manager(
    rep: User, manager: User, other_rep: User, other_manager: User, owned: Customer
) -> None:
    request = services.request_move(
        actor=manager, customer=owned, to_rep=other_rep, reason="客户搬到北京"
    )
    assert request.state == RequestState.PENDING
    assert request.source_approved_by == manager and request.target_approved_at is None
    done = services.request_approve(actor=other_manager, request=request)
    assert done.state == RequestState.APPLIED


def test_a_manager_cannot_move_another_teams_customer(
    other_manager: User, second_rep: User, owned: Customer
) -> None:
    with pytest.raises(NotAllowed):
        services.request_move(actor=other_manager, customer=owned, to_rep=second_rep, reason="x")


def test_the_receivers_cap_is_checked_at_approval_time(
    rep: User,
    second_rep: User,
    manager: User,
    owned: Customer,
    global_pool_policy: PoolPolicy,
) -> None:
    request = _offer(rep, owned, second_rep)
    # The receiver fills up after the request was made.
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=1, warning_days=1)
    CustomerFactory(owner=second_rep)
    with pytest.raises(ReceiverAtCap) as refused:
        services.request_approve(actor=manager, request=request)
    assert "李娜" in refused.value.message and "上限" in refused.value.message
    request.refresh_from_db()
    # Nothing half saved: no approval recorded, still pending, owner unchanged.
    assert request.state == RequestState.PENDING and request.source_approved_at is None
    assert _steps(request) == [("submitted", "", "pending")]
    owned.refresh_from_db()
    assert owned.owner == rep


def test_approval_is_refused_when_the_owner_changed_meanwhile(
    rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    request = _offer(rep, owned, second_rep)
    from ownership.services import ownership_release

    ownership_release(actor=rep, customer=owned, reason="客户没有预算")
    with pytest.raises(services.DomainError):
        services.request_approve(actor=manager, request=request)
    request.refresh_from_db()
    assert request.state == RequestState.PENDING


def test_reject_needs_a_comment_and_withdraw_only_by_the_requester(
    rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    request = _offer(rep, owned, second_rep)
    with pytest.raises(RequestInvalid):
        services.request_reject(actor=manager, request=request, comment="")
    with pytest.raises(NotAllowed):
        services.request_withdraw(actor=second_rep, request=request)
    withdrawn = services.request_withdraw(actor=rep, request=request, comment="客户自己会联系")
    assert withdrawn.state == RequestState.WITHDRAWN and withdrawn.decided_at is not None
    with pytest.raises(IllegalTransition):
        services.request_approve(actor=manager, request=request)


def test_rejected_request_frees_the_customer_for_a_new_one(
    rep: User, second_rep: User, manager: User, owned: Customer
) -> None:
    request = _offer(rep, owned, second_rep)
    rejected = services.request_reject(actor=manager, request=request, comment="他已满负荷")
    assert rejected.state == RequestState.REJECTED
    step = RequestHistory.objects.filter(request=request).latest("id")
    assert (step.action, step.actor, step.comment) == (
        HistoryAction.REJECTED,
        manager,
        "他已满负荷",
    )
    assert _offer(rep, owned, second_rep).state == RequestState.PENDING


def test_bulk_approval_reports_each_refusal_alone(
    rep: User, second_rep: User, manager: User, global_pool_policy: PoolPolicy
) -> None:
    first = CustomerFactory(owner=rep)
    second = CustomerFactory(owner=rep)
    requests = [_offer(rep, first, second_rep), _offer(rep, second, second_rep)]
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=1, warning_days=1)
    outcome = services.requests_approve_many(actor=manager, requests=requests)
    assert len(outcome.done) == 1 and len(outcome.refused) == 1
    assert Customer.objects.filter(owner=second_rep).count() == 1


# --- Expiry --------------------------------------------------------------------------------


def test_requests_expire_set_based_and_idempotently(
    rep: User,
    second_rep: User,
    owned: Customer,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.REASSIGNMENT_REQUEST_EXPIRY_DAYS = 3
    now = timezone.now()
    old = _offer(rep, owned, second_rep, now=now - timedelta(days=4))
    fresh = _offer(rep, CustomerFactory(owner=rep), second_rep, now=now - timedelta(days=1))
    assert old.expires_at == old.created_at + timedelta(days=3)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.requests_expire(now=now) == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.state == RequestState.EXPIRED and old.decided_at == now
    assert fresh.state == RequestState.PENDING
    assert _steps(old)[-1] == ("expired", "pending", "expired")
    assert RequestHistory.objects.get(request=old, action="expired").actor is None
    sent = len(mail.outbox)
    assert sent >= 2  # requester and receiver (and the manager)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.requests_expire(now=now) == 0
    assert len(mail.outbox) == sent
    assert RequestHistory.objects.filter(request=old, action="expired").count() == 1


def test_the_celery_task_expires(
    rep: User, second_rep: User, owned: Customer, settings: Any
) -> None:
    from allocation.tasks import expire_requests

    settings.REASSIGNMENT_REQUEST_EXPIRY_DAYS = 1
    _offer(rep, owned, second_rep, now=timezone.now() - timedelta(days=2))
    assert expire_requests.delay().get() == 1
    assert expire_requests.delay().get() == 0


def test_the_expiry_is_scheduled() -> None:
    from crm.schedules import SCHEDULES

    assert "allocation.tasks.expire_requests" in {s.task for s in SCHEDULES}


# --- Notifications -------------------------------------------------------------------------


def test_everyone_involved_is_told_once_by_bell_and_mail(
    rep: User,
    manager: User,
    other_rep: User,
    other_manager: User,
    owned: Customer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    User.objects.filter(pk=other_rep.pk).update(language="en")
    other_rep.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        request = services.request_ask(
            actor=other_rep, customer=owned, reason="客户要求", evidence="拜访记录"
        )
    to_approve = Notification.objects.filter(kind="reassignment_to_approve")
    assert {n.recipient for n in to_approve} == {manager, other_manager}
    assert Notification.objects.get(kind="reassignment_submitted").recipient == rep
    assert "请审批" in to_approve.get(recipient=manager).title
    assert {m.to[0] for m in mail.outbox} == {manager.email, other_manager.email, rep.email}
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(actor=other_manager, request=request)
        services.request_approve(actor=manager, request=request)
    decided = Notification.objects.filter(kind="reassignment_decided")
    # The last approver acted and is not told; everyone else once.
    assert sorted(n.recipient.username for n in decided) == sorted(
        [rep.username, other_rep.username, other_manager.username]
    )
    english = decided.get(recipient=other_rep)
    assert english.title.startswith("Transfer done")  # in the recipient's language
    assert "转移完成" in decided.get(recipient=rep).title
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [rep.email, other_rep.email, other_manager.email]
    )
    message = next(m for m in mail.outbox if m.to == [rep.email])
    assert message.alternatives and "text/html" in message.alternatives[0][1]
    assert f"/requests/{request.pk}/" in message.body
    # A repeated (no-op) transition sends nothing more.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request_transition(request_id=request.pk, to_state="applied", actor=manager)
    assert mail.outbox == []


def test_a_merge_moves_the_open_request_to_the_surviving_record(
    owned: Customer, rep: User, second_rep: User
) -> None:
    from crm import services as crm_services
    from tests.factories import CustomerFactory

    survivor = CustomerFactory(owner=rep)
    request = services.request_ask(
        actor=second_rep, customer=owned, reason="我先联系", evidence="通话记录"
    )
    crm_services.customer_merge(actor=None, merged=owned, survivor=survivor)
    request.refresh_from_db()
    assert request.customer == survivor
    assert request.state == RequestState.PENDING
    moved = RequestHistory.objects.filter(request=request).order_by("-at", "-id").first()
    assert moved is not None and moved.action == HistoryAction.MOVED


def test_a_merge_withdraws_the_request_when_the_survivor_has_one(
    owned: Customer, rep: User, second_rep: User, manager: User
) -> None:
    from crm import services as crm_services
    from tests.factories import CustomerFactory

    survivor = CustomerFactory(owner=rep)
    kept = services.request_ask(actor=second_rep, customer=survivor, reason="甲", evidence="电话")
    dropped = services.request_ask(actor=second_rep, customer=owned, reason="乙", evidence="拜访")
    crm_services.customer_merge(actor=None, merged=owned, survivor=survivor)
    dropped.refresh_from_db()
    kept.refresh_from_db()
    assert dropped.state == RequestState.WITHDRAWN and dropped.customer == owned
    assert kept.state == RequestState.PENDING
