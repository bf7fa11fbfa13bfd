"""Run the ownership review now: `manage.py ownership_review [--dry-run] [--as-of YYYY-MM-DD]`.

The dry run prints what would happen (counts and examples) and writes nothing at all."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date

from ownership.models import ReviewAction
from ownership.review import ReviewAlreadyRunning, ReviewRefused, review_run

ACTIONS = [
    ("recycled", "recycled to the pool"),
    ("warned", "owners warned"),
    ("already_warned", "in the warning window, warned before"),
    ("skipped", "no longer due when locked"),
    ("errors", "errors"),
    (ReviewAction.INACTIVE_OWNER.value, "customers owned by inactive users"),
    (ReviewAction.OVER_CAP.value, "reps over their holding cap"),
    (ReviewAction.POSSIBLE_DUPLICATE.value, "unresolved possible duplicates"),
    (ReviewAction.DISPUTE_OVERDUE.value, "disputes past their deadline (not available yet)"),
]


class Command(BaseCommand):
    help = "Recycle customers whose ownership clock ran out, warn owners, list anomalies."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would happen; write nothing"
        )
        parser.add_argument(
            "--as-of",
            metavar="YYYY-MM-DD",
            help="evaluate the clocks at the start of this day (Asia/Shanghai); "
            "a future day only with --dry-run",
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = None
        if options["as_of"]:
            day = parse_date(options["as_of"]) if len(options["as_of"]) == 10 else None
            if day is None:
                raise CommandError("--as-of takes a date as YYYY-MM-DD.")
            as_of = timezone.make_aware(datetime.combine(day, time.min))
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        dry_run = options["dry_run"]
        try:
            run = review_run(
                as_of=as_of,
                dry_run=dry_run,
                record=not dry_run,
                batch_size=options["batch_size"],
            )
        except (ReviewAlreadyRunning, ReviewRefused) as error:
            raise CommandError(error.message) from error
        title = "Dry run (nothing written)" if dry_run else f"Review run #{run.pk}"
        when = timezone.localtime(run.as_of).strftime("%Y-%m-%d %H:%M %Z")
        assert run.finished_at is not None
        seconds = (run.finished_at - run.started_at).total_seconds()
        self.stdout.write(f"{title}: clocks as of {when}, {seconds:.1f} s")
        self.stdout.write(
            f"  {run.count('examined')} candidates examined in {run.count('batches')} batches"
        )
        for key, label in ACTIONS:
            self.stdout.write(f"  {run.count(key):>8} {label}")
        for action in ("recycled", "warned"):
            for example in run.examples.get(action, []):
                self.stdout.write(
                    f"  e.g. {action}: {example['customer']} ({example['owner']}): "
                    f"{example['rule']}, ends {example['returns_at'][:10]}"
                )
        for problem in run.errors[:10]:
            self.stdout.write(self.style.WARNING(f"  error: {problem}"))
        self.stdout.write(self.style.SUCCESS("done"))
