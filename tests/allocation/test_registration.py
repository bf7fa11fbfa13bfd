"""Registration (报备): outcomes, evidence, and first entry wins under real concurrency."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import close_old_connections, connection

from allocation.models import Registration, RegistrationOutcome
from allocation.services import SOFT_MATCH, RegistrationForm, registration_submit
from crm import services as crm_services
from crm.models import Customer, Role, Team, User
from ownership.models import EventKind, OwnershipEvent, PoolPolicy
from tests.factories import TeamFactory, UserFactory


def test_first_registration_owns_the_customer_and_is_evidence(rep: User) -> None:
    result = registration_submit(
        actor=rep,
        form=RegistrationForm(
            display_name="北京字节跳动科技有限公司",
            first_contact_name="张总",
            first_contact_phone="13800138000",
            evidence="2026-11-20 展会上交换名片",
        ),
    )
    assert result.outcome == RegistrationOutcome.REGISTERED
    customer = result.customer
    assert customer is not None and customer.owner == rep
    assert customer.clock_started_at is not None
    event = OwnershipEvent.objects.get(customer=customer)
    assert event.kind == EventKind.REGISTERED
    assert event.reason == "2026-11-20 展会上交换名片"
    assert event.cause == result.registration
    assert customer.contacts.get().name == "张总"


def test_second_rep_gets_the_collision_for_the_same_company_written_differently(
    rep: User, second_rep: User
) -> None:
    registration_submit(actor=rep, form=RegistrationForm(display_name="北京字节跳动科技有限公司"))
    result = registration_submit(
        actor=second_rep, form=RegistrationForm(display_name="字节跳动科技（北京）有限公司")
    )
    assert result.outcome == RegistrationOutcome.COLLISION
    assert result.customer is not None and result.customer.owner == rep
    # The collision is recorded too: it is the second rep's evidence in a dispute.
    assert Registration.objects.filter(rep=second_rep, outcome="collision").count() == 1
    assert Customer.objects.count() == 1


def test_soft_match_must_be_confirmed_and_the_confirmation_is_stored(
    rep: User, second_rep: User
) -> None:
    first = registration_submit(
        actor=rep, form=RegistrationForm(display_name="字节跳动科技有限公司")
    )
    result = registration_submit(
        actor=second_rep, form=RegistrationForm(display_name="字节挑动科技有限公司")
    )
    assert result.outcome == SOFT_MATCH
    assert [m.customer.pk for m in result.matches] == [first.customer.pk]  # type: ignore[union-attr]
    assert Customer.objects.count() == 1
    confirmed = registration_submit(
        actor=second_rep,
        form=RegistrationForm(display_name="字节挑动科技有限公司"),
        confirmed_distinct=[first.customer.pk],  # type: ignore[union-attr]
    )
    assert confirmed.outcome == RegistrationOutcome.REGISTERED
    registration = confirmed.registration
    assert registration is not None and registration.confirmed_different
    assert registration.soft_matches_shown[0]["customer_id"] == first.customer.pk  # type: ignore[union-attr]


def test_cap_reached_creates_nothing(rep: User, global_pool_policy: PoolPolicy) -> None:
    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=1, warning_days=1)
    registration_submit(actor=rep, form=RegistrationForm(display_name="上海云帆信息技术有限公司"))
    result = registration_submit(
        actor=rep, form=RegistrationForm(display_name="杭州青禾生物科技有限公司")
    )
    assert result.outcome == RegistrationOutcome.CAP_REACHED
    assert (result.owned, result.cap) == (1, 1)
    assert Customer.objects.count() == 1


def test_a_registration_locks_the_rep_and_reads_policy_and_holding_once(
    rep: User, global_pool_policy: PoolPolicy
) -> None:
    from django.test.utils import CaptureQueriesContext

    from ownership.services import ownership_register

    parent = TeamFactory(name="华北大区")
    Team.objects.filter(pk=rep.team_id).update(parent=parent)
    PoolPolicy.objects.create(team=parent, max_owned=3)
    earlier = crm_services.customer_create(actor=None, display_name="天津港湾物流有限公司")
    ownership_register(actor=rep, customer=earlier)
    with CaptureQueriesContext(connection) as captured:
        result = registration_submit(
            actor=rep, form=RegistrationForm(display_name="北京字节跳动科技有限公司")
        )
    assert result.outcome == RegistrationOutcome.REGISTERED
    statements = [query["sql"] for query in captured.captured_queries]
    # The rep's row is locked once, the policy (two levels up) read once, the holding
    # counted once, the customer not reloaded after the writer's update.
    assert sum('FROM "crm_user"' in sql and "FOR UPDATE" in sql for sql in statements) == 1
    assert sum("ownership_poolpolicy" in sql for sql in statements) == 1
    assert sum("SELECT COUNT(*)" in sql.upper() and "owner_id" in sql for sql in statements) == 1
    assert not any('FROM "crm_team"' in sql for sql in statements)
    # The customer was inserted by this very transaction (nobody else can see it): the writer
    # neither locks nor reloads it, nor looks for ledger events, grants or holds it cannot
    # have; the advisory locks of its identity are taken in one statement.
    assert not any(
        sql.startswith('SELECT "crm_customer"."id"') and "FOR UPDATE" in sql for sql in statements
    )
    assert not any('FROM "ownership_ownershipevent"' in sql for sql in statements)
    assert not any("crm_customeruserobjectpermission" in sql for sql in statements)
    assert not any("crm_customerphone" in sql for sql in statements)  # no phone entered
    assert sum("pg_advisory_xact_lock" in sql for sql in statements) == 1
    # The writer takes no savepoint for it either: none between the registration row and
    # the ledger event, and the owner update directly follows the event.
    [row] = [i for i, sql in enumerate(statements) if 'INTO "allocation_registration"' in sql]
    [event] = [i for i, sql in enumerate(statements) if 'INTO "ownership_ownershipevent"' in sql]
    assert row < event and not any("SAVEPOINT" in sql for sql in statements[row:event])
    assert statements[event + 1].startswith('UPDATE "crm_customer"')
    customer = result.customer
    assert customer is not None and customer.owner == rep
    assert customer.owned_since is not None and customer.clock_started_at == customer.owned_since
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.owner_id, stored.owned_since, stored.updated_at) == (
        rep.pk,
        customer.owned_since,
        customer.updated_at,
    )
    # The count is kept current: the next registration reaches the team's cap of 3 …
    registration_submit(actor=rep, form=RegistrationForm(display_name="杭州青禾生物科技有限公司"))
    refused = registration_submit(
        actor=rep, form=RegistrationForm(display_name="成都蜀锦文化传媒有限公司")
    )
    assert (refused.outcome, refused.owned, refused.cap) == (RegistrationOutcome.CAP_REACHED, 3, 3)


def test_a_registration_starts_a_chain_that_verifies(rep: User, second_rep: User) -> None:
    from ownership.ledger import verify_chains
    from ownership.services import ownership_release

    result = registration_submit(
        actor=rep,
        form=RegistrationForm(display_name="北京字节跳动科技有限公司", phone="13800138000"),
    )
    customer = result.customer
    assert customer is not None
    assert list(customer.phones.values_list("number", flat=True)) == ["+8613800138000"]
    ownership_release(actor=rep, customer=customer, reason="不再跟进")
    events = OwnershipEvent.objects.filter(customer=customer)
    assert list(events.order_by("sequence").values_list("sequence", "kind")) == [
        (1, EventKind.REGISTERED),
        (2, EventKind.RELEASED),
    ]
    assert verify_chains(events, {customer.pk: None}) == []


def test_the_writer_takes_only_a_new_unowned_customer_as_created_here(rep: User) -> None:
    from ownership.services import OwnershipError, ownership_register, rep_locked

    owned = registration_submit(
        actor=rep, form=RegistrationForm(display_name="北京字节跳动科技有限公司")
    ).customer
    assert owned is not None
    with rep_locked(rep) as locked, pytest.raises(OwnershipError):
        ownership_register(actor=rep, customer=owned, locked=locked, created_here=True)
    assert OwnershipEvent.objects.filter(customer=owned).count() == 1


def test_a_rep_lock_serves_only_its_own_block_and_rep(rep: User, second_rep: User) -> None:
    from ownership.services import OwnershipError, ownership_register, rep_locked

    customer = crm_services.customer_create(actor=None, display_name="上海云帆信息技术有限公司")
    with rep_locked(rep) as locked, pytest.raises(OwnershipError):
        ownership_register(actor=second_rep, customer=customer, locked=locked)
    with pytest.raises(OwnershipError):
        ownership_register(actor=rep, customer=customer, locked=locked)  # the block has ended
    assert Customer.objects.get(pk=customer.pk).owner_id is None


def test_pool_customer_is_offered_as_a_claim(rep: User, second_rep: User) -> None:
    from ownership.services import ownership_release

    first = registration_submit(
        actor=rep, form=RegistrationForm(display_name="南京智联物流有限公司")
    )
    ownership_release(actor=rep, customer=first.customer, reason="无需求")  # type: ignore[arg-type]
    result = registration_submit(
        actor=second_rep, form=RegistrationForm(display_name="南京智联物流")
    )
    assert result.outcome == RegistrationOutcome.IN_POOL


def _run_concurrently(workers: list[threading.Thread]) -> None:
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)


VARIANTS = [
    "北京字节跳动科技有限公司",
    "字节跳动科技(北京)有限公司",
    "字节跳动（北京）科技有限公司",
    "字节跳动科技",
    "北京 字节跳动 科技 有限公司",
    "北京字節跳動科技有限公司",
]


@pytest.mark.django_db(transaction=True)
def test_of_sixteen_simultaneous_registrations_exactly_one_wins() -> None:
    team = TeamFactory(name="并发团队")
    reps = [UserFactory(username=f"race{i}", role=Role.REP, team=team) for i in range(16)]
    barrier = threading.Barrier(len(reps))
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def register(rep: User, index: int) -> None:
        try:
            barrier.wait()
            result = registration_submit(
                actor=rep, form=RegistrationForm(display_name=VARIANTS[index % len(VARIANTS)])
            )
            outcomes.append(result.outcome)
        except BaseException as error:  # noqa: BLE001 - any error fails the test below
            errors.append(error)
        finally:
            connection.close()

    _run_concurrently(
        [threading.Thread(target=register, args=(rep, i)) for i, rep in enumerate(reps)]
    )
    close_old_connections()
    assert errors == []
    assert Counter(outcomes) == {"registered": 1, "collision": 15}
    assert Customer.objects.count() == 1
    assert OwnershipEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_soft_matches_do_not_both_pass_unseen() -> None:
    team = TeamFactory(name="软匹配团队")
    reps = [UserFactory(username=f"soft{i}", role=Role.REP, team=team) for i in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def register(rep: User, name: str) -> None:
        try:
            barrier.wait()
            outcomes.append(
                registration_submit(actor=rep, form=RegistrationForm(display_name=name)).outcome
            )
        finally:
            connection.close()

    _run_concurrently(
        [
            threading.Thread(target=register, args=(reps[0], "字节跳动科技有限公司")),
            threading.Thread(target=register, args=(reps[1], "字节挑动科技有限公司")),
        ]
    )
    close_old_connections()
    assert sorted(outcomes) == ["registered", "soft_match"]
    assert Customer.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_registrations_never_exceed_the_holding_cap(
    global_pool_policy: PoolPolicy,
) -> None:
    from ownership.services import ownership_register

    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(max_owned=5, warning_days=1)
    rep = UserFactory(username="capped_reg", role=Role.REP, team=TeamFactory(name="报备上限团队"))
    for i in range(4):
        owned = crm_services.customer_create(
            actor=None, display_name=f"已有客户{i}号贸易有限公司", allow_possible_duplicates=True
        )
        ownership_register(actor=rep, customer=owned)
    names = ["甲乙", "丙丁", "戊己", "庚辛", "壬癸", "子丑", "寅卯", "辰巳", "午未", "申酉"]
    barrier = threading.Barrier(len(names))
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def register(name: str) -> None:
        try:
            barrier.wait()
            result = registration_submit(
                actor=rep, form=RegistrationForm(display_name=f"{name}新材料科技有限公司")
            )
            outcomes.append(result.outcome)
        except BaseException as error:  # noqa: BLE001 - any error fails the test below
            errors.append(error)
        finally:
            connection.close()

    _run_concurrently([threading.Thread(target=register, args=(name,)) for name in names])
    close_old_connections()
    assert errors == []
    # The rep's row lock queues them: the first takes the last place, the others are
    # refused before their duplicate check.
    assert Counter(outcomes) == {"registered": 1, "cap_reached": 9}
    assert Customer.objects.filter(owner=rep).count() == 5
    # Refused registrations leave nothing behind: 4 + 1 customers, 5 registered events.
    assert Customer.objects.count() == 5
    assert OwnershipEvent.objects.filter(to_owner=rep).count() == 5


@pytest.mark.django_db(transaction=True)
def test_parallel_claims_never_exceed_the_holding_cap(global_pool_policy: PoolPolicy) -> None:
    from crm import services as crm_services
    from ownership.services import OwnershipError, ownership_claim, ownership_register

    PoolPolicy.objects.filter(pk=global_pool_policy.pk).update(
        max_owned=5, max_claims_per_day=50, warning_days=1
    )
    team = TeamFactory(name="上限团队")
    rep = UserFactory(username="capped", role=Role.REP, team=team)
    for i in range(4):
        owned = crm_services.customer_create(
            actor=None, display_name=f"已有客户{i}号贸易有限公司", allow_possible_duplicates=True
        )
        ownership_register(actor=rep, customer=owned)
    pool = [
        crm_services.customer_create(
            actor=None, display_name=f"公海{name}科技有限公司", allow_possible_duplicates=True
        )
        for name in ["甲乙", "丙丁", "戊己", "庚辛", "壬癸", "子丑", "寅卯", "辰巳", "午未", "申酉"]
    ]
    barrier = threading.Barrier(len(pool))
    results: list[str] = []

    def claim(customer: Customer) -> None:
        try:
            barrier.wait()
            ownership_claim(actor=rep, customer=customer)
            results.append("claimed")
        except OwnershipError:
            results.append("refused")
        finally:
            connection.close()

    _run_concurrently([threading.Thread(target=claim, args=(c,)) for c in pool])
    close_old_connections()
    assert Counter(results) == {"claimed": 1, "refused": 9}
    assert Customer.objects.filter(owner=rep).count() == 5
