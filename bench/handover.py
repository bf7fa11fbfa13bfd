"""Departure handover of a rep with a large book: planning and the last-day transfer.

    .venv/bin/python bench/handover.py [--n 5000] [--database guishu_bench_handover]

Creates its own database (never the dev data; see bench/identity_latency.py), a team with a
manager, the leaving rep and four colleagues, and N customers owned by the leaving rep
(one contact and one or two follow-ups with a promised next step each, bulk-loaded). Two
scenarios, each on a fresh book:

A. a realistic funnel (0% 30 % · 25% 25 % · 50% 20 % · 75% 15 % · 100% 10 %): time
   `departure_record` (auto-distributed successors; tasks, history and preview grants
   bulk-inserted; the 0% customers moved at once through the ownership writer), then the
   last-day job for the rest;
B. no 0% customers: planning is pure bulk work and the last-day job moves all N.

Then the same last day run by two workers at once (threads with their own connections).
Targets (N = 5,000): plan < 5 s, last-day transfer of all of them < 10 s.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.identity_latency import bench_database, setup_django  # noqa: E402
from bench.verdict import check, exit_code  # noqa: E402

MIX = [(0, 30), (25, 25), (50, 20), (75, 15), (100, 10)]
NO_RAW = [(25, 35), (50, 30), (75, 20), (100, 15)]


def _people(tag: str) -> tuple[Any, Any, list[Any]]:
    from crm import services
    from crm.models import Role
    from ownership.models import PoolPolicy

    PoolPolicy.objects.filter(team__isnull=True, territory__isnull=True).update(
        max_owned=100_000, warning_days=1
    )
    team = services.team_create(actor=None, name=f"交接压测{tag}")
    manager = services.user_create(
        actor=None, username=f"hb_mgr_{tag}", password="x", role=Role.MANAGER, team=team
    )
    team.manager = manager
    team.save(update_fields=["manager"])
    leaver = services.user_create(
        actor=None, username=f"hb_leaver_{tag}", password="x", role=Role.REP, team=team
    )
    colleagues = [
        services.user_create(
            actor=None, username=f"hb_rep_{tag}_{i}", password="x", role=Role.REP, team=team
        )
        for i in range(4)
    ]
    return manager, leaver, colleagues


def _book(leaver: Any, n: int, mix: list[tuple[int, int]], tag: str) -> None:
    """N customers of the leaver, bulk-loaded (bench only: real books are built by
    registrations through the ownership writer, which is not what is measured here)."""
    from django.utils import timezone

    from crm.models import Contact, Customer, FollowUp

    rng = random.Random(7)
    stages = rng.choices([s for s, _ in mix], weights=[w for _, w in mix], k=n)
    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [
            Customer(
                display_name=f"压测客户{tag}{i:05d}有限公司",
                external_ref=f"HB-{tag}-{i:05d}",
                stage=stage,
                owner=leaver,
                owned_since=now - timedelta(days=30),
                clock_started_at=now - timedelta(days=30),
                last_follow_up_at=now - timedelta(days=3),
                created_by=leaver,
            )
            for i, stage in enumerate(stages)
        ],
        batch_size=2000,
    )
    Contact.objects.bulk_create(
        [Contact(customer=c, name=f"联系人{c.pk}", title="采购经理") for c in customers],
        batch_size=2000,
    )
    follow_ups = []
    for c in customers:
        for k in range(1 + c.pk % 2):
            follow_ups.append(
                FollowUp(
                    customer=c,
                    kind="call",
                    happened_at=now - timedelta(days=10 - k),
                    summary="电话沟通",
                    next_step=f"发送方案 {k}",
                    stage_before=c.stage,
                    stage_after=c.stage,
                    by=leaver,
                )
            )
    FollowUp.objects.bulk_create(follow_ups, batch_size=2000)


def _scenario(label: str, n: int, mix: list[tuple[int, int]], log: Any) -> dict[str, float]:
    from django.db import connection, reset_queries
    from django.utils import timezone

    from crm.models import Customer
    from handover import services
    from handover.models import Departure, TaskState

    manager, leaver, _colleagues = _people(label)
    _book(leaver, n, mix, label)
    counts = Counter(Customer.objects.filter(owner=leaver).values_list("stage", flat=True))
    log(f"\n[{label}] {n:,} customers: " + " · ".join(f"{s}% {counts[s]}" for s in sorted(counts)))
    reset_queries()
    started = time.perf_counter()
    departure = services.departure_record(
        actor=manager,
        leaver=leaver,
        last_day=timezone.localdate() + timedelta(days=14),
        auto_distribute=True,
    )
    plan_s = time.perf_counter() - started
    states = Counter(departure.tasks.values_list("state", flat=True))
    log(
        f"  plan: {plan_s:6.2f} s  ({departure.tasks.count():,} tasks; "
        f"{states[TaskState.MOVED_AT_ONCE]:,} moved at once, {states[TaskState.PROPOSED]:,} "
        f"proposed)"
    )
    Departure.objects.filter(pk=departure.pk).update(last_day=timezone.localdate())
    started = time.perf_counter()
    moved = services.departures_finish_due()
    last_s = time.perf_counter() - started
    leaver.refresh_from_db()
    left = Customer.objects.filter(owner=leaver).count()
    log(
        f"  last day: {last_s:6.2f} s  ({moved:,} moved, {moved / last_s if last_s else 0:,.0f}/s;"
        f" leaver owns {left}, active={leaver.is_active})"
    )
    connection.close()
    return {"plan": plan_s, "last_day": last_s, "moved": float(moved)}


def _concurrent(n: int, log: Any) -> None:
    from django.db import connection
    from django.utils import timezone

    from crm.models import Customer
    from handover import services
    from handover.models import Departure
    from ownership.models import EventKind, OwnershipEvent

    manager, leaver, _colleagues = _people("C")
    _book(leaver, n, NO_RAW, "C")
    departure = services.departure_record(
        actor=manager,
        leaver=leaver,
        last_day=timezone.localdate() + timedelta(days=14),
        auto_distribute=True,
    )
    Departure.objects.filter(pk=departure.pk).update(last_day=timezone.localdate())
    connection.close()
    results: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            results.append(services.departures_finish_due())
        finally:
            connection.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    events = OwnershipEvent.objects.filter(
        kind=EventKind.HANDED_OVER, customer__external_ref__startswith="HB-C-"
    )
    per_customer = Counter(events.values_list("customer_id", flat=True))
    log(
        f"\n[two workers at once] {n:,} customers: {elapsed:6.2f} s; moved {results} "
        f"(sum {sum(results):,}); customers with exactly one handed_over event: "
        f"{sum(1 for v in per_customer.values() if v == 1):,}, more than one: "
        f"{sum(1 for v in per_customer.values() if v > 1)}; leaver owns "
        f"{Customer.objects.filter(owner=leaver).count()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--database", default="guishu_bench_handover")
    args = parser.parse_args()

    def log(text: str) -> None:
        print(text, flush=True)

    bench_database(args.database, recreate=True)
    setup_django()
    log(f"bench database {args.database}; N = {args.n:,}")
    a = _scenario("A", args.n, MIX, log)
    b = _scenario("B", args.n, NO_RAW, log)
    _concurrent(args.n, log)
    log(
        "\ntargets: plan < 5 s, last-day transfer of all N < 10 s\n"
        f"  A plan {a['plan']:.2f} s · A last day {a['last_day']:.2f} s\n"
        f"  B plan {b['plan']:.2f} s · B last day (all {int(b['moved']):,}) "
        f"{b['last_day']:.2f} s"
    )
    check(f"plan of {args.n:,} customers (worst of A, B)", max(a["plan"], b["plan"]), 5, "s")
    check(
        f"last-day transfer of {args.n:,} customers (worst of A, B)",
        max(a["last_day"], b["last_day"]),
        10,
        "s",
    )


if __name__ == "__main__":
    main()
    sys.exit(exit_code())
