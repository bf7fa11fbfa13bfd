"""Time of a funnel snapshot over a large organisation, and latency of the report pages.

    .venv/bin/python bench/funnel.py [--n 1000000] [--reps 1000] [--teams 50] [--reuse]

Creates its own database (``guishu_bench_funnel`` on the server of DATABASE_URL; never the
dev data) and loads with COPY N customers owned by the reps (stages 0/25/50/75/100 with
35/30/20/10/5%), each customer's history of stage changes as follow-ups (one per step up
the funnel, spread over the last 180 days) and a manager per team.

Then takes snapshots (``crm.funnel.funnel_snapshot_take``, timed; a few, so the trend
charts have points) and requests the report pages through the Django test client:
the administrator's overview, a manager's team page, one rep's page, a rep's home page and
the CSV export — p50/p95 over ``--requests`` each. Targets at 1,000,000 customers and
1,000 reps: a snapshot under 10 s, the report page p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.identity_latency import bench_database, percentile, setup_django  # noqa: E402
from bench.review import _copy, _secondary_indexes, load  # noqa: E402
from bench.verdict import check, exit_code  # noqa: E402

FOLLOW_UP_COLUMNS = (
    "id", "customer_id", "kind", "happened_at", "summary", "next_step", "stage_before",
    "stage_after", "stage_reason", "by_id", "created_at",
)  # fmt: skip
STEPS = (0, 25, 50, 75, 100)


def load_history(log: Callable[[str], None]) -> None:
    """One follow-up per step each customer made up the funnel, between its creation and
    now; and a manager for every team."""
    from django.db import connection

    from crm.models import Role, Team, User

    managers = User.objects.bulk_create(
        [
            User(username=f"bench_mgr{team.pk}", display_name=f"经理{team.pk}", role=Role.MANAGER,
                 team=team, password="!", email="")
            for team in Team.objects.order_by("pk")
        ]
    )  # fmt: skip
    for manager in managers:
        Team.objects.filter(pk=manager.team_id).update(manager=manager)
    now = datetime.now().astimezone()
    rng = random.Random(7)
    started = time.perf_counter()
    follow_up_id = 0
    with connection.cursor() as cursor:
        indexes = _secondary_indexes(cursor, ("crm_followup",))
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(
            "SELECT id, owner_id, stage, created_at FROM crm_customer WHERE stage > 0 ORDER BY id"
        )
        while True:
            batch = cursor.fetchmany(100_000)
            if not batch:
                break
            rows = []
            for customer_id, owner_id, stage, created in batch:
                steps = STEPS.index(stage)
                span = max((now - created).total_seconds(), 3600.0)
                moments = sorted(rng.uniform(0.05, 1.0) * span for _ in range(steps))
                for step, offset in enumerate(moments):
                    follow_up_id += 1
                    at = (created + timedelta(seconds=offset)).isoformat()
                    rows.append(
                        (follow_up_id, customer_id, "call", at, "推进", "", STEPS[step],
                         STEPS[step + 1], "", owner_id, at)
                    )  # fmt: skip
            with connection.cursor() as writer:
                _copy(writer, "crm_followup", FOLLOW_UP_COLUMNS, rows)
        copied = time.perf_counter()
        for _name, definition in indexes:
            cursor.execute(definition)
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('crm_followup', 'id'), "
            "(SELECT max(id) FROM crm_followup))"
        )
        cursor.execute("ANALYZE crm_followup")
    log(
        f"loaded {follow_up_id:,} stage-change follow-ups and {len(managers)} managers: "
        f"COPY {copied - started:.1f} s, indexes {time.perf_counter() - copied:.1f} s"
    )


def time_pages(requests: int, log: Callable[[str], None]) -> None:
    from django.test import Client
    from django.urls import reverse

    from crm.models import Role, Team, User

    admin, _created = User.objects.get_or_create(
        username="bench_admin", defaults={"role": Role.ADMIN, "password": "!"}
    )
    team = Team.objects.order_by("pk").first()
    assert team is not None and team.manager is not None
    rep = User.objects.filter(team=team, role=Role.REP).order_by("pk").first()
    assert rep is not None
    cases = [
        ("admin overview (25 teams)", admin, reverse("funnel_report"), {}),
        ("manager team page", team.manager, reverse("funnel_report"), {"team": team.pk}),
        ("one rep's page", team.manager, reverse("funnel_report"),
         {"team": team.pk, "rep": rep.pk}),
        ("rep home (funnel card)", rep, reverse("home"), {}),
        ("team CSV export", team.manager, reverse("funnel_export"), {"team": team.pk}),
    ]  # fmt: skip
    for title, user, url, params in cases:
        client = Client()
        client.force_login(user)
        for _ in range(5):  # warm-up: connections, templates, translations
            assert client.get(url, params).status_code == 200, title
        times = []
        for _ in range(requests):
            t0 = time.perf_counter()
            response = client.get(url, params)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        log(
            f"  {title:28s} p50 {statistics.median(times):6.1f} ms  "
            f"p95 {percentile(times, 95):6.1f} ms  max {max(times):6.1f} ms"
        )
        if "CSV" not in title:
            check(f"report page p95: {title}", percentile(times, 95), 300, "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--snapshots", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--database", default="guishu_bench_funnel")
    parser.add_argument("--reuse", action="store_true", help="keep the loaded database")
    args = parser.parse_args()

    def log(text: str) -> None:
        print(text, flush=True)

    os.environ.setdefault("DEBUG", "0")
    bench_database(args.database, recreate=not args.reuse)
    setup_django()
    from crm.models import Customer, FunnelSnapshot, FunnelStageRow

    if not (args.reuse and Customer.objects.count() >= args.n):
        if args.reuse:
            from django.db import connection

            connection.close()
            bench_database(args.database, recreate=True)
            setup_django()
        log(f"loading {args.n:,} customers into {args.database} ...")
        load(args.n, args.reps, args.teams, 0.0, log, cold=True)
        load_history(log)
    from crm.funnel import funnel_snapshot_take

    FunnelSnapshot.objects.all().delete()
    seconds = []
    for index in range(args.snapshots):
        t0 = time.perf_counter()
        snapshot = funnel_snapshot_take(now=datetime.now().astimezone() - timedelta(
            days=7 * (args.snapshots - 1 - index)))  # fmt: skip
        seconds.append(time.perf_counter() - t0)
        rows = FunnelStageRow.objects.filter(snapshot=snapshot).count()
        log(f"snapshot {index + 1}: {seconds[-1]:.2f} s ({rows:,} rows)")
    log(f"snapshot time: best {min(seconds):.2f} s, worst {max(seconds):.2f} s")
    check("funnel snapshot (worst)", max(seconds), 10, "s")
    log(f"report pages over {args.requests} requests each:")
    time_pages(args.requests, log)


if __name__ == "__main__":
    main()
    sys.exit(exit_code())
