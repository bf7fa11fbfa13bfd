"""The periodic ownership review (回收): recycle customers whose clock has run out, warn owners
whose clock ends soon, list anomalies for managers. Nightly by Celery beat; also
`manage.py ownership_review [--dry-run] [--as-of]` and the review page.

How it stays safe on a million customers (invariant 6):

- Set-based: SQL finds the candidates (owned customers whose earliest possible warning has
  passed under *any* policy, see `Horizon`), in id order, one page of `batch_size` at a
  time; only `compute_clock` with each customer's effective policy decides.
- Bounded transactions: each page is one transaction (recycles, warnings, outcome rows and
  the run's counts together). A crash between batches leaves finished batches applied and
  the rest untouched; the next run finds the rest as candidates again.
- Idempotent: recycling goes through the single writer's set-based `ownership_recycle_many`
  (the batch form of `ownership_recycle`: one ledger event per customer), which locks the
  page's rows and lets the review re-compute each clock on the locked row, so a customer
  already recycled (no owner) or just followed up is left alone; warnings go through
  `notify(dedup_key=...)`, once per customer per warning window.
- One at a time: a PostgreSQL session advisory lock; a second run exits saying so.
- Catching up after downtime: clocks are evaluated at one moment (`as_of`, default now), so
  every overdue customer is recycled once and only customers in their *current* warning
  window are warned (no storm of stale warnings).

Expiring reassignment requests is not part of this job: the allocation app runs its own
task (ownership never imports the workflow apps).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import DateTimeField, F
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from crm.models import Customer, Notification, User
from crm.notifications import notify
from ownership.clock import Clock, compute_clock
from ownership.models import ReviewAction, ReviewOutcome, ReviewRun, ReviewStatus
from ownership.review import anomalies
from ownership.review.anomalies import AnomalyList, collect_anomalies
from ownership.review.policies import PolicyBook
from ownership.services import OwnershipError, ownership_recycle_many

# pg_try_advisory_lock key of the review ("own_rev" in ASCII): any constant shared by all
# processes; nothing else in Guishu uses it.
LOCK_KEY = 0x6F776E5F726576
BATCH_SIZE = 500
EXAMPLES = 10
# Recycled customers listed in the owner's message (the rest are counted).
LISTED_IN_MESSAGE = 20

WARNING_KIND = "ownership_clock_warning"
RECYCLED_KIND = "ownership_recycled"


class ReviewAlreadyRunning(OwnershipError):
    pass


class ReviewRefused(OwnershipError):
    pass


@dataclass(frozen=True)
class Candidate:
    customer_id: int
    owner_id: int
    clock: Clock
    territory_id: int | None = None


AfterBatch = Callable[[int], None]


@contextmanager
def advisory_lock(key: int = LOCK_KEY) -> Iterator[bool]:
    """Try the session-level advisory lock; yields whether this process holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:
                # A broken connection: closing it ends the session, which releases the lock.
                connection.close()


def review_run(
    *,
    as_of: datetime | None = None,
    dry_run: bool = False,
    record: bool = True,
    actor: User | None = None,
    batch_size: int = BATCH_SIZE,
    after_batch: AfterBatch | None = None,
) -> ReviewRun:
    """Run the review; returns its ReviewRun (unsaved when `record` is False: only a dry run
    may skip recording, and then it writes nothing at all).

    `after_batch(n)` is called after batch n committed (tests use it to simulate a crash).
    Raises ReviewAlreadyRunning when another real run holds the lock, ReviewRefused for a
    real run evaluated in the future."""
    now = timezone.now()
    as_of = as_of or now
    if not dry_run and as_of > now + timedelta(minutes=1):
        raise ReviewRefused(
            _("A review that changes data cannot evaluate clocks in the future; use a dry run.")
        )
    if not dry_run and not record:
        raise ReviewRefused(_("Only a dry run can leave no record."))
    run = ReviewRun(started_at=now, as_of=as_of, dry_run=dry_run, started_by=actor)
    if dry_run:
        # A dry run changes nothing, so it needs no lock and may run beside a real run.
        if record:
            ReviewRun.objects.filter(
                status=ReviewStatus.RUNNING, dry_run=True, started_at__lt=now - timedelta(days=1)
            ).update(status=ReviewStatus.INTERRUPTED, finished_at=now)
            run.save(force_insert=True)
        return _execute(run, record=record, batch_size=batch_size, after_batch=after_batch)
    with advisory_lock() as acquired:
        if not acquired:
            raise ReviewAlreadyRunning(
                _("Another ownership review is running; this one did nothing.")
            )
        # We hold the lock, so a real run still marked running has died (worker killed).
        ReviewRun.objects.filter(status=ReviewStatus.RUNNING, dry_run=False).update(
            status=ReviewStatus.INTERRUPTED, finished_at=now
        )
        run.save(force_insert=True)
        return _execute(run, record=True, batch_size=batch_size, after_batch=after_batch)


def _execute(
    run: ReviewRun, *, record: bool, batch_size: int, after_batch: AfterBatch | None
) -> ReviewRun:
    counts: Counter[str] = Counter()
    examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    run.counts, run.examples, run.errors = {}, {}, []
    try:
        book = PolicyBook.load()
        for rows in candidate_pages(book, run.as_of, batch_size):
            due, warn = classify(rows, book, run.as_of)
            batch: Counter[str] = Counter(examined=len(rows), batches=1)
            if run.dry_run:
                _preview(due, warn, batch, examples)
            else:
                _apply_batch(run, due, warn, book, batch, counts)
            counts.update(batch)
            if after_batch is not None:
                after_batch(counts["batches"])
        anomalies = collect_anomalies(book, run.as_of)
        for anomaly in anomalies:
            counts[anomaly.action] = anomaly.count
        if not run.dry_run:
            _store_anomalies(run, anomalies)
            _notify_recycled_owners(run)
        run.status = ReviewStatus.DONE
    except Exception as error:
        run.status = ReviewStatus.FAILED
        run.errors.append({"message": f"{type(error).__name__}: {error}"[:500]})
        raise
    finally:
        run.counts = _plain(counts)
        run.examples = dict(examples)
        run.finished_at = timezone.now()
        if record and run.pk is not None:
            _save_result(run)
    return run


def _save_result(run: ReviewRun) -> None:
    try:
        ReviewRun.objects.filter(pk=run.pk).update(
            status=run.status,
            counts=run.counts,
            examples=run.examples,
            errors=run.errors,
            finished_at=run.finished_at,
        )
    except DatabaseError:
        # The database failed the run itself: the original error is the one to see; the
        # run stays "running" and the next run marks it interrupted.
        if run.status != ReviewStatus.FAILED:
            raise


def _plain(counts: Counter[str]) -> dict[str, int]:
    return {str(key): int(value) for key, value in sorted(counts.items())}


# --- finding and classifying candidates ---------------------------------------------------


def candidate_pages(
    book: PolicyBook, as_of: datetime, batch_size: int, *others: PolicyBook
) -> Iterator[list[tuple[Any, ...]]]:
    """Pages of (id, owner_id, stage, clock_started_at, last_follow_up_at, territory_id) of
    owned customers that may be due or warned at `as_of`, in id order (keyset pagination:
    each page is one short query, memory stays bounded)."""
    horizon = book.horizon(*others)
    queryset = (
        Customer.objects.filter(
            owner__isnull=False, merged_into__isnull=True, clock_started_at__isnull=False
        )
        .annotate(
            last_contact=Greatest(
                F("clock_started_at"),
                Coalesce(F("last_follow_up_at"), F("clock_started_at")),
                output_field=DateTimeField(),
            )
        )
        .filter(horizon.candidates(as_of))
        .order_by("pk")
    )
    for exempt in anomalies.recycle_exemptions():
        # Customers a workflow holds (under dispute) are neither recycled nor warned.
        queryset = queryset.exclude(pk__in=exempt)
    last_id = 0
    while True:
        rows = list(
            queryset.filter(pk__gt=last_id).values_list(
                "pk",
                "owner_id",
                "stage",
                "clock_started_at",
                "last_follow_up_at",
                "territory_record__territory_id",
            )[:batch_size]
        )
        if not rows:
            return
        yield rows
        last_id = rows[-1][0]


def clock_of(row: tuple[Any, ...], book: PolicyBook) -> Clock:
    _pk, owner_id, stage, started, last_follow_up = row[:5]
    territory_id = row[5] if len(row) > 5 else None
    return compute_clock(
        owner_id=owner_id,
        stage=stage,
        clock_started_at=started,
        last_follow_up_at=last_follow_up,
        policy=book.for_customer(owner_id, territory_id),
    )


def classify(
    rows: list[tuple[Any, ...]], book: PolicyBook, as_of: datetime
) -> tuple[list[Candidate], list[Candidate]]:
    """(due, to warn) by the one clock function; the rest of the page is neither."""
    due: list[Candidate] = []
    warn: list[Candidate] = []
    for row in rows:
        clock = clock_of(row, book)
        if clock.is_due(as_of):
            due.append(Candidate(row[0], row[1], clock, row[5] if len(row) > 5 else None))
        elif clock.in_warning_window(as_of):
            warn.append(Candidate(row[0], row[1], clock, row[5] if len(row) > 5 else None))
    return due, warn


def warning_key(customer_id: int, clock: Clock) -> str:
    """One warning per customer per warning window: a new window has a new end date."""
    assert clock.returns_at is not None
    return f"clock:{customer_id}:{timezone.localtime(clock.returns_at).date().isoformat()}"


def _fresh_warnings(candidates: list[Candidate]) -> list[tuple[Candidate, str]]:
    """The candidates not yet warned in their current window, with their warning keys."""
    if not candidates:
        return []
    keyed = [(c, warning_key(c.customer_id, c.clock)) for c in candidates]
    sent = set(
        Notification.objects.filter(
            recipient_id__in={c.owner_id for c in candidates},
            kind=WARNING_KIND,
            dedup_key__in=[key for _c, key in keyed],
        ).values_list("dedup_key", flat=True)
    )
    return [(c, key) for c, key in keyed if key not in sent]


# --- dry run ------------------------------------------------------------------------------


def _preview(
    due: list[Candidate],
    warn: list[Candidate],
    batch: Counter[str],
    examples: dict[str, list[dict[str, Any]]],
) -> None:
    new_warnings = [c for c, _key in _fresh_warnings(warn)]
    batch[ReviewAction.RECYCLED] += len(due)
    batch[ReviewAction.WARNED] += len(new_warnings)
    batch["already_warned"] += len(warn) - len(new_warnings)
    wanted = {
        ReviewAction.RECYCLED: due[: max(0, EXAMPLES - len(examples[ReviewAction.RECYCLED]))],
        ReviewAction.WARNED: new_warnings[: max(0, EXAMPLES - len(examples[ReviewAction.WARNED]))],
    }
    ids = [c.customer_id for chosen in wanted.values() for c in chosen]
    if not ids:
        return
    names = dict(Customer.objects.filter(pk__in=ids).values_list("pk", "display_name"))
    owners = {
        user.pk: str(user) for user in User.objects.filter(pk__in={c.owner_id for c in due + warn})
    }
    for action, chosen in wanted.items():
        for candidate in chosen:
            assert candidate.clock.returns_at is not None
            examples[str(action)].append(
                {
                    "customer_id": candidate.customer_id,
                    "customer": names.get(candidate.customer_id, ""),
                    "owner": owners.get(candidate.owner_id, ""),
                    "rule": candidate.clock.rule_label,
                    "returns_at": candidate.clock.returns_at.isoformat(),
                }
            )


# --- a real batch -------------------------------------------------------------------------


def _recycle_reason(clock: Clock) -> str:
    assert clock.returns_at is not None
    return _reason_text(clock.rule, clock.days, timezone.localtime(clock.returns_at).date())


@lru_cache(maxsize=4096)
def _reason_text(rule: str, days: int, ended: date) -> str:
    # Cached: thousands of customers a night share a handful of (rule, days, date) triples,
    # and switching the language and formatting a date per customer costs more than the SQL.
    with translation.override(settings.LANGUAGE_CODE):
        return _(
            "Returned to the pool by the ownership review: %(rule)s (protection ended on %(date)s)."
        ) % {
            "rule": Clock(returns_at=None, rule=rule, days=days).rule_label,
            "date": date_format(ended, "DATE_FORMAT"),
        }


def _cause_label(run: ReviewRun, clock: Clock) -> str:
    return _cause_text(run.pk, clock.rule, clock.days)


@lru_cache(maxsize=1024)
def _cause_text(run_id: int, rule: str, days: int) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("ownership review #%(run)d: %(rule)s") % {
            "run": run_id,
            "rule": Clock(returns_at=None, rule=rule, days=days).rule_label,
        }


def _apply_batch(
    run: ReviewRun,
    due: list[Candidate],
    warn: list[Candidate],
    book: PolicyBook,
    batch: Counter[str],
    totals: Counter[str],
) -> None:
    """Recycle and warn one page, in one transaction with its outcome rows and counts."""
    outcomes: list[ReviewOutcome] = []
    with transaction.atomic():
        if due:
            clocks: dict[int, Clock] = {}
            territory_of = {candidate.customer_id: candidate.territory_id for candidate in due}

            def decide(customer: Customer) -> tuple[str, str] | None:
                # Called on the locked row: a follow-up logged, a transfer or a release
                # since the candidate query wins, and a second run finds nothing to do.
                clock = clock_of(
                    (
                        customer.pk,
                        customer.owner_id,
                        customer.stage,
                        customer.clock_started_at,
                        customer.last_follow_up_at,
                        territory_of.get(customer.pk),
                    ),
                    book,
                )
                if not clock.is_due(run.as_of):
                    return None
                clocks[customer.pk] = clock
                return _recycle_reason(clock), _cause_label(run, clock)

            owners = {c.customer_id: c.owner_id for c in due}
            events = ownership_recycle_many(
                customer_ids=[c.customer_id for c in due],
                decide=decide,
                cause=run,
                now=timezone.now(),
            )
            batch["skipped"] += len(due) - len(events)
            batch[ReviewAction.RECYCLED] += len(events)
            for customer_id, event in events.items():
                clock = clocks[customer_id]
                owner_id = event.from_owner_id or owners[customer_id]
                outcomes.append(
                    ReviewOutcome(
                        run=run,
                        action=ReviewAction.RECYCLED,
                        customer_id=customer_id,
                        rep_id=owner_id,
                        team_id=book.team_of(owner_id),
                        rule=clock.rule,
                        returns_at=clock.returns_at,
                        detail=clock.rule_label[:300],
                        event=event,
                    )
                )
        outcomes.extend(_warn(run, warn, book, batch))
        ReviewOutcome.objects.bulk_create(outcomes)
        ReviewRun.objects.filter(pk=run.pk).update(counts=_plain(totals + batch), errors=run.errors)


def _warn(
    run: ReviewRun, warn: list[Candidate], book: PolicyBook, batch: Counter[str]
) -> list[ReviewOutcome]:
    fresh_keys = _fresh_warnings(warn)
    fresh = [c for c, _key in fresh_keys]
    batch["already_warned"] += len(warn) - len(fresh)
    if not fresh:
        return []
    owners = User.objects.in_bulk({c.owner_id for c in fresh})
    names = dict(
        Customer.objects.filter(pk__in=[c.customer_id for c in fresh]).values_list(
            "pk", "display_name"
        )
    )
    outcomes = []
    for candidate, key in fresh_keys:
        owner = owners.get(candidate.owner_id)
        clock = candidate.clock
        if owner is None or clock.returns_at is None:
            continue
        created = notify(
            recipients=[owner],
            kind=WARNING_KIND,
            # The clock itself: its rule label renders in the recipient's language.
            context={
                "customer": names.get(candidate.customer_id, ""),
                "clock": clock,
                "days_left": clock.days_left(run.as_of),
            },
            url=reverse("customer_detail", args=[candidate.customer_id]),
            dedup_key=key,
        )
        if not created:
            # An inactive owner gets no message (the anomaly list names them instead), or
            # a concurrent sender won the unique index.
            continue
        batch[ReviewAction.WARNED] += 1
        outcomes.append(
            ReviewOutcome(
                run=run,
                action=ReviewAction.WARNED,
                customer_id=candidate.customer_id,
                rep_id=owner.pk,
                team_id=book.team_of(owner.pk),
                rule=clock.rule,
                returns_at=clock.returns_at,
                detail=clock.rule_label[:300],
            )
        )
    return outcomes


# --- after the batches --------------------------------------------------------------------


def _store_anomalies(run: ReviewRun, anomalies: list[AnomalyList]) -> None:
    rows = [
        ReviewOutcome(
            run=run,
            action=anomaly.action,
            customer_id=item.customer_id,
            rep_id=item.rep_id,
            team_id=item.team_id,
            detail=item.detail[:300],
        )
        for anomaly in anomalies
        for item in anomaly.items
    ]
    with transaction.atomic():
        ReviewOutcome.objects.bulk_create(rows, batch_size=1000)


@transaction.atomic
def _notify_recycled_owners(run: ReviewRun) -> None:
    """One message per owner with the customers they lost: for this run and for earlier
    real runs that crashed before telling their owners."""
    pending = list(
        ReviewRun.objects.select_for_update()
        .filter(dry_run=False, owners_notified=False)
        .exclude(status=ReviewStatus.RUNNING)
        .values_list("pk", flat=True)
    )
    run_ids = sorted({*pending, run.pk})
    lost: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for rep_id, name, detail in (
        ReviewOutcome.objects.filter(
            run_id__in=run_ids, action=ReviewAction.RECYCLED, rep__isnull=False
        )
        .order_by("rep_id", "customer__display_name", "pk")
        .values_list("rep_id", "customer__display_name", "detail")
    ):
        lost[rep_id].append((name, detail))
    owners = User.objects.in_bulk(list(lost))
    for rep_id, customers in lost.items():
        owner = owners.get(rep_id)
        if owner is None:
            continue
        notify(
            recipients=[owner],
            kind=RECYCLED_KIND,
            context={
                "count": len(customers),
                "customers": customers[:LISTED_IN_MESSAGE],
                "more": max(0, len(customers) - LISTED_IN_MESSAGE),
            },
            url=reverse("pool"),
            dedup_key=f"review:{run.pk}",
        )
    ReviewRun.objects.filter(pk__in=run_ids).update(owners_notified=True)
