"""System checks that protect duplicate detection from a misconfigured database."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.db import connections
from django.db.utils import OperationalError

UNSAFE_CTYPES = {"C", "POSIX"}


def database_ctype(connection: Any) -> str:
    """LC_CTYPE of the connected database; any DB-API connection with a cursor() will do."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT datctype FROM pg_database WHERE datname = current_database()")
        row = cursor.fetchone()
    return str(row[0]) if row else ""


def check_ctype(ctype: str) -> list[CheckMessage]:
    if ctype.upper() in UNSAFE_CTYPES:
        return [
            Error(
                f"The database's LC_CTYPE is {ctype!r}: PostgreSQL's trigram matching then "
                "ignores Chinese characters (similarity 0) and duplicate detection silently "
                "fails.",
                hint="Create the database with a UTF-8 locale, e.g. "
                "CREATE DATABASE ... LC_CTYPE 'C.UTF-8' LC_COLLATE 'C.UTF-8' TEMPLATE template0.",
                id="guishu.E001",
            )
        ]
    return []


@register("database")
def database_locale_check(databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for alias in databases or []:
        try:
            ctype = database_ctype(connections[alias])
        except OperationalError:
            # An unreachable database is reported by Django's own checks and by /healthz.
            continue
        messages.extend(check_ctype(ctype))
    return messages
