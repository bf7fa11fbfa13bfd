"""Production's application role may read and append to the ledger, never change it.

The grant documented in the README (section "Running in production") is applied here to a
role, and each forbidden statement is tried as that role."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from crm import services as crm_services
from crm.models import User
from ownership.services import ownership_register

APP_ROLE = "guishu_ledger_test_app"


@pytest.fixture
def app_role(db: None) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        cursor.execute(f"GRANT SELECT, INSERT ON ownership_ownershipevent TO {APP_ROLE}")
        cursor.execute(
            f"REVOKE UPDATE, DELETE, TRUNCATE ON ownership_ownershipevent FROM {APP_ROLE}"
        )
    return APP_ROLE


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ownership_ownershipevent SET reason = 'x'",
        "DELETE FROM ownership_ownershipevent",
        "TRUNCATE ownership_ownershipevent",
    ],
)
def test_the_application_role_cannot_change_the_ledger(
    app_role: str, rep: User, statement: str
) -> None:
    customer = crm_services.customer_create(actor=rep, display_name="南京智联物流有限公司")
    ownership_register(actor=rep, customer=customer)
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"SET LOCAL ROLE {app_role}")
        cursor.execute(statement)


def test_the_application_role_can_read_the_ledger(app_role: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {app_role}")
        cursor.execute("SELECT count(*) FROM ownership_ownershipevent")
        assert cursor.fetchone() is not None
