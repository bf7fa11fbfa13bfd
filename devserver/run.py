"""`python -m devserver.run`: the whole system on this machine, until Ctrl-C.

Starts embedded PostgreSQL/Redis for whichever of DATABASE_URL / REDIS_URL is not set,
migrates, seeds the demo organisation, syncs the beat schedules, then runs the web server,
a Celery worker and Celery beat with their output interleaved and prefixed.

Every child runs in a session (process group) of its own, so exactly one process decides
how things stop: this one. Ctrl-C in the terminal, SIGINT/SIGTERM/SIGHUP to this process
or to its process group all lead to the same ordered shutdown: the application children
get SIGTERM (SIGKILL after STOP_TIMEOUT, or at once on a second Ctrl-C), then Redis and
PostgreSQL are stopped; their data stays in var/. If a child dies on its own, everything
is stopped and the exit status is non-zero. Should this process be SIGKILLed, Linux
delivers SIGTERM to the children (PR_SET_PDEATHSIG), so nothing is orphaned either.

`--process NAME=COMMAND` replaces the default web/worker/beat trio (and `--skip-setup`
the setup steps); it exists to exercise the supervisor without the Django project.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shlex
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from devserver.embedded import (
    DEFAULT_VAR_DIR,
    REPO_ROOT,
    EmbeddedServerError,
    die_with_parent,
    group_alive,
    say,
    services_env,
    terminate_groups,
)

DEFAULT_PORT = 8000
# Celery's warm shutdown waits for running tasks; give them this long before SIGKILL.
STOP_TIMEOUT = 15.0
POLL_INTERVAL = 0.2
EXIT_CHILD_FAILED = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]


def setup_commands() -> list[Command]:
    manage = [sys.executable, "manage.py"]
    return [
        Command("migrate", [*manage, "migrate", "--noinput"]),
        Command("seed", [*manage, "seed_demo"]),
        Command("sched", [*manage, "sync_schedules"]),
    ]


def app_commands(port: int) -> list[Command]:
    # `python -m celery` rather than the `celery` script: works whether or not the
    # virtualenv's bin/ is on PATH.
    celery = [sys.executable, "-m", "celery", "-A", "crm"]
    return [
        # --noreload: one process instead of a reloader and its child, so that even a
        # SIGKILLed supervisor leaves no web server behind (see die_with_parent); the
        # worker and beat do not reload either, so restarting is needed after edits anyway.
        Command("web", [sys.executable, "manage.py", "runserver", "--noreload", f"0.0.0.0:{port}"]),
        Command("worker", [*celery, "worker", "-l", "info", "--concurrency", "2"]),
        Command(
            "beat",
            [
                *celery,
                "beat",
                "-l",
                "info",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
        ),
    ]


class ShutdownRequested(BaseException):  # BaseException, like KeyboardInterrupt
    """Raised in the main thread by the first termination signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class Child:
    command: Command
    proc: subprocess.Popen[bytes]
    pump: threading.Thread


@dataclass
class Supervisor:
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    signals_seen: int = 0
    # Reentrant: the signal handler may emit while the main thread is inside emit().
    _output_lock: threading.RLock = field(default_factory=threading.RLock)

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals_seen += 1
        if self.signals_seen == 1:
            raise ShutdownRequested(signum)
        # A second Ctrl-C while stopping: the user does not want to wait.
        self.emit("devserver", f"signal {signum} again: killing the remaining processes")
        for child in self.children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)

    # ------------------------------------------------------------------- output

    def emit(self, name: str, line: str) -> None:
        with self._output_lock:
            sys.stdout.write(f"{name:<9}| {line.rstrip()}\n")
            sys.stdout.flush()

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        # Ends at EOF, i.e. when the child and everything it spawned closed the pipe.
        for raw in iter(stream.readline, b""):
            self.emit(name, raw.decode("utf-8", errors="replace"))
        stream.close()

    # ----------------------------------------------------------------- children

    def start(self, command: Command) -> Child:
        proc = subprocess.Popen(
            command.argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own session: the terminal's Ctrl-C reaches only us, so we can stop the
            # application before the servers it uses and kill whatever it forked.
            start_new_session=True,
            # Only calls prctl/getppid/kill in the child; see embedded.die_with_parent.
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        assert proc.stdout is not None
        pump = threading.Thread(target=self._pump, args=(command.name, proc.stdout), daemon=True)
        pump.start()
        child = Child(command, proc, pump)
        self.children.append(child)
        return child

    def run_step(self, command: Command) -> int:
        """Run a setup command to completion; a signal meanwhile stops it too."""
        child = self.start(command)
        code = child.proc.wait()
        child.pump.join(timeout=2.0)
        self.children.remove(child)
        if group_alive(child.proc.pid):  # it exited but left something behind
            terminate_groups([child.proc], signal.SIGTERM, STOP_TIMEOUT)
        return code

    def watch(self, port: int | None, banner: list[str]) -> Child:
        """Wait until a child exits (returned) or a signal raises ShutdownRequested."""
        announced = port is None
        while True:
            for child in self.children:
                if child.proc.poll() is not None:
                    child.pump.join(timeout=2.0)  # flush its last words first
                    return child
            if not announced and port is not None and _accepts_connections(port):
                announced = True
                for line in banner:
                    self.emit("devserver", line)
            time.sleep(POLL_INTERVAL)

    def stop_all(self) -> None:
        if self.children:
            names = ", ".join(child.command.name for child in self.children)
            self.emit("devserver", f"stopping {names}")
        terminate_groups([child.proc for child in self.children], signal.SIGTERM, STOP_TIMEOUT)
        for child in self.children:
            child.pump.join(timeout=1.0)
        self.children.clear()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as runserver does
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def demo_logins_lines(env: dict[str, str]) -> list[str]:
    """The demo logins from `crm.demo.demo_logins()`, or a note why there are none.

    Imported here (Django set up against the same servers as the children) rather than
    at module level: the supervisor must work before and without the Django project.
    """
    try:
        os.environ.update(
            {key: env[key] for key in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
        )
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        import django

        django.setup()
        demo = importlib.import_module("crm.demo")
        # str(): role labels may be lazy translation proxies.
        logins = [(str(user), str(pw), str(role)) for user, pw, role in demo.demo_logins()]
    except Exception as exc:  # noqa: BLE001 - the banner is a convenience, never fatal
        return [f"(demo logins unavailable: {type(exc).__name__}: {exc})"]
    width = max((len(username) for username, _, _ in logins), default=0)
    return ["Demo logins (username / password / role):"] + [
        f"  {username:<{width}}  {password}  {role}" for username, password, role in logins
    ]


def parse_process(spec: str) -> Command:
    name, sep, command = spec.partition("=")
    if not sep or not name or not command.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=COMMAND, got {spec!r}")
    return Command(name, shlex.split(command))


def _expand(command: Command, env: dict[str, str]) -> Command:
    # $PORT, $DATABASE_URL... in --process commands, as a shell would expand them.
    return Command(command.name, [string.Template(a).safe_substitute(env) for a in command.argv])


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devserver.run", description=__doc__)
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or DEFAULT_PORT),
        help="web server port (default: $PORT or 8000)",
    )
    parser.add_argument("--var-dir", type=Path, default=DEFAULT_VAR_DIR, help=argparse.SUPPRESS)
    parser.add_argument(
        "--skip-setup", action="store_true", help="skip migrate, seed_demo and sync_schedules"
    )
    parser.add_argument(
        "--process",
        dest="processes",
        action="append",
        type=parse_process,
        metavar="NAME=COMMAND",
        help="run this instead of web/worker/beat (repeatable; $PORT etc. are expanded)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    supervisor = Supervisor(env={})
    # Before anything is started, so that a Ctrl-C during initdb/migrate cleans up too.
    supervisor.install_signal_handlers()
    try:
        with services_env(args.var_dir) as env:
            env.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
            env["PORT"] = str(args.port)
            env["PYTHONUNBUFFERED"] = "1"  # children's lines show up as they are written
            supervisor.env = env
            try:
                return _run(supervisor, args)
            finally:
                # However we leave (done, child died, signal): the application stops
                # before services_env stops the servers underneath it.
                supervisor.stop_all()
    except ShutdownRequested:
        say("stopped; data kept in var/")
        return 0
    except EmbeddedServerError as exc:
        say(str(exc))
        return EXIT_CHILD_FAILED


def _run(supervisor: Supervisor, args: argparse.Namespace) -> int:
    env = supervisor.env
    say(f"DATABASE_URL={env['DATABASE_URL']}  REDIS_URL={env['REDIS_URL']}")
    if not args.processes and not _port_is_free(args.port):
        # Checked up front: otherwise another server on the port would answer our
        # readiness probe and the banner would point at it before runserver fails.
        say(f"port {args.port} is already in use; choose another with PORT=<port>")
        return EXIT_CHILD_FAILED
    if not args.skip_setup:
        for command in setup_commands():
            code = supervisor.run_step(command)
            if code != 0:
                say(f"`{shlex.join(command.argv[1:])}` failed with exit status {code}")
                return code
    commands = [_expand(c, env) for c in (args.processes or app_commands(args.port))]
    for command in commands:
        supervisor.start(command)
    banner = [
        f"Guishu is running at http://localhost:{args.port}/  (Ctrl-C stops everything)",
        *demo_logins_lines(env),
    ]
    # Custom --process sets may not serve HTTP: only wait for the port for the default.
    dead = supervisor.watch(None if args.processes else args.port, banner)
    say(f"{dead.command.name} exited unexpectedly (status {dead.proc.returncode}); stopping all")
    return dead.proc.returncode or EXIT_CHILD_FAILED


if __name__ == "__main__":
    sys.exit(main())
