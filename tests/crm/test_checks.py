"""The locale system check refuses a database whose LC_CTYPE would blind pg_trgm to Chinese."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from django.db import connection

from crm.checks import check_ctype, database_ctype, database_locale_check


@pytest.fixture
def c_locale_database(django_db_blocker: pytest.FixtureRequest) -> Iterator[Any]:
    name = f"guishu_c_locale_{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} LC_CTYPE 'C' LC_COLLATE 'C' TEMPLATE template0")
        params = connection.get_connection_params()
        params["dbname"] = name
        params.pop("database", None)
        wrapper = psycopg2.connect(**params)
        try:
            yield wrapper
        finally:
            wrapper.close()
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")


def test_c_locale_database_is_rejected(c_locale_database: Any) -> None:
    ctype = database_ctype(c_locale_database)
    assert ctype == "C"
    errors = check_ctype(ctype)
    assert [error.id for error in errors] == ["guishu.E001"]
    assert "trigram" in errors[0].msg


@pytest.mark.django_db
def test_test_database_passes_the_check() -> None:
    assert database_locale_check(databases=["default"]) == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT show_trgm('你好')")
        assert cursor.fetchone()[0] != []


def test_posix_is_rejected_too() -> None:
    assert check_ctype("POSIX")
    assert not check_ctype("C.UTF-8")
    assert not check_ctype("en_US.UTF-8")
