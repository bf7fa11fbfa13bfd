"""`make bench`: run every script in bench/ at one scale and write bench/REPORT.md.

BENCH_SCALE=full (default) uses each target's own scale (1,000,000 customers, 100,000 import
rows, 5,000 handover customers); BENCH_SCALE=small runs a quick pass (20,000 customers).
The embedded servers are started when DATABASE_URL / REDIS_URL are not set. Each script
prints its figures and its targets; the report keeps them verbatim with the machine they
ran on, so a change in performance shows in review.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from devserver.embedded import services_env

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "REPORT.md"

# script, its target(s), arguments per scale
BENCHES: list[tuple[str, str, dict[str, list[str]]]] = [
    (
        "identity_offline_eval.py",
        "block precision ≥ 0.995, recall ≥ 0.97, hard recall ≥ 0.90, false alarms ≤ 0.02",
        {"small": [], "full": []},
    ),
    (
        "identity_latency.py",
        "duplicate check p95 ≤ 30 ms at 1,000,000 customers",
        {"small": ["--n", "20000", "--probes", "500"], "full": ["--reuse"]},
    ),
    (
        "import_speed.py",
        "≥ 2,000 rows/s for a 100,000-row import",
        {"small": ["--rows", "5000"], "full": []},
    ),
    (
        "registration.py",
        "registration p95 ≤ 150 ms over HTTP, ≥ 100 registrations/s; 64-way collision: one winner",
        {"small": ["--n", "20000", "--seconds", "8"], "full": ["--reuse"]},
    ),
    (
        "allocation.py",
        "suggestion page p95 ≤ 300 ms (200 customers, 50 reps, 1,000,000 customers)",
        {"small": ["--n", "20000"], "full": []},
    ),
    (
        "handover.py",
        "plan < 5 s and last-day transfer < 10 s for 5,000 customers",
        {"small": ["--n", "1000"], "full": []},
    ),
    (
        "review.py",
        "full review < 60 s and < 2 GiB over 1,000,000 customers (~2% due)",
        {"small": ["--n", "20000", "--reps", "50", "--teams", "5"], "full": []},
    ),
    (
        "funnel.py",
        "snapshot < 10 s over 1,000,000 customers and 1,000 reps; report page p95 ≤ 300 ms",
        {"small": ["--n", "20000", "--reps", "100", "--teams", "10"], "full": []},
    ),
    (
        "territory.py",
        "resolve 1,000,000 customers against 2,000 territories < 60 s; one registration p95 ≤ 5 ms",
        {"small": ["--n", "20000", "--probes", "500"], "full": []},
    ),
]


def _reference_loop() -> float:
    """Seconds for a fixed pure-Python workload (best of three), printed in the report: the
    figures are CPU-bound, and virtual machines of one kind differ twice over in speed, so a
    reader can tell a slower machine from a slower Guishu."""

    def work() -> int:
        total = 0
        words: dict[str, int] = {}
        for i in range(2_000_000):
            total += i % 7
            key = str(i % 1000)
            words[key] = words.get(key, 0) + 1
        return total + len(words)

    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _wait_until_quiet(env: dict[str, str], *, limit: float = 180.0) -> str:
    """Wait (at most `limit` seconds) until no autovacuum worker runs on the database server
    and the 1-minute load average is under 1: a script that loads a million rows leaves
    autovacuum busy for minutes, which had cost the next script a fifth of its figure."""
    import psycopg2

    started = time.perf_counter()
    connection = psycopg2.connect(env["DATABASE_URL"])
    connection.autocommit = True
    try:
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
                )
                (vacuuming,) = cursor.fetchone()
            load = os.getloadavg()[0]
            waited = time.perf_counter() - started
            if (vacuuming == 0 and load < 1.0) or waited >= limit:
                return (
                    f"waited {waited:.0f} s for a quiet machine "
                    f"(autovacuum workers {vacuuming}, load average {load:.1f})"
                )
            time.sleep(5)
    finally:
        connection.close()


def main() -> int:
    scale = os.environ.get("BENCH_SCALE", "full")
    if scale not in {"small", "full"}:
        print("BENCH_SCALE must be small or full", file=sys.stderr)
        return 2
    sections: list[str] = []
    summary: list[str] = []
    failures = 0
    reference = _reference_loop()
    print(f"reference loop: {reference:.2f} s", flush=True)
    with services_env() as env:
        for script, target, arguments in BENCHES:
            command = [sys.executable, str(ROOT / "bench" / script), *arguments[scale]]
            quiet = _wait_until_quiet(env)
            print(f"== {script} {' '.join(arguments[scale])} ({quiet})", flush=True)
            started = time.perf_counter()
            result = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
            )
            elapsed = time.perf_counter() - started
            output = (result.stdout + result.stderr).strip()
            print(output[-3000:], flush=True)
            status = "ran" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
            failures += result.returncode != 0
            targets = [line for line in output.splitlines() if line.startswith("TARGET |")]
            for line in targets:
                _tag, label, value, limit, verdict = (part.strip() for part in line.split("|"))
                summary.append(f"| {script} | {label} | {value} | {limit} | {verdict} |")
            if not targets:
                summary.append(f"| {script} | {target} | (see below) | | {status} |")
            tail = "\n".join(output.splitlines()[-25:])
            sections.append(
                f"## {script}\n\nTarget: {target}\n\nStatus: {status} in {elapsed:.0f} s; "
                f"before it, {quiet}\n\n"
                f"```\n{tail}\n```\n"
            )
    machine = (
        f"{platform.node()} · {platform.machine()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · {platform.platform()}"
    )
    header = (
        "# Benchmark report\n\n"
        f"Scale: `{scale}` · run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · machine: {machine}\n\n"
        f"Machine speed: the reference loop of devserver/bench.py took {reference:.2f} s (best "
        "of three, before the scripts ran). The figures are CPU-bound: compare reports made on "
        "machines whose reference loops agree.\n\n"
        "Each section keeps the last lines the script printed, with its figures and targets.\n"
    )
    table = "\n".join(
        [
            "## Summary\n",
            "| script | figure | measured | target | result |",
            "|---|---|---|---|---|",
            *summary,
            "",
        ]
    )
    REPORT.write_text(header + "\n" + table + "\n" + "\n".join(sections), encoding="utf-8")
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
