"""Latency of the allocation suggestion page (分配) against a large database.

    .venv/bin/python bench/allocation.py [--n 1000000] [--requests 40] [--reuse]

Creates its own database (``guishu_bench_allocation`` on the server of DATABASE_URL; never
the dev data; the approach and helpers of bench/identity_latency.py) and loads with COPY:
N customers (most in the public pool), teams of 50 reps (the bench team among them, with
a departing and an inactive rep and a few at their holding cap), owned books of 10-55
customers per rep, follow-ups (some reaching 100%: the wins the suggestions read) and
recycled ledger events (the penalty). Then a manager asks the real page,
``GET /allocation/suggest/?customer=…`` with 200 pool customers chosen at random, through
the Django test client (middleware, selectors, template), and the figures are printed:
p50/p95/p99 of the page, of the selector work alone, and the query count.

Target: p95 <= 300 ms for 200 customers over a 50-rep team with 1,000,000 customers.
``--n`` makes a smaller run; ``--reuse`` keeps an existing bench database of that size.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from identity_latency import bench_database, percentile, setup_django, summary  # noqa: E402
from verdict import check, exit_code  # noqa: E402

PROVINCES = ["江苏省", "浙江省", "上海市", "北京市", "广东省", "山东省", "四川省", "湖北省"]
TEAM_SIZE = 50
SELECTION = 200


def log(text: str) -> None:
    print(text, flush=True)


def _not_null_defaults(cursor: Any, table: str, given: set[str]) -> dict[str, str]:
    """Values for NOT NULL columns the loader does not name (columns added by later
    migrations), so that the bench keeps working as the schema grows."""
    cursor.execute(
        """
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL
          AND is_identity = 'NO'
        """,
        [table],
    )
    fill = {"boolean": "f", "smallint": "0", "integer": "0", "bigint": "0", "jsonb": "{}"}
    defaults = {}
    for name, data_type in cursor.fetchall():
        if name in given:
            continue
        if data_type.startswith("timestamp"):
            defaults[name] = "2026-01-01 00:00:00+08"
        else:
            defaults[name] = fill.get(data_type, "")
    return defaults


def _copy(cursor: Any, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    extra = _not_null_defaults(cursor, table, set(columns))
    names = columns + list(extra)
    buffer = io.StringIO()
    for row in rows:
        values = [row[c] for c in columns] + list(extra.values())
        buffer.write("\t".join("\\N" if v is None else str(v) for v in values) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(names)}) FROM STDIN", buffer)


def _secondary_indexes(cursor: Any, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = ANY(%s)
          AND NOT EXISTS (
            SELECT 1 FROM pg_constraint c WHERE c.conindid = (
                quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)
        """,
        [list(tables)],
    )
    return list(cursor.fetchall())


def load(n: int, seed: int = 42) -> dict[str, int]:
    """Teams, reps, N customers, follow-ups and recycled events; returns the bench ids."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from crm.models import Industry, Role, Team, User

    rng = random.Random(seed)
    started = time.perf_counter()
    teams_count = max(2, min(40, n // 25_000))
    teams = [Team.objects.create(name=f"销售{i + 1}部") for i in range(teams_count)]
    password = make_password(None)
    people = []
    for t, team in enumerate(teams):
        people.append(User(username=f"mgr{t}", password=password, role=Role.MANAGER, team=team))
        for r in range(TEAM_SIZE):
            state = "active"
            active = True
            if t == 0 and r == 0:
                state = "departing"
            if t == 0 and r == 1:
                active = False
            people.append(
                User(
                    username=f"rep{t}_{r}",
                    display_name=f"销售{t}-{r}",
                    password=password,
                    role=Role.REP,
                    team=team,
                    state=state,
                    is_active=active,
                )
            )
    User.objects.bulk_create(people, batch_size=1000)
    managers = {u.team_id: u for u in User.objects.filter(role=Role.MANAGER)}
    for team in teams:
        team.manager = managers[team.pk]
        team.save(update_fields=["manager"])
    reps = list(User.objects.filter(role=Role.REP).order_by("pk").values_list("pk", flat=True))
    industries: list[int | None] = list(Industry.objects.values_list("pk", flat=True)) or [None]
    now = datetime.now().astimezone()
    stamp = now.isoformat()
    # Owned books: 10-55 per rep (above 50 = at the default cap), the rest is the pool.
    owners: list[int | None] = []
    for rep in reps:
        owners.extend([rep] * rng.randint(10, 55))
    owners = owners[: n // 2]
    owners.extend([None] * (n - len(owners)))
    customers: list[dict[str, Any]] = []
    follow_ups: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for cid, owner in enumerate(owners, start=1):
        won = owner is not None and rng.random() < 0.12
        stage = 100 if won else rng.choice((0, 0, 25, 50, 75)) if owner else 0
        started_at = (now - timedelta(days=rng.randint(1, 170))).isoformat() if owner else None
        customers.append(
            {
                "id": cid,
                "display_name": f"基准客户{cid:07d}有限公司",
                "province": rng.choice(PROVINCES),
                "city": "",
                "value_tier": rng.choices("ABCD", weights=(1, 3, 6, 4))[0],
                "lifecycle": "potential",
                "source": "import",
                "stage": stage,
                "owner_id": owner,
                "owned_since": started_at,
                "clock_started_at": started_at,
                "industry_id": rng.choice(industries),
                "created_at": (now - timedelta(minutes=cid)).isoformat(),
                "updated_at": stamp,
                "external_ref": f"B{cid:08d}",
            }
        )
        if won:
            follow_ups.append(
                {
                    "id": len(follow_ups) + 1,
                    "customer_id": cid,
                    "kind": "visit",
                    "happened_at": (now - timedelta(days=rng.randint(1, 300))).isoformat(),
                    "summary": "签约",
                    "stage_before": 75,
                    "stage_after": 100,
                    "by_id": owner,
                    "created_at": stamp,
                }
            )
        elif owner is not None and rng.random() < 0.5:
            follow_ups.append(
                {
                    "id": len(follow_ups) + 1,
                    "customer_id": cid,
                    "kind": "call",
                    "happened_at": (now - timedelta(days=rng.randint(1, 60))).isoformat(),
                    "summary": "电话沟通",
                    "stage_before": stage,
                    "stage_after": stage,
                    "by_id": owner,
                    "created_at": stamp,
                }
            )
        elif owner is None and rng.random() < 0.03:
            # A pool customer recycled from a rep (the suggestion's penalty).
            events.append(
                {
                    "id": len(events) + 1,
                    "customer_id": cid,
                    "sequence": 1,
                    "from_owner_id": rng.choice(reps),
                    "to_owner_id": None,
                    "kind": "recycled",
                    "reason": "30 天未跟进",
                    "cause_label": "bench",
                    "occurred_at": (now - timedelta(days=rng.randint(1, 200))).isoformat(),
                    "prev_hash": "",
                    "hash": f"{cid:064x}",
                }
            )
    generated = time.perf_counter()
    tables = ("crm_customer", "crm_followup", "ownership_ownershipevent")
    with connection.cursor() as cursor:
        indexes = _secondary_indexes(cursor, tables)
        for index_name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{index_name}"')
        _copy(cursor, "crm_customer", customers)
        _copy(cursor, "crm_followup", follow_ups)
        _copy(cursor, "ownership_ownershipevent", events)
        copied = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _index_name, definition in indexes:
            cursor.execute(definition)
        for table in tables:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
            cursor.execute(f"ANALYZE {table}")
    done = time.perf_counter()
    log(
        f"loaded {len(customers):,} customers ({sum(o is not None for o in owners):,} owned), "
        f"{len(reps):,} reps in {teams_count} teams, {len(follow_ups):,} follow-ups, "
        f"{len(events):,} recycled events: generate {generated - started:.1f} s, "
        f"COPY {copied - generated:.1f} s, indexes+ANALYZE {done - copied:.1f} s"
    )
    return {"team": teams[0].pk, "manager": managers[teams[0].pk].pk}


def run(requests: int, team_id: int, manager_id: int, seed: int = 7) -> None:
    from django.conf import settings
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from django.utils import timezone

    from allocation import selectors
    from crm.models import Customer, Team, User

    settings.ALLOWED_HOSTS = ["*"]
    rng = random.Random(seed)
    pool_ids = list(
        Customer.objects.filter(owner__isnull=True)
        .order_by("?")
        .values_list("pk", flat=True)[: SELECTION * 20]
    )
    manager = User.objects.get(pk=manager_id)
    team = Team.objects.get(pk=team_id)
    client = Client()
    client.force_login(manager)
    url = reverse("allocation_suggest")

    def params() -> dict[str, Any]:
        return {"team": team_id, "customer": rng.sample(pool_ids, min(SELECTION, len(pool_ids)))}

    for _ in range(3):  # warm-up: connection, templates, translations
        assert client.get(url, params()).status_code == 200
    page: list[float] = []
    work: list[float] = []
    queries = 0
    for _ in range(requests):
        query = params()
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = client.get(url, query)
            page.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.status_code
        queries = max(queries, len(captured.captured_queries))
        t1 = time.perf_counter()
        chosen = selectors.selected_pool_customers(query["customer"])
        profiles = selectors.rep_profiles(team, timezone.now())
        selectors.suggestions_for(chosen, profiles)
        work.append((time.perf_counter() - t1) * 1000)
        reset_queries()
    eligible = sum(p.eligible for p in profiles)
    log(
        f"suggestion page, {SELECTION} customers x {len(profiles)} reps of the bench team "
        f"({eligible} eligible), {Customer.objects.count():,} customers in the database:"
    )
    log(f"  GET /allocation/suggest/ (whole page)      {summary(page)}")
    log(f"  selectors only (profiles + suggestions)   {summary(work)}")
    log(f"  queries per page: {queries}")
    check("suggestion page p95 (200 customers, 50 reps)", percentile(page, 95), 300, "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--database", default="guishu_bench_allocation")
    parser.add_argument("--reuse", action="store_true", help="keep a bench database of size N")
    args = parser.parse_args()
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    bench_database(args.database, recreate=False)
    setup_django()
    from crm.models import Customer, Team

    existing = Customer.objects.count()
    first = Team.objects.order_by("pk").first()
    if args.reuse and first is not None and existing >= args.n * 0.95:
        log(f"reusing {existing:,} customers in database {args.database}")
        assert first.manager_id is not None
        ids = {"team": first.pk, "manager": first.manager_id}
    else:
        from django.db import connection

        connection.close()
        bench_database(args.database, recreate=True)
        setup_django()
        log(f"generating {args.n:,} customers in database {args.database} ...")
        ids = load(args.n)
    run(args.requests, ids["team"], ids["manager"])


if __name__ == "__main__":
    main()
    sys.exit(exit_code())
