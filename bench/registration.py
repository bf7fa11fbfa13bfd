"""Registration (报备) throughput and latency with a large customer table.

    .venv/bin/python bench/registration.py [--n 1000000] [--reuse] [--seconds 20]

Uses the bench database of bench/identity_latency.py (``guishu_bench``; ``--reuse`` keeps
an existing one of size N, since generating 1,000,000 customers takes minutes), then:

1. through the service: T threads (own connections) register new companies for S seconds;
2. over HTTP: gunicorn with 2 workers; T clients sign in and POST the registration form;
3. the collision case: 64 simultaneous attempts at one company written differently —
   exactly one must win.

Prints throughput (registrations/s) and p50/p95/p99 latency. Targets: p95 <= 150 ms over
HTTP, >= 100 registrations/s.
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


def _summary(label: str, latencies: list[float], elapsed: float, outcomes: Counter[str]) -> None:
    rate = len(latencies) / elapsed if elapsed else 0.0
    print(
        f"{label}: {len(latencies)} registrations in {elapsed:.1f} s = {rate:.0f}/s; "
        f"p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
        f"p99 {percentile(latencies, 99):.0f} ms; outcomes {dict(outcomes)}",
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
                    outcomes[result.outcome] += 1
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

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

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
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
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


def bench_http(reps: list[object], seconds: float, tag: str) -> None:
    port = _free_port()
    env = {**os.environ, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crm.wsgi", "--workers", "2", "--bind",
         f"127.0.0.1:{port}", "--log-level", "warning"],
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
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()
        deadline = time.perf_counter() + seconds

        def client(index: int, rep: object) -> None:
            session = Session(port)
            session.login(rep.username)  # type: ignore[attr-defined]
            token = session.csrf(session.request("GET", "/register/"))
            names = _names(f"{tag}{index}")
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                page = session.request(
                    "POST",
                    "/register/",
                    {"display_name": next(names), "source": "other", "csrfmiddlewaretoken": token},
                )
                elapsed = (time.perf_counter() - started) * 1000
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
                with lock:
                    latencies.append(elapsed)
                    outcomes[outcome] += 1

        threads = [threading.Thread(target=client, args=(i, rep)) for i, rep in enumerate(reps)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _summary(
            f"HTTP, gunicorn 2 workers ({len(reps)} clients)",
            latencies,
            time.perf_counter() - began,
            outcomes,
        )
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
                outcomes[result.outcome] += 1
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
    verdict = "PASS" if outcomes.get("registered") == 1 else "FAIL"
    print(f"collision: {len(reps)} simultaneous attempts → {dict(outcomes)} [{verdict}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database", default="guishu_bench")
    args = parser.parse_args()

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
    print(f"{Customer.objects.count():,} customers in {args.database}", flush=True)
    reps = _reps(64)
    tag = f"{int(time.time()) % 100000}"
    bench_service(reps[: args.threads], args.seconds, f"S{tag}")
    bench_http(reps[: args.threads], args.seconds, f"H{tag}")
    bench_collision(reps, f"C{tag}")


if __name__ == "__main__":
    main()
