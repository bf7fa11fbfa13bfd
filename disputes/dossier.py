"""The evidence dossier of a case, assembled from the records (never typed by hand).

For each customer record of the case: its registrations (allocation's evidence, read
through the app registry — this app does not import allocation), its full ownership ledger,
its follow-ups with times, its recorded possible-duplicate pairs; between the two records
(or between a collision registration and the customer) the duplicate check's explanation;
earlier disputes about the same customers. Stored as JSON when the case is filed, rebuilt
on request; the committee reads it in the admin.

Contacts and phone numbers stay out: the committee needs who did what when, not the
customer's contact details (invariant 4 also holds for the parties reading their case)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.apps import apps
from django.db.models import Q
from django.utils import timezone

from crm.duplicates import customer_keys
from crm.identity.matcher import IdentityKeys, compare, keys_for
from crm.models import Customer, PossibleDuplicate, User
from disputes.models import Dispute
from ownership.selectors import ledger_for

DOSSIER_VERSION = 1
# Bounds, so that a very old customer does not make the snapshot huge.
MAX_FOLLOW_UPS = 200
MAX_LEDGER = 500


def _when(moment: datetime | None) -> str | None:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else None


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.pk,
        "name": str(user),
        "team": str(user.team) if user.team_id else "",
    }


def _registrations(customer: Customer) -> list[dict[str, Any]]:
    try:
        registration = apps.get_model("allocation", "Registration")
    except LookupError:
        return []
    rows = (
        registration.objects.filter(customer=customer)
        .select_related("rep__team")
        .order_by("submitted_at", "pk")
    )
    return [
        {
            "id": row.pk,
            "rep": _person(row.rep),
            "submitted_at": _when(row.submitted_at),
            "outcome": row.outcome,
            "outcome_label": str(row.get_outcome_display()),
            "entered_name": row.entered_name,
            "entered_credit_code": row.entered_credit_code,
            "entered_address": row.entered_address,
            "first_contact_name": row.first_contact_name,
            "evidence": row.evidence,
            "confirmed_different": row.confirmed_different,
            "soft_matches_shown": row.soft_matches_shown,
            # Kept for the identity comparison; not shown (a phone number).
            "_entered_phone": row.entered_phone,
        }
        for row in rows
    ]


def _ledger(customer: Customer) -> list[dict[str, Any]]:
    return [
        {
            "sequence": event.sequence,
            "kind": event.kind,
            "kind_label": str(event.get_kind_display()),
            "from_owner": _person(event.from_owner),
            "to_owner": _person(event.to_owner),
            "actor": _person(event.actor),
            "reason": event.reason,
            "cause": event.cause_label,
            "cause_type": event.cause_type.model if event.cause_type else "",
            "cause_id": event.cause_id,
            "occurred_at": _when(event.occurred_at),
            "hash": event.hash[:12],
        }
        for event in ledger_for(customer)[:MAX_LEDGER]
    ]


def _follow_ups(customer: Customer) -> list[dict[str, Any]]:
    rows = customer.follow_ups.select_related("by").order_by("happened_at", "id")[:MAX_FOLLOW_UPS]
    return [
        {
            "happened_at": _when(row.happened_at),
            "logged_at": _when(row.created_at),
            "kind": str(row.get_kind_display()),
            "by": _person(row.by),
            "summary": row.summary,
            "stage_before": row.stage_before,
            "stage_after": row.stage_after,
        }
        for row in rows
    ]


def _possible_duplicates(customer: Customer) -> list[dict[str, Any]]:
    rows = PossibleDuplicate.objects.filter(
        Q(customer=customer) | Q(candidate=customer)
    ).select_related("customer", "candidate", "confirmed_distinct_by")
    return [
        {
            "other": row.candidate.display_name
            if row.customer_id == customer.pk
            else row.customer.display_name,
            "other_id": row.candidate_id if row.customer_id == customer.pk else row.customer_id,
            "score": row.score,
            "reasons": row.reasons,
            "confirmed_distinct_by": _person(row.confirmed_distinct_by),
            "created_at": _when(row.created_at),
            "resolved_at": _when(row.resolved_at),
        }
        for row in rows
    ]


def _territory(customer: Customer) -> dict[str, Any] | None:
    """The customer's territory under the active rule set, its teams and the rule that
    matched, as the committee should read it (None: no rule set is active)."""
    from crm.models import Team
    from ownership.territories.selectors import active_compiled, facts_of

    compiled = active_compiled()
    if compiled is None:
        return None
    result = compiled.resolve(facts_of(customer))
    teams = Team.objects.filter(pk__in=result.team_ids).order_by("name")
    return {
        "territory": result.territory_label,
        "teams": [team.name for team in teams],
        "rule": result.reason,
        "registration_by_other_teams": result.policy,
    }


def _record(customer: Customer, role: str) -> dict[str, Any]:
    customer = (
        Customer.objects.select_related("owner__team", "created_by", "industry", "merged_into")
        .prefetch_related("phones")
        .get(pk=customer.pk)
    )
    return {
        "role": role,
        "id": customer.pk,
        "display_name": customer.display_name,
        "legal_name": customer.legal_name,
        "credit_code": customer.credit_code,
        "region": " ".join(
            part for part in (customer.province, customer.city, customer.district) if part
        ),
        "industry": str(customer.industry) if customer.industry_id else "",
        "stage": customer.stage,
        "created_at": _when(customer.created_at),
        "created_by": _person(customer.created_by),
        "owner": _person(customer.owner),
        "owned_since": _when(customer.owned_since),
        "merged_into": customer.merged_into_id,
        "contacts": customer.contacts.count(),
        "territory": _territory(customer),
        "registrations": _registrations(customer),
        "ledger": _ledger(customer),
        "follow_ups": _follow_ups(customer),
        "possible_duplicates": _possible_duplicates(customer),
    }


def _explain(probe: IdentityKeys, candidate: IdentityKeys, label: str) -> dict[str, Any]:
    match = compare(probe, candidate)
    return {
        "between": label,
        "tier": match.tier if match else "none",
        "score": round(match.score, 3) if match else 0.0,
        "reasons": match.reason_texts() if match else [],
        "probe_name_key": probe.name.name_key,
        "candidate_name_key": candidate.name.name_key,
    }


def _identity(dispute: Dispute, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The duplicate check's verdict between the two records; for a single record, between
    each registration that ran into it (what the rep typed) and the record."""
    main = Customer.objects.prefetch_related("phones").get(pk=dispute.customer_id)
    main_keys = customer_keys(main)
    if dispute.other_customer_id is not None:
        other = Customer.objects.prefetch_related("phones").get(pk=dispute.other_customer_id)
        return [
            _explain(
                main_keys,
                customer_keys(other),
                f"#{main.pk} {main.display_name} ↔ #{other.pk} {other.display_name}",
            )
        ]
    explanations = []
    for registration in records[0]["registrations"]:
        if registration["outcome"] == "registered":
            continue
        probe = keys_for(
            registration["entered_name"],
            credit_code=registration["entered_credit_code"],
            phones=[registration["_entered_phone"]] if registration["_entered_phone"] else [],
        )
        rep = registration["rep"]["name"] if registration["rep"] else ""
        explanations.append(
            _explain(
                probe,
                main_keys,
                f"{registration['entered_name']} ({rep}) ↔ #{main.pk} {main.display_name}",
            )
        )
    return explanations


def _earlier_disputes(dispute: Dispute) -> list[dict[str, Any]]:
    ids = [pk for pk in (dispute.customer_id, dispute.other_customer_id) if pk]
    rows = (
        Dispute.objects.filter(Q(customer_id__in=ids) | Q(other_customer_id__in=ids))
        .exclude(pk=dispute.pk)
        .select_related("claimant", "respondent")
        .prefetch_related("rulings")
        .order_by("filed_at")
    )
    return [
        {
            "id": row.pk,
            "kind": str(row.get_kind_display()),
            "state": str(row.get_state_display()),
            "filed_at": _when(row.filed_at),
            "claimant": _person(row.claimant),
            "respondent": _person(row.respondent),
            "rulings": [
                {"round": ruling.round, "outcome": str(ruling.get_outcome_display())}
                for ruling in row.rulings.all()
            ],
        }
        for row in rows
    ]


def build_dossier(dispute: Dispute) -> dict[str, Any]:
    records = [_record(dispute.customer, "customer")]
    if dispute.other_customer_id is not None:
        records.append(_record(Customer.objects.get(pk=dispute.other_customer_id), "other"))
    identity = _identity(dispute, records)
    for record in records:
        for registration in record["registrations"]:
            registration.pop("_entered_phone", None)
    rule_event = None
    if dispute.rule_event_id is not None:
        event = dispute.rule_event
        assert event is not None
        rule_event = {
            "sequence": event.sequence,
            "kind": event.kind,
            "kind_label": str(event.get_kind_display()),
            "from_owner": _person(event.from_owner),
            "to_owner": _person(event.to_owner),
            "reason": event.reason,
            "cause": event.cause_label,
            "occurred_at": _when(event.occurred_at),
        }
    return {
        "version": DOSSIER_VERSION,
        "built_at": _when(timezone.now()),
        "parties": {
            "claimant": _person(dispute.claimant),
            "respondent": _person(dispute.respondent),
        },
        "records": records,
        "identity": identity,
        "rule_event": rule_event,
        "earlier_disputes": _earlier_disputes(dispute),
    }
