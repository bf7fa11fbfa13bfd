"""Walk every ownership chain, check hashes and sequence, and compare with Customer.owner."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from crm.models import Customer
from ownership.ledger import verify_chains
from ownership.models import OwnershipEvent


class Command(BaseCommand):
    help = "Verify the ownership ledger's hash chains against Customer.owner; non-zero on damage."

    def handle(self, *args: Any, **options: Any) -> None:
        owners: dict[int, int | None] = dict(
            Customer.objects.values_list("id", "owner_id").iterator(chunk_size=10000)
        )
        problems = verify_chains(OwnershipEvent.objects.all(), owners)
        if problems:
            for problem in problems:
                self.stderr.write(f"customer {problem.customer_id}: {problem.problem}")
            raise CommandError(f"{len(problems)} customer(s) with a broken ownership ledger.")
        events = OwnershipEvent.objects.count()
        self.stdout.write(
            self.style.SUCCESS(f"Ledger intact: {events} events over {len(owners)} customers.")
        )
