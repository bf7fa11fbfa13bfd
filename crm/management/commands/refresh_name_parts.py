"""Store each customer's parsed name again where another version of the parser made it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext as _

from crm.services import customer_name_parts_refresh


class Command(BaseCommand):
    help = (
        "Re-stamp the stored parsed names (Customer.name_parts) that an earlier version of the "
        "name parser made; run after a deploy that changed crm/identity/normalize.py or "
        "regions.py (the nightly task does the same)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args: Any, **options: Any) -> None:
        count = customer_name_parts_refresh(batch_size=max(1, options["batch_size"]))
        self.stdout.write(_("%(count)d customers' parsed names stored again.") % {"count": count})
