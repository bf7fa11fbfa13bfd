"""Registration (报备): first entry wins, race-free. The customer row and its ownership are
created in one transaction; identity advisory locks and unique constraints decide the race."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from allocation.models import Registration, RegistrationOutcome
from crm import services as crm_services
from crm.duplicates import DuplicateMatch
from crm.models import Customer, Industry, User
from ownership import services as ownership
from ownership.selectors import policy_for_owner

SOFT_MATCH = "soft_match"


@dataclass(frozen=True)
class RegistrationForm:
    display_name: str
    credit_code: str = ""
    address: str = ""
    phone: str = ""
    industry: Industry | None = None
    size_band: str = ""
    source: str = "other"
    first_contact_name: str = ""
    first_contact_phone: str = ""
    evidence: str = ""


@dataclass
class RegistrationResult:
    outcome: str
    customer: Customer | None = None
    registration: Registration | None = None
    matches: list[DuplicateMatch] = field(default_factory=list)
    owned: int = 0
    cap: int = 0
    message: str = ""


def _record(
    *,
    actor: User,
    form: RegistrationForm,
    outcome: str,
    submitted_at: Any,
    customer: Customer | None,
    shown: Iterable[DuplicateMatch] = (),
    confirmed: bool = False,
) -> Registration:
    return Registration.objects.create(
        rep=actor,
        submitted_at=submitted_at,
        outcome=outcome,
        customer=customer,
        entered_name=form.display_name[:200],
        entered_credit_code=form.credit_code[:32],
        entered_phone=form.phone[:32],
        entered_address=form.address[:255],
        first_contact_name=form.first_contact_name[:100],
        first_contact_phone=form.first_contact_phone[:32],
        evidence=form.evidence,
        soft_matches_shown=[
            {
                "customer_id": m.customer.pk,
                "name": m.customer.display_name,
                "score": m.score,
                "reasons": m.reasons,
            }
            for m in shown
        ],
        confirmed_different=confirmed,
    )


def registration_submit(
    *,
    actor: User,
    form: RegistrationForm,
    confirmed_distinct: Iterable[int] = (),
) -> RegistrationResult:
    """Register a customer for `actor`. Outcomes: registered, collision (someone else owns
    it), in_pool (continue as a claim), own, soft_match (confirm "a different company"),
    cap_reached. Bad input raises crm.services.CustomerInvalid; nothing is half saved."""
    submitted_at = timezone.now()
    confirmed = list(confirmed_distinct)
    with transaction.atomic():
        rep = ownership._lock_rep(actor)
        ownership.check_eligible_owner(rep)
        ownership.check_not_departing(rep)
        policy = policy_for_owner(rep)
        try:
            ownership.check_holding_cap(rep, policy)
        except ownership.HoldingCapReached as error:
            return RegistrationResult(
                outcome=RegistrationOutcome.CAP_REACHED,
                owned=error.owned,
                cap=error.cap,
                message=error.message,
            )
        try:
            customer = crm_services.customer_create(
                actor=actor,
                display_name=form.display_name,
                credit_code=form.credit_code,
                address=form.address,
                phone=form.phone,
                industry=form.industry,
                size_band=form.size_band,
                source=form.source,
                confirmed_distinct=confirmed,
            )
        except crm_services.DuplicateCustomer as duplicate:
            return _existing(actor=actor, form=form, submitted_at=submitted_at, error=duplicate)
        except crm_services.PossibleDuplicate as possible:
            return RegistrationResult(outcome=SOFT_MATCH, matches=possible.matches)
        if form.first_contact_name.strip():
            crm_services.contact_add(
                actor=actor,
                customer=customer,
                name=form.first_contact_name,
                mobile=form.first_contact_phone,
            )
        shown = _confirmed_matches(customer, confirmed)
        registration = _record(
            actor=actor,
            form=form,
            outcome=RegistrationOutcome.REGISTERED,
            submitted_at=submitted_at,
            customer=customer,
            shown=shown,
            confirmed=bool(confirmed),
        )
        ownership.ownership_register(
            actor=actor, customer=customer, evidence=form.evidence, cause=registration
        )
        customer.refresh_from_db()
        return RegistrationResult(
            outcome=RegistrationOutcome.REGISTERED, customer=customer, registration=registration
        )


def _confirmed_matches(customer: Customer, confirmed: list[int]) -> list[DuplicateMatch]:
    from crm.models import PossibleDuplicate

    if not confirmed:
        return []
    rows = PossibleDuplicate.objects.filter(customer=customer, candidate_id__in=confirmed)
    return [
        DuplicateMatch(customer=row.candidate, tier="soft", score=row.score, reasons=row.reasons)
        for row in rows.select_related("candidate")
    ]


def _existing(
    *, actor: User, form: RegistrationForm, submitted_at: Any, error: Any
) -> RegistrationResult:
    match: DuplicateMatch = error.matches[0]
    customer = match.customer
    if customer.owner_id is None:
        outcome = RegistrationOutcome.IN_POOL
        message = _("This customer is in the public pool; you can claim it.")
    elif customer.owner_id == actor.pk:
        outcome = RegistrationOutcome.OWN
        message = _("You already own this customer.")
    else:
        outcome = RegistrationOutcome.COLLISION
        message = _("This customer is already owned by %(owner)s.") % {"owner": customer.owner}
    registration = _record(
        actor=actor, form=form, outcome=outcome, submitted_at=submitted_at, customer=customer
    )
    return RegistrationResult(
        outcome=outcome,
        customer=customer,
        registration=registration,
        matches=error.matches,
        message=message,
    )
