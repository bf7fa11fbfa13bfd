"""The ledger is append-only in the database itself and its chains are verifiable."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from crm import services as crm_services
from crm.models import Customer, User
from ownership import services
from ownership.models import EventKind, OwnershipEvent


def _customer(name: str = "上海云帆信息技术有限公司") -> Customer:
    return crm_services.customer_create(actor=None, display_name=name)


@pytest.fixture
def registered(rep: User, second_rep: User) -> Customer:
    customer = _customer()
    services.ownership_register(actor=rep, customer=customer, evidence="展会上交换名片")
    return customer


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ownership_ownershipevent SET reason = 'rewritten'",
        "DELETE FROM ownership_ownershipevent",
        "TRUNCATE ownership_ownershipevent CASCADE",
    ],
)
def test_database_refuses_to_change_the_ledger(registered: Customer, statement: str) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        # As in production: this session is not the throw-away test database's escape hatch.
        cursor.execute("SET LOCAL guishu.test_database = 'off'")
        cursor.execute(statement)
    assert OwnershipEvent.objects.filter(customer=registered).count() == 1


def test_each_change_appends_one_chained_event(
    registered: Customer, rep: User, second_rep: User, manager: User
) -> None:
    services.ownership_release(actor=rep, customer=registered, reason="客户无需求")
    services.ownership_claim(actor=second_rep, customer=registered)
    events = list(OwnershipEvent.objects.filter(customer=registered).order_by("sequence"))
    assert [e.kind for e in events] == [
        EventKind.REGISTERED,
        EventKind.RELEASED,
        EventKind.CLAIMED,
    ]
    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[0].prev_hash == ""
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert events[1].from_owner == rep and events[1].to_owner is None
    assert events[2].to_owner == second_rep and events[2].actor == second_rep
    registered.refresh_from_db()
    assert registered.owner == second_rep


def test_verify_ledger_passes_on_an_intact_ledger(registered: Customer) -> None:
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger intact" in out.getvalue()


def _disable_protection(sql: str, params: list[object]) -> None:
    # Simulate an attacker with table-owner rights who switches the triggers off.
    with connection.cursor() as cursor:
        # Deferred foreign-key checks would otherwise block ALTER TABLE in this transaction.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE ownership_ownershipevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE ownership_ownershipevent ENABLE TRIGGER USER")


def test_verify_ledger_names_a_tampered_customer(registered: Customer, rep: User) -> None:
    other = _customer("杭州青禾生物科技有限公司")
    services.ownership_register(actor=rep, customer=other)
    _disable_protection(
        "UPDATE ownership_ownershipevent SET reason = %s WHERE customer_id = %s",
        ["改写的证据", registered.pk],
    )
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_ledger", stderr=err)
    assert f"customer {registered.pk}: event #1 was altered" in err.getvalue()
    assert f"customer {other.pk}" not in err.getvalue()


def test_verify_ledger_names_an_owner_that_the_ledger_does_not_explain(
    registered: Customer, second_rep: User
) -> None:
    # A write that bypassed the single writer.
    Customer.objects.filter(pk=registered.pk).update(owner=second_rep)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_ledger", stderr=err)
    assert f"customer {registered.pk}: owner is {second_rep.pk}" in err.getvalue()


def test_verify_ledger_names_a_deleted_event(registered: Customer, rep: User) -> None:
    services.ownership_release(actor=rep, customer=registered, reason="不再跟进")
    services.ownership_claim(actor=rep, customer=registered)
    _disable_protection(
        "DELETE FROM ownership_ownershipevent WHERE customer_id = %s AND sequence = 2",
        [registered.pk],
    )
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_ledger", stderr=err)
    assert f"customer {registered.pk}: event #2 is missing" in err.getvalue()
