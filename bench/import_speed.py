"""Rows per second of the bulk customer import (target: >= 2,000 rows/s for 100,000 rows).

    .venv/bin/python bench/import_speed.py [--rows 100000] [--base 0] [--workers N]

Uses its own database (``guishu_bench_import`` on DATABASE_URL's server, recreated each run;
never the dev data). Writes a realistic CSV (Chinese company names, valid credit codes,
mobiles and landlines, addresses, industries; about 2% rewritten duplicates of earlier rows
and 1% invalid rows), optionally pre-loads ``--base`` existing customers, then times what
``manage.py import_customers`` runs (read the file, check, write), end to end: a dry run,
then the real import, each with cold name-parsing caches. Prints rows/s and where the main
process spent its time.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.identity_latency import (  # noqa: E402
    NameGenerator,
    bench_database,
    load_customers,
    setup_django,
)
from bench.verdict import check, exit_code  # noqa: E402

INDUSTRY_CELLS = [
    "信息技术",
    "软件",
    "电子",
    "机械",
    "贸易",
    "医药",
    "物流",
    "食品",
    "文化",
    "咨询",
]


def write_csv(path: Path, rows: int, seed: int = 11) -> dict[str, int]:
    gen = NameGenerator(seed)
    rng = gen.rng
    written: list[str] = []
    kinds = {"rows": 0, "rewritten_duplicates": 0, "invalid": 0}
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["外部编号", "名称", "统一社会信用代码", "省", "市", "地址", "电话", "行业"]
        )
        for i in range(rows):
            ref = f"IMP{i:07d}"
            pick = rng.random()
            if pick < 0.02 and written:
                name = rng.choice(written).replace("有限公司", "有限责任公司")
                kinds["rewritten_duplicates"] += 1
                writer.writerow([ref, name, "", "", "", "", "", ""])
                continue
            name, region = gen.name()
            code = gen.credit_code(region) if rng.random() < 0.7 else ""
            phone = gen.mobile() if rng.random() < 0.6 else ""
            if not phone and rng.random() < 0.3:
                phone = f"010-{rng.randrange(10**7, 10**8)}"
            if pick > 0.99:
                kinds["invalid"] += 1
                code = (code[:17] + ("0" if code[17:] != "0" else "1")) if code else "12345"
            address = gen.address(region) if rng.random() < 0.8 else ""
            province = region.province_full if region else ""
            city = region.full if region else ""
            industry = rng.choice(INDUSTRY_CELLS) if rng.random() < 0.7 else ""
            writer.writerow([ref, name, code, province, city, address, phone, industry])
            written.append(name)
    kinds["rows"] = rows
    return kinds


_CLIENT_BACKEND = re.compile(r"\(\d+\)|\[local\]")


class ServerCpu:
    """CPU seconds the local PostgreSQL server's processes spend meanwhile (this database's
    backends, the writer's included; autovacuum, WAL; not other databases' clients): polled,
    since a backend's count leaves with it."""

    def __init__(self, database: str, interval: float = 0.2) -> None:
        self._database = database
        self._interval = interval
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[int, float]:
        import psutil

        found: dict[int, float] = {}
        for process in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            times = process.info.get("cpu_times")
            if process.info.get("name") not in ("postgres", "postmaster") or times is None:
                continue
            title = " ".join(process.info.get("cmdline") or []) + " "
            if _CLIENT_BACKEND.search(title) and f" {self._database} " not in title:
                continue
            found[process.pid] = float(times.user + times.system)
        return found

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._last.update(self._sample())

    def __enter__(self) -> ServerCpu:
        self._start = self._sample()
        self._last = dict(self._start)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._last.update(self._sample())

    @property
    def seconds(self) -> float:
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._last.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--base", type=int, default=0, help="existing customers loaded first")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="the importer's default")
    parser.add_argument("--database", default="guishu_bench_import")
    args = parser.parse_args()

    bench_database(args.database, recreate=True)
    setup_django()
    from django.conf import settings

    if args.base:
        load_customers(args.base, workers=os.cpu_count() or 1, seed=99, log=print)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        t0 = time.perf_counter()
        kinds = write_csv(path, args.rows)
        size = path.stat().st_size
        print(
            f"wrote {path.name}: {kinds} ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s"
        )
        settings.IMPORT_MAX_BYTES = max(size + 1, 20 * 1024 * 1024)
        from crm.identity import normalize, phones
        from crm.importer import import_customers, read_table_from_path

        for label, dry_run in (("dry run", True), ("import", False)):
            # Cold caches: the import must not profit from names the dry run just parsed.
            normalize.parse_company_name.cache_clear()
            normalize.normalize_text.cache_clear()
            normalize.to_pinyin.cache_clear()
            phones.clear_caches()
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            with ServerCpu(args.database) as server:
                table = read_table_from_path(path)  # what manage.py import_customers runs
                report = import_customers(
                    table,
                    actor=None,
                    dry_run=dry_run,
                    **({"batch_size": args.batch_size} if args.batch_size else {}),
                    workers=args.workers,
                )
            elapsed = time.perf_counter() - t0
            main_cpu = time.process_time() - cpu0
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            workers_cpu = (children.ru_utime + children.ru_stime) - (
                children0.ru_utime + children0.ru_stime
            )
            phases = " ".join(f"{k}={v:.1f}s" for k, v in report.timings.items())
            print(
                f"{label:8s}: {args.rows:,} rows in {elapsed:.1f} s = {args.rows / elapsed:,.0f} "
                f"rows/s (workers={args.workers or 'auto'}, cpus={os.cpu_count()})\n"
                f"          main process: {phases}\n"
                "          (prepare = waiting for identity keys; finish = last writes, "
                "statistics, territories)\n"
                f"          CPU per row: main process {main_cpu / args.rows * 1000:.2f} ms, "
                f"key workers {workers_cpu / args.rows * 1000:.2f} ms, PostgreSQL "
                f"{server.seconds / args.rows * 1000:.2f} ms (its local processes); "
                f"load average {os.getloadavg()[0]:.1f}\n"
                f"          {report.counts}"
            )
            check(
                f"{label} of {args.rows:,} rows ({args.base:,} existing customers)",
                args.rows / elapsed,
                2000,
                "rows/s",
                at_least=True,
            )
    from crm.models import Customer, CustomerPhone, PossibleDuplicate

    print(
        f"database: {Customer.objects.count():,} customers, {CustomerPhone.objects.count():,} "
        f"phones, {PossibleDuplicate.objects.count():,} possible-duplicate records, "
        f"{Customer.objects.filter(needs_duplicate_review=True).count():,} flagged"
    )
    sys.exit(exit_code())


if __name__ == "__main__":
    main()
