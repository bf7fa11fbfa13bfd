"""Time and memory of the nightly ownership review over a large book of customers.

    .venv/bin/python bench/review.py [--n 1000000] [--reps 1000] [--teams 50] [--reuse]

Creates its own database (``guishu_bench_review`` on the server of DATABASE_URL; never the
dev data) and loads, with COPY, N owned customers with realistic clocks under the default
pool policy (30 days without follow-up, 60 to reach 50%, 180 to win, warnings 7 days
ahead): follow-ups mostly recent, about 2% of the customers overdue, a few percent in their
warning window, 5% won (exempt). Every customer gets its registration ledger event. By
default the review ran last night (customers already in their window then hold that
warning, as in production every night); ``--cold`` loads the first night ever, when every
customer in its window is warned at once.

Then runs ``manage.py ownership_review`` in a child process (a dry run, the real run, and
the real run again, which must find nothing to do) and prints wall time, counts and the
child's peak RSS (resource.getrusage(RUSAGE_CHILDREN)). Targets at 1,000,000 customers:
a full run under 60 s, under 2 GiB of memory.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.identity_latency import bench_database, setup_django  # noqa: E402
from bench.verdict import check, exit_code  # noqa: E402

STAGES = [(0, 35), (25, 30), (50, 20), (75, 10), (100, 5)]

CUSTOMER_COLUMNS = (
    "id", "display_name", "legal_name", "credit_code", "address", "province", "city",
    "district", "division_code", "phone", "email", "size_band", "value_tier", "lifecycle",
    "source", "stage", "created_at", "updated_at", "external_ref", "notes",
    "needs_duplicate_review", "name_key", "name_region", "branch", "search_key", "pinyin_key",
    "email_domain", "owner_id", "owned_since", "clock_started_at", "last_follow_up_at",
)  # fmt: skip
NOTIFICATION_COLUMNS = (
    "id", "recipient_id", "kind", "dedup_key", "title", "body", "url", "created_at",
    "emailed_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "customer_id", "sequence", "to_owner_id", "kind", "reason", "actor_id",
    "cause_label", "occurred_at", "prev_hash", "hash",
)  # fmt: skip


def _ts(moment: datetime) -> str:
    return moment.isoformat()


def clock_facts(
    rng: random.Random, now: datetime, due_share: float
) -> tuple[int, datetime, datetime | None]:
    """(stage, clock_started_at, last_follow_up_at) of one customer."""
    stage = rng.choices([s for s, _ in STAGES], weights=[w for _, w in STAGES])[0]
    day = timedelta(days=1)
    if rng.random() < due_share and stage < 100:
        rule = rng.randrange(3)
        if rule == 0:  # no follow-up for 31-60 days
            last = now - rng.uniform(31, 60) * day
            started = last - rng.uniform(0, 10) * day
            return max(stage, 50), started, last
        if rule == 1 and stage < 50:  # not at 50% within 60 days
            started = now - rng.uniform(61, 120) * day
            return stage, started, now - rng.uniform(0, 20) * day
        started = now - rng.uniform(181, 300) * day  # not won within 180 days
        return stage, started, now - rng.uniform(0, 20) * day
    # Reps follow up most customers often: days since the last contact are exponential
    # (mean 5 days), below the 30-day limit; customers below 50% are young (leads move on
    # or are released), the others older.
    since_contact = min(rng.expovariate(1 / 5), 29.5)
    limit = 400.0 if stage == 100 else 178.0 if stage >= 50 else 59.5
    age = min(since_contact + rng.expovariate(1 / (12 if stage < 50 else 40)), limit)
    started = now - age * day
    last = now - since_contact * day
    if last <= started:
        return stage, started, None
    return stage, started, last


def _copy(cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


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


def load(
    n: int, reps: int, teams: int, due_share: float, log: Callable[[str], None], *, cold: bool
) -> None:
    """Load the book. Unless `cold`, the state is that of a system whose review ran last
    night: customers already in their warning window then hold last night's warning."""
    from django.db import connection

    from crm.models import Role, Team, User
    from ownership.clock import PolicyValues, compute_clock
    from ownership.review.run import WARNING_KIND, warning_key
    from ownership.selectors import global_policy

    started = time.perf_counter()
    team_rows = Team.objects.bulk_create([Team(name=f"压测团队{t:03d}") for t in range(teams)])
    users = User.objects.bulk_create(
        [
            User(
                username=f"bench_rep{r:05d}",
                display_name=f"销售{r:05d}",
                role=Role.REP,
                team=team_rows[r % teams],
                password="!",
                email="",
            )
            for r in range(reps)
        ]
    )
    rep_ids = [user.pk for user in users]
    now = datetime.now().astimezone()
    last_night = now - timedelta(days=1)
    policy = PolicyValues.from_policy(global_policy(), "global")
    warned = 0
    rng = random.Random(20260301)
    chunk = 100_000
    with connection.cursor() as cursor:
        tables = ("crm_customer", "ownership_ownershipevent", "crm_notification")
        indexes = _secondary_indexes(cursor, tables)
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for first in range(1, n + 1, chunk):
            customers = []
            events = []
            notifications = []
            for cid in range(first, min(n, first + chunk - 1) + 1):
                stage, clock_start, last = clock_facts(rng, now, due_share)
                owner = rep_ids[rng.randrange(reps)]
                created = _ts(clock_start)
                customers.append(
                    (cid, f"压测客户{cid:07d}有限公司", "", "", "", "", "", "", "", "", "", "",
                     "C", "potential", "import", stage, created, created, f"R{cid:08d}", "", "f",
                     "", "", "", "", "", "", owner, created, created,
                     _ts(last) if last else None)
                )  # fmt: skip
                digest = hashlib.sha256(f"bench:{cid}".encode()).hexdigest()
                events.append(
                    (cid, cid, 1, owner, "registered", "压测导入", owner, "", created, "", digest)
                )
                clock = compute_clock(
                    owner_id=owner,
                    stage=stage,
                    clock_started_at=clock_start,
                    last_follow_up_at=last,
                    policy=policy,
                )
                if not cold and clock.in_warning_window(last_night):
                    warned += 1
                    notifications.append(
                        (warned, owner, WARNING_KIND, warning_key(cid, clock), "提醒", "", "",
                         _ts(last_night), _ts(last_night))
                    )  # fmt: skip
            _copy(cursor, "crm_customer", CUSTOMER_COLUMNS, customers)
            _copy(cursor, "ownership_ownershipevent", EVENT_COLUMNS, events)
            _copy(cursor, "crm_notification", NOTIFICATION_COLUMNS, notifications)
            log(f"  loaded {min(n, first + chunk - 1):,}/{n:,}")
        copied = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        for table in tables:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
            cursor.execute(f"ANALYZE {table}")
    log(
        f"loaded {n:,} customers of {reps:,} reps in {teams} teams"
        + (", cold (no review ran before)" if cold else f", {warned:,} warned last night")
        + f": COPY "
        f"{copied - started:.1f} s, indexes + ANALYZE {time.perf_counter() - copied:.1f} s"
    )


def run_command(args: list[str], log: Callable[[str], None]) -> tuple[float, int, str]:
    """Run manage.py in a child process: (seconds, peak RSS in bytes of any child so far, out)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "0", "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        log(result.stdout + result.stderr)
        raise SystemExit(f"{' '.join(args)} failed")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    return seconds, peak, result.stdout


def _summary(stdout: str) -> Iterator[str]:
    for line in stdout.splitlines():
        if line.strip() and not line.strip().startswith(("e.g.", "done")):
            yield line


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--due-share", type=float, default=0.02)
    parser.add_argument("--database", default="guishu_bench_review")
    parser.add_argument("--reuse", action="store_true", help="keep the loaded database")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="the first run ever: every customer in its warning window is warned now",
    )
    args = parser.parse_args()

    def log(text: str) -> None:
        print(text, flush=True)

    os.environ.setdefault("GUISHU_BENCH_SERVER_URL", os.environ.get("DATABASE_URL", ""))
    bench_database(args.database, recreate=not args.reuse)
    setup_django()
    from crm.models import Customer

    if not (args.reuse and Customer.objects.count() >= args.n):
        if args.reuse:
            from django.db import connection

            connection.close()
            bench_database(args.database, recreate=True)
            setup_django()
        log(f"loading {args.n:,} customers into {args.database} ...")
        load(args.n, args.reps, args.teams, args.due_share, log, cold=args.cold)
    from django.db import connection

    connection.close()
    for title, command in (
        ("dry run", ["ownership_review", "--dry-run"]),
        ("full run", ["ownership_review"]),
        ("second run (idempotent)", ["ownership_review"]),
    ):
        seconds, peak, out = run_command(command, log)
        log(f"{title}: {seconds:.1f} s wall, peak RSS of any child so far {peak / 2**20:.0f} MiB")
        for line in _summary(out):
            log("    " + line)
        if title == "full run":
            check(f"full review of {args.n:,} customers", seconds, 60, "s")
            check("peak memory of the review", peak / 2**30, 2, "GiB")


if __name__ == "__main__":
    main()
    sys.exit(exit_code())
