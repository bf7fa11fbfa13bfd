"""Registration (报备) throughput and latency with a large customer table.

    .venv/bin/python bench/registration.py [--n 1000000] [--reuse] [--seconds 20]
        [--database guishu_bench] [--server-threads 1] [--phases service,http,collision]

Uses the bench database of bench/identity_latency.py (``guishu_bench`` unless
``--database`` names another; ``--reuse`` keeps an existing one of size N, since generating
1,000,000 customers takes minutes), then:

1. through the service: T threads (own connections) register new companies for S seconds;
2. over HTTP: gunicorn with 2 workers, sync as in production (the Dockerfile's; with
   ``--server-threads`` N > 1, threaded workers) and persistent database connections; each
   request on a connection of its own, as behind a reverse proxy (with kept-alive
   connections every client stays with the worker that accepted it first, and one worker
   served all eight); T clients sign in and POST the registration form; the page a
   successful registration redirects to is fetched too and timed apart (``--no-follow``:
   not fetched);
3. the collision case: 64 simultaneous attempts at one company written differently —
   exactly one must win.

Prints throughput (registrations/s), p50/p95/p99 latency and the machine's load average
(other work on the machine skews the figures); and, first, the database queries of one
registration request and of the page it redirects to (Django's test client, in process).
Targets: p95 <= 150 ms over HTTP, >= 100 registrations/s.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.identity_latency import (  # noqa: E402
    NameGenerator,
    bench_database,
    load_customers,
    percentile,
    setup_django,
)
from bench.verdict import check, exit_code  # noqa: E402

PASSWORD = "bench-password-2026"


def _names(seed: str) -> Iterator[str]:
    """Realistic new registrations: the same generator as the loaded customers, another
    seed — so, as in real use, some collide with or resemble existing customers."""
    generator = NameGenerator(seed=zlib.crc32(seed.encode()))
    while True:
        yield generator.name()[0]


# Characters no generated customer uses: the collision company is new for sure.
RARE = "鲲鹏鳌鹭翡翠琥珀玳瑁璀璨麒麟"


def _reps(count: int) -> list[object]:
    from crm import services
    from crm.models import Role, Team, User
    from ownership.models import PoolPolicy

    PoolPolicy.objects.filter(team__isnull=True, territory__isnull=True).update(max_owned=1_000_000)
    team, _ = Team.objects.get_or_create(name="压测团队")
    reps = []
    for index in range(count):
        username = f"bench_rep_{index}"
        user = User.objects.filter(username=username).first() or services.user_create(
            actor=None, username=username, password=PASSWORD, role=Role.REP, team=team
        )
        reps.append(user)
    return reps


def _load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def _summary(
    label: str,
    latencies: list[float],
    elapsed: float,
    outcomes: Counter[str],
    extra: str = "",
) -> None:
    rate = len(latencies) / elapsed if elapsed else 0.0
    print(
        f"{label}: {len(latencies)} registrations in {elapsed:.1f} s = {rate:.0f}/s; "
        f"p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
        f"p99 {percentile(latencies, 99):.0f} ms; outcomes {dict(outcomes)}{extra}; {_load()}",
        flush=True,
    )


def bench_service(reps: list[object], seconds: float, tag: str) -> None:
    from django.db import connection

    from allocation.services import RegistrationForm, registration_submit

    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(index: int, rep: object) -> None:
        names = _names(f"{tag}{index}")
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                result = registration_submit(
                    actor=rep,  # type: ignore[arg-type]
                    form=RegistrationForm(display_name=next(names)),
                )
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
                    outcomes[str(result.outcome)] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, rep)) for i, rep in enumerate(reps)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _summary(f"service ({len(reps)} threads)", latencies, time.perf_counter() - began, outcomes)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Session:
    """A signed-in browser, minimal: cookies and the CSRF token, over one connection."""

    def __init__(self, port: int, *, keep_messages: bool = True) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}
        # A client that never shows the page after the redirect never reads the flash
        # messages: kept, they would pile up in the cookie and then in the session.
        self.keep_messages = keep_messages
        self.location = ""

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = "http://127.0.0.1/"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        self.location = response.getheader("Location") or ""
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            if name != "messages" or self.keep_messages:
                self.cookies[name] = rest.split(";", 1)[0]
        return text

    def csrf(self, page: str) -> str:
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        return match.group(1) if match else self.cookies.get("csrftoken", "")

    def login(self, username: str) -> None:
        page = self.request("GET", "/accounts/login/")
        self.request(
            "POST",
            "/accounts/login/",
            {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": self.csrf(page)},
        )


def bench_queries(rep: object, tag: str, count: int = 20) -> None:
    """Queries per registration request (and per page it redirects to), in process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(rep)  # type: ignore[arg-type]
    names = _names(tag)
    posts: Counter[int] = Counter()
    pages: Counter[int] = Counter()
    for _ in range(count):
        with CaptureQueriesContext(connection) as captured:
            response = client.post("/register/", {"display_name": next(names), "source": "other"})
        posts[len(captured.captured_queries)] += 1
        if response.status_code == 302:
            with CaptureQueriesContext(connection) as captured:
                client.get(response["Location"])
            pages[len(captured.captured_queries)] += 1
    print(
        f"queries per registration request: {dict(sorted(posts.items()))} "
        f"(count: requests); per page it redirects to: {dict(sorted(pages.items()))}",
        flush=True,
    )


def _cpu_seconds(server_pid: int) -> tuple[float, float, float]:
    """CPU seconds used so far by the server's workers, by the database backends that
    serve them (client backends of this database other than this process's own) and by
    this process (the clients: they share the machine's cores with the server)."""
    import psutil
    from django.db import connection

    def used(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    workers = sum(used(child) for child in psutil.Process(server_pid).children(recursive=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    backends = sum(used(psutil.Process(pid)) for pid in pids if psutil.pid_exists(pid))
    return workers, backends, used(psutil.Process())


def bench_http(reps: list[object], seconds: float, tag: str, *, threads: int, follow: bool) -> None:
    port = _free_port()
    # Persistent database connections (as in production), no debug.
    env = {
        **os.environ,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DB_CONN_MAX_AGE": "600",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crm.wsgi", "--workers", "2",
         "--threads", str(threads), "--keep-alive", "0", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        latencies: list[float] = []
        page_latencies: list[float] = []
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()
        began = [0.0]

        def start() -> None:  # run once, before any client is released
            began[0] = time.perf_counter()

        ready = threading.Barrier(len(reps) + 1, action=start)

        def client(index: int, rep: object) -> None:
            session = Session(port, keep_messages=follow)
            session.login(rep.username)  # type: ignore[attr-defined]
            token = session.csrf(session.request("GET", "/register/"))
            names = _names(f"{tag}{index}")
            # Warm: the first request of each worker thread opens its database connection.
            session.request(
                "POST",
                "/register/",
                {"display_name": next(names), "source": "other", "csrfmiddlewaretoken": token},
            )
            ready.wait()
            while time.perf_counter() < began[0] + seconds:
                started = time.perf_counter()
                page = session.request(
                    "POST",
                    "/register/",
                    {"display_name": next(names), "source": "other", "csrfmiddlewaretoken": token},
                )
                elapsed = (time.perf_counter() - started) * 1000
                location = session.location
                outcome = (
                    "error"
                    if "服务器出错" in page
                    else "registered"
                    if "已报备" in page or not page
                    else "collision"
                    if "撞单" in page
                    else "soft_match"
                    if "存在相似客户" in page
                    else "other"
                )
                shown = 0.0
                if follow and location:
                    started = time.perf_counter()
                    session.request("GET", location)
                    shown = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    outcomes[outcome] += 1
                    if shown:
                        page_latencies.append(shown)

        workers = [threading.Thread(target=client, args=(i, rep)) for i, rep in enumerate(reps)]
        for worker in workers:
            worker.start()
        ready.wait()
        cpu_before = _cpu_seconds(server.pid)
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began[0]
        cpu_after = _cpu_seconds(server.pid)
        done = len(latencies) or 1
        python_ms = (cpu_after[0] - cpu_before[0]) * 1000 / done
        database_ms = (cpu_after[1] - cpu_before[1]) * 1000 / done
        client_ms = (cpu_after[2] - cpu_before[2]) * 1000 / done
        # What other work on the machine cannot skew: CPU spent per registration (with the
        # page it redirects to) by the server's workers and by their database backends.
        extra = (
            f"; CPU per registration: server {python_ms:.1f} ms + PostgreSQL {database_ms:.1f} ms"
            f" (and the bench's clients {client_ms:.1f} ms)"
        )
        if page_latencies:
            extra += (
                f"; then the redirected-to page: p50 {percentile(page_latencies, 50):.0f} ms, "
                f"p95 {percentile(page_latencies, 95):.0f} ms"
            )
        _summary(
            f"HTTP, gunicorn 2 workers x {threads} threads ({len(reps)} clients)",
            latencies,
            elapsed,
            outcomes,
            extra,
        )
        check("registration over HTTP, p95", percentile(latencies, 95), 150, "ms")
        rate = len(latencies) / elapsed if elapsed else 0.0
        check("registrations over HTTP", rate, 100, "/s", at_least=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def bench_collision(reps: list[object], tag: str) -> None:
    from django.db import connection

    from allocation.services import RegistrationForm, registration_submit

    rng = random.Random(tag)
    trade = "".join(rng.sample(RARE, 4))
    variants = [
        f"北京{trade}科技有限公司",
        f"{trade}科技",
        f"{trade}科技（北京）有限公司",
        f"北京市 {trade} 科技 有限公司",
    ]
    barrier = threading.Barrier(len(reps))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def attempt(index: int, rep: object) -> None:
        try:
            barrier.wait()
            result = registration_submit(
                actor=rep,  # type: ignore[arg-type]
                form=RegistrationForm(display_name=variants[index % len(variants)]),
            )
            with lock:
                outcomes[str(result.outcome)] += 1
        except Exception as error:  # noqa: BLE001 - counted as a failure
            with lock:
                outcomes[type(error).__name__] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i, rep)) for i, rep in enumerate(reps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"collision: {len(reps)} simultaneous attempts → {dict(outcomes)}")
    winners = outcomes.get("registered", 0)
    label = f"{len(reps)} simultaneous registrations of one company"
    check(f"{label}: winners", winners, 1, "", at_least=True)
    check(f"{label}: winners", winners, 1, "")
    others = len(reps) - winners - outcomes.get("collision", 0)
    check(f"{label}: answers other than the win or the collision", others, 0, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database", default="guishu_bench")
    parser.add_argument(
        "--server-threads", type=int, default=1, help="gunicorn threads per worker (gthread if > 1)"
    )
    parser.add_argument("--no-follow", action="store_true", help="do not fetch the redirect")
    parser.add_argument("--phases", default="queries,service,http,collision")
    args = parser.parse_args()
    phases = set(args.phases.split(","))

    bench_database(args.database, recreate=False)
    setup_django()
    from crm.models import Customer

    existing = Customer.objects.count()
    if not (args.reuse and existing >= args.n * 0.95):
        from django.db import connection

        connection.close()
        bench_database(args.database, recreate=True)
        setup_django()
        print(f"generating {args.n:,} customers ...", flush=True)
        load_customers(args.n, workers=os.cpu_count() or 1, log=print)
    print(f"{Customer.objects.count():,} customers in {args.database}; {_load()}", flush=True)
    reps = _reps(64)
    tag = f"{int(time.time()) % 100000}"
    if "queries" in phases:
        bench_queries(reps[-1], f"Q{tag}")
    if "service" in phases:
        bench_service(reps[: args.threads], args.seconds, f"S{tag}")
    if "http" in phases:
        bench_http(
            reps[: args.threads],
            args.seconds,
            f"H{tag}",
            threads=args.server_threads,
            follow=not args.no_follow,
        )
    if "collision" in phases:
        bench_collision(reps, f"C{tag}")
    sys.exit(exit_code())


if __name__ == "__main__":
    main()
