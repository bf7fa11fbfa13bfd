"""The demo shows one filed and one decided case, and seeding twice changes nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from disputes.models import Dispute


@pytest.mark.django_db
def test_the_demo_has_a_filed_and_a_decided_case() -> None:
    call_command("seed_demo")
    states = sorted(Dispute.objects.values_list("state", flat=True))
    assert states == ["decided", "filed"]
    call_command("seed_demo")
    assert Dispute.objects.count() == 2
    decided = Dispute.objects.get(state="decided")
    assert decided.rulings.get().outcome == "merge"
    assert decided.other_customer is not None and decided.other_customer.merged_into is not None
