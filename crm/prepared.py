"""Fixed statements planned once per database session (PostgreSQL prepared statements).

A registration and the page it leads to run a dozen short statements whose text never
changes (the effective pool policy, the holding count, the signed-in user, the customer and
its ledger). PostgreSQL planned each of them on every run, and planning cost more than
running them. psycopg2 binds parameters on the client, so this module prepares a statement
on its first run on a connection and executes it by name afterwards; PostgreSQL then reuses
its plan (or keeps planning per run, where a generic plan would be worse).

The first run sends ``PREPARE`` and ``EXECUTE`` as one query, so a page runs the same number
of queries on a new connection as on an old one. Prepared statements belong to the session:
behind a transaction-pooling connection pooler (pgbouncer in transaction mode) they would
be lost between transactions; Guishu connects to PostgreSQL directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


def _positional(sql: str) -> tuple[str, int]:
    """psycopg2's placeholders (``%s``, ``%%``) as PostgreSQL's (``$1`` …, ``%``)."""
    out: list[str] = []
    count = 0
    index = 0
    while index < len(sql):
        char = sql[index]
        if char == "%":
            following = sql[index + 1 : index + 2]
            if following == "s":
                count += 1
                out.append(f"${count}")
            elif following == "%":
                out.append("%")
            else:
                raise ValueError(f"unsupported placeholder %{following} in a prepared statement")
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out), count


@dataclass(frozen=True)
class _Statement:
    name: str
    count: int  # placeholders
    call: str  # EXECUTE name(%s, …) /* the text */, for the client-side interpolation
    prepare: str  # PREPARE name AS the text, its % signs escaped likewise


@lru_cache(maxsize=1024)
def _statement(sql: str) -> _Statement:
    """What a statement's text gives, worked out once per text: each run only looks it up."""
    name = "g_" + hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()
    positional, count = _positional(sql)
    escaped = positional.replace("%", "%%")
    call = f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"
    # The text rides along as a comment: query logs and captured queries still say what
    # ran (the server skips comments before parsing anything). PostgreSQL nests block
    # comments, so the text's own comment marks are broken up.
    comment = escaped.replace("/*", "/ *").replace("*/", "* /")
    return _Statement(
        name=name,
        count=count,
        call=f"{call} /* {comment} */",
        prepare=f"PREPARE {name} AS {escaped}",
    )


def execute(
    cursor: Any,
    sql: str,
    params: Sequence[Any] = (),
    *,
    before: tuple[str, Sequence[Any]] | None = None,
) -> None:
    """``cursor.execute(sql, params)`` for a Django cursor, the statement prepared on the
    cursor's connection the first time and executed by name after that. `sql` uses
    psycopg2's placeholders and must be one statement whose text does not depend on data
    and that names its result columns (a prepared ``SELECT *`` fails once a migration adds
    a column). `before`, a statement with its parameters (such as a setting the statement
    reads), runs first in the same round trip, unprepared."""
    statement = _statement(sql)
    if len(params) != statement.count:
        raise ValueError(f"{statement.count} placeholders, {len(params)} parameters")
    database = cursor.db
    raw = database.connection
    # The session's statements: prepared, and those whose first run failed (PREPARE may
    # have succeeded before the EXECUTE did). A new session (reconnect) starts empty.
    # Django's connection objects are per thread, so no lock is needed.
    state = database.__dict__.get("_prepared_statements")
    if state is None or state[0] is not raw:
        state = (raw, set(), set())
        database.__dict__["_prepared_statements"] = state
    prepared: set[str] = state[1]
    uncertain: set[str] = state[2]
    name = statement.name
    if name in uncertain:
        cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [name])
        if cursor.fetchone() is not None:
            prepared.add(name)
        uncertain.discard(name)
    head, head_params = ("", []) if before is None else (f"{before[0]}; ", list(before[1]))
    if name in prepared:
        cursor.execute(head + statement.call, [*head_params, *params])
        return
    # One round trip (and one query in Django's count).
    try:
        cursor.execute(f"{head}{statement.prepare}; {statement.call}", [*head_params, *params])
    except Exception:
        uncertain.add(name)
        raise
    prepared.add(name)
