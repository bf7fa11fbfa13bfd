"""crm.prepared runs a statement as cursor.execute would, preparing it once per session,
in one query the first time as every later time."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from crm import prepared
from crm.prepared import _positional

pytestmark = pytest.mark.django_db


def _prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def test_placeholders_become_positional() -> None:
    assert _positional("SELECT %s, 'a%%b' WHERE x %% %s") == ("SELECT $1, 'a%b' WHERE x % $2", 2)
    with pytest.raises(ValueError, match="unsupported placeholder"):
        _positional("SELECT %d")


def test_same_answers_and_one_query_each_time() -> None:
    sql = "SELECT %s::int + 1, %s::text || '%%', ARRAY(SELECT unnest(%s::int[]) * 2)"
    for value in range(8):
        with CaptureQueriesContext(connection) as captured, connection.cursor() as cursor:
            prepared.execute(cursor, sql, [value, "名", [value, 5]])
            row = cursor.fetchone()
        assert row == (value + 1, "名%", [value * 2, 10])
        assert len(captured.captured_queries) == 1
    assert any(name.startswith("g_") for name in _prepared_names())


def test_a_failed_first_run_is_recovered_from() -> None:
    sql = "SELECT 1 / %s::int"
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        prepared.execute(cursor, sql, [0])  # PREPARE succeeds, EXECUTE divides by zero
    with connection.cursor() as cursor:
        prepared.execute(cursor, sql, [1])  # neither prepares twice nor loses the statement
        assert cursor.fetchone() == (1,)
        prepared.execute(cursor, sql, [1])
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(transaction=True)
def test_a_new_session_prepares_again() -> None:
    sql = "SELECT %s::int * 3"
    with connection.cursor() as cursor:
        prepared.execute(cursor, sql, [2])
        assert cursor.fetchone() == (6,)
    connection.close()
    with connection.cursor() as cursor:
        prepared.execute(cursor, sql, [3])
        assert cursor.fetchone() == (9,)


def test_parameters_must_match_the_placeholders() -> None:
    with connection.cursor() as cursor, pytest.raises(ValueError, match="placeholders"):
        prepared.execute(cursor, "SELECT %s", [])


def test_the_statement_text_stays_readable_in_the_query_log() -> None:
    sql = "SELECT %s::int AS answer /* a comment */"
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured, connection.cursor() as cursor:
            prepared.execute(cursor, sql, [42])
            assert cursor.fetchone() == (42,)
        assert "SELECT $1::int AS answer" in captured.captured_queries[0]["sql"]
