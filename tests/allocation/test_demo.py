"""The demo shows an out-of-territory registration waiting in 华北's queue and one routed to
华东's pool; seeding twice changes nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from allocation import selectors
from allocation.models import Registration
from crm.models import User


@pytest.mark.django_db
def test_the_demo_has_a_pending_and_a_routed_registration() -> None:
    call_command("seed_demo")
    call_command("seed_demo")
    pending = Registration.objects.get(outcome="pending")
    assert pending.customer is not None and pending.customer.owner is None
    assert pending.rep.username == "rep_wang"
    assert list(selectors.registration_queue(User.objects.get(username="manager_north"))) == [
        pending
    ]
    routed = Registration.objects.get(outcome="routed")
    assert routed.customer is not None
    assert (
        selectors.pool_for(User.objects.get(username="rep_wang"))
        .filter(pk=routed.customer.pk)
        .exists()
    )
    assert not selectors.pool_for(routed.rep).filter(pk=routed.customer.pk).exists()
