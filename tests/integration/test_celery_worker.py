"""A real Celery worker (a subprocess of `celery -A crm worker`) on the real Redis broker of
settings.REDIS_URL runs the ownership review and a funnel snapshot against the test
database — no eager mode: the tasks travel through Redis and commit in another process."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from crm.celery import app
from crm.models import Customer, FunnelSnapshot, FunnelStageRow, Team, User
from crm.tasks import take_funnel_snapshot
from ownership.models import EventKind, OwnershipEvent, PoolPolicy, ReviewRun
from ownership.tasks import run_ownership_review
from tests.factories import CustomerFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
DAY = timedelta(days=1)
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"])
    host = db["HOST"] or ""
    if host.startswith("/"):
        return f"postgres://{auth}@/{quote(db['NAME'])}?host={quote(host)}"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{quote(db['NAME'])}"


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """A worker that consumes only its own queue, so nothing else on this Redis interferes."""
    assert not settings.CELERY_TASK_ALWAYS_EAGER
    queue = f"guishu-test-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DB_CONN_MAX_AGE": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "DJANGO_SETTINGS_MODULE": "crm.settings",
    }
    command = [
        sys.executable, "-m", "celery", "-A", "crm", "worker", "-Q", queue,
        "-n", f"{queue}@%h", "--pool", "solo", "-l", "warning",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield queue
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if os.environ.get("GUISHU_SHOW_WORKER_LOG"):
            print(output.decode(errors="replace"))
        # Nothing left in the throw-away queue.
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


def test_a_real_worker_runs_the_review_and_the_snapshot(worker_queue: str, team: Team) -> None:
    PoolPolicy.objects.get_or_create(team=None)
    # No e-mail addresses: the worker queues no mail for other workers on this Redis.
    rep = UserFactory(username="worker_rep", team=team, email="")
    now = timezone.now()
    due = [
        CustomerFactory(
            owner=rep, clock_started_at=now - 40 * DAY, last_follow_up_at=now - 35 * DAY, stage=50
        )
        for _ in range(3)
    ]
    kept = CustomerFactory(owner=rep, clock_started_at=now - 2 * DAY, stage=25)

    result = run_ownership_review.apply_async(queue=worker_queue).get(timeout=180)
    assert result["status"] == "done" and result["counts"]["recycled"] == 3
    run = ReviewRun.objects.get(pk=result["run"])
    assert run.owners_notified and not run.dry_run
    assert Customer.objects.filter(pk__in=[c.pk for c in due], owner__isnull=True).count() == 3
    kept.refresh_from_db()
    assert kept.owner == rep
    assert OwnershipEvent.objects.filter(kind=EventKind.RECYCLED, cause_id=run.pk).count() == 3
    again = run_ownership_review.apply_async(queue=worker_queue).get(timeout=120)
    assert again["counts"].get("recycled", 0) == 0

    snapshot_id = take_funnel_snapshot.apply_async(queue=worker_queue).get(timeout=120)
    snapshot = FunnelSnapshot.objects.get(pk=snapshot_id)
    mine = FunnelStageRow.objects.get(snapshot=snapshot, rep=rep, stage=25)
    assert mine.count == 1 and mine.reached == 1
    assert User.objects.filter(pk=rep.pk, is_active=True).exists()
