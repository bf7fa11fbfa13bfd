"""The embedded PostgreSQL and Redis that `make run` / `make test` fall back to.

Plain functions without the `db` fixture: these tests start their own servers in a
temporary directory (on free ports, so a running `make run` is not disturbed) and talk
to them with psycopg2 and redis-py directly, not through Django's connection.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg2
import pytest
import redis

from devserver.embedded import ensure_postgres, ensure_redis, services_env

pytestmark = pytest.mark.embedded

ANY_FREE_PORT = 0


@pytest.fixture
def var_dir() -> Iterator[Path]:
    # Not tmp_path: pytest keeps that under a 0700 directory, and as root the server runs
    # as an unprivileged user that must be able to traverse to its data directory.
    with tempfile.TemporaryDirectory(prefix="guishu-embedded-") as tmp:
        yield Path(tmp)


def processes_working_in(directory: Path) -> list[psutil.Process]:
    """Both servers (and every PostgreSQL backend) chdir into their data directory."""
    found = []
    for proc in psutil.process_iter():
        try:
            if Path(proc.cwd()).is_relative_to(directory):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def test_servers_boot_answer_and_leave_no_process_behind(var_dir: Path) -> None:
    pg_url, stop_pg = ensure_postgres(var_dir, port=ANY_FREE_PORT)
    try:
        redis_url, stop_redis = ensure_redis(var_dir, port=ANY_FREE_PORT)
    except BaseException:
        stop_pg()
        raise
    try:
        assert pg_url.startswith("postgres://") and pg_url.endswith("/guishu")
        assert redis_url.startswith("redis://127.0.0.1:") and redis_url.endswith("/0")
        server_pids = {
            int((var_dir / "pg" / "postmaster.pid").read_text().split()[0]),
            int((var_dir / "redis" / "redis.pid").read_text().split()[0]),
        }
        assert {p.pid for p in processes_working_in(var_dir)} >= server_pids

        conn = psycopg2.connect(pg_url)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                cur.execute("SELECT show_trgm('你好')")
                assert cur.fetchone()[0], "pg_trgm must see Chinese characters"
                # PostgreSQL 18 dropped the lc_ctype setting (SHOW lc_ctype); the database's
                # ctype is what pg_trgm uses.
                cur.execute("SELECT datctype FROM pg_database WHERE datname = current_database()")
                assert cur.fetchone()[0].upper() not in {"C", "POSIX"}
                cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                assert cur.fetchone()[0], "the test runner must be able to create databases"
        finally:
            conn.close()

        client = redis.Redis.from_url(redis_url)
        try:
            assert client.ping()
            assert client.set("guishu:probe", "归属")
            assert client.get("guishu:probe") == "归属".encode()
        finally:
            client.close()
    finally:
        stop_redis()
        stop_pg()

    assert not any(psutil.pid_exists(pid) for pid in server_pids)
    assert processes_working_in(var_dir) == []


def test_second_start_reuses_the_cluster(var_dir: Path) -> None:
    url, stop = ensure_postgres(var_dir, port=ANY_FREE_PORT)
    try:
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE kept (name text)")
            cur.execute("INSERT INTO kept VALUES ('归属')")
        conn.close()
    finally:
        stop()
    first_init = (var_dir / "pg" / "PG_VERSION").stat().st_mtime_ns

    url, stop = ensure_postgres(var_dir, port=ANY_FREE_PORT)
    try:
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT name FROM kept")
            assert cur.fetchall() == [("归属",)]
        conn.close()
    finally:
        stop()
    assert (var_dir / "pg" / "PG_VERSION").stat().st_mtime_ns == first_init  # no new initdb


def test_services_env_starts_nothing_for_urls_already_given(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://someone@db.example:5432/guishu")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/1")
    with services_env(var_dir) as env:
        assert env["DATABASE_URL"] == os.environ["DATABASE_URL"]
        assert env["REDIS_URL"] == os.environ["REDIS_URL"]
        assert processes_working_in(var_dir) == []
    assert list(var_dir.iterdir()) == []
