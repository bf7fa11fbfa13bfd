"""Import customers from a CSV or XLSX file (批量导入客户).

    manage.py import_customers FILE [--owner USERNAME] [--dry-run] [--strict]
                               [--format text|json] [--batch-size N] [--workers N]

Every row is checked against the database and the earlier rows of the file. Without
--dry-run new rows are created (hard duplicates skipped, possible duplicates created and
flagged for review); with --strict any invalid or duplicate row aborts the whole file and
nothing is written. Without --owner the customers go to the public pool.

Exit status: 0 when the file was processed (problem rows are reported, not fatal); 1 when
the file cannot be imported (format, encoding, size, columns, owner) or a strict import was
aborted.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from crm.importer import (
    DEFAULT_BATCH_SIZE,
    ImportFileError,
    ImportReport,
    import_customers,
    owner_by_username,
    read_table_from_path,
    status_label,
)


class Command(BaseCommand):
    help = "Import customers from a CSV (UTF-8 or GBK) or XLSX file, with the duplicate check."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the .csv or .xlsx file")
        parser.add_argument("--owner", help="username of the rep who will own the customers")
        parser.add_argument("--dry-run", action="store_true", help="check only, write nothing")
        parser.add_argument(
            "--strict",
            action="store_true",
            help="abort the whole file (write nothing) on any invalid or duplicate row",
        )
        parser.add_argument("--format", choices=("text", "json"), default="text")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="processes computing identity keys (default: by file size and CPUs)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            owner = owner_by_username(options["owner"]) if options["owner"] else None
            table = read_table_from_path(options["file"])
            report = import_customers(
                table,
                actor=None,
                owner=owner,
                dry_run=options["dry_run"],
                strict=options["strict"],
                batch_size=options["batch_size"],
                workers=options["workers"],
            )
        except ImportFileError as error:
            raise CommandError(error.message) from error
        if options["format"] == "json":
            self._json(report)
        else:
            self._text(report)
        if report.aborted or (report.strict and report.strict_failures):
            raise CommandError(
                _("Strict import: %(count)d rows are invalid or duplicates; nothing was imported.")
                % {"count": report.strict_failures}
            )

    def _json(self, report: ImportReport) -> None:
        # One JSON array, written row by row: a 100,000-row report is never one huge string.
        self.stdout.write("[", ending="")
        for i, row in enumerate(report.rows):
            data = json.dumps(row.as_dict(), ensure_ascii=False)
            self.stdout.write(("," if i else "") + "\n" + data, ending="")
        self.stdout.write("\n]")

    def _text(self, report: ImportReport) -> None:
        counts = report.counts
        mode = _("dry run, nothing written") if report.dry_run else _("imported")
        self.stdout.write(
            _("%(name)s: %(total)d rows (%(mode)s)")
            % {"name": report.name, "total": report.total, "mode": mode}
        )
        self.stdout.write(
            _(
                "new %(new)d · duplicates %(duplicate)d · possible duplicates %(possible)d · "
                "invalid %(invalid)d · created %(created)d (%(flagged)d flagged for review)"
            )
            % {
                "new": counts["new"],
                "duplicate": counts["duplicate"],
                "possible": counts["possible_duplicate"],
                "invalid": counts["invalid"],
                "created": counts["created"],
                "flagged": counts["flagged"],
            }
        )
        for row in report.problems:
            ref = f" {row.external_ref}" if row.external_ref else ""
            self.stdout.write(
                _("row %(row)d%(ref)s [%(status)s] %(problem)s")
                % {
                    "row": row.row,
                    "ref": ref,
                    "status": status_label(row.status),
                    "problem": row.problem_text(),
                }
            )
