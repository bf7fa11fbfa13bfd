"""Every write of the disputes app: filing, statements, the state machine, votes, rulings
(applied through the ownership writer), appeals, withdrawal, deadlines. Keyword-only,
typed, atomic, with the acting user; the web pages, the admin and the tasks call these."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import services as crm_services
from crm.errors import DomainError
from crm.models import Customer, Role, User
from crm.notifications import notify
from disputes import selectors
from disputes.attachments import FileType, check_upload, max_files
from disputes.dossier import build_dossier
from disputes.models import (
    PENDING_STATES,
    TRANSITIONS,
    AwardTo,
    Dispute,
    DisputeAttachment,
    DisputeHistory,
    DisputeKind,
    DisputeState,
    DisputeStatement,
    Ruling,
    RulingMethod,
    RulingOutcome,
    Vote,
)
from ownership import services as ownership
from ownership.models import OwnershipEvent

STATEMENT_MAX_LENGTH = 5000


class DisputeError(DomainError):
    pass


class DisputeInvalid(DisputeError):
    """Bad input: `errors` maps a form field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class DisputeExists(DisputeError):
    def __init__(self, message: str, *, dispute: Dispute | None = None) -> None:
        super().__init__(message)
        self.dispute = dispute


class IllegalTransition(DisputeError):
    def __init__(self, from_state: str, to_state: str) -> None:
        super().__init__(
            _("A dispute cannot go from “%(from)s” to “%(to)s”.")
            % {"from": DisputeState(from_state).label, "to": DisputeState(to_state).label}
        )
        self.from_state = from_state
        self.to_state = to_state


class NotEligible(DisputeError):
    pass


class AlreadyVoted(DisputeError):
    pass


# --- helpers --------------------------------------------------------------------------------


def case_url(dispute: Dispute) -> str:
    return reverse("dispute_detail", args=[dispute.pk])


def admin_url(dispute: Dispute) -> str:
    try:
        return reverse("admin:disputes_dispute_change", args=[dispute.pk])
    except NoReverseMatch:  # the admin is not mounted (a stripped-down deployment)
        return ""


def _managers_of(people: Iterable[User | None]) -> list[User]:
    managers = []
    for person in people:
        if person is not None and person.team_id is not None:
            manager = person.team.manager if person.team else None
            if manager is not None and manager.is_active:
                managers.append(manager)
    return managers


def _clean_statement(text: str, field: str = "statement") -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        raise DisputeInvalid({field: _("Write your statement.")})
    if len(cleaned) > STATEMENT_MAX_LENGTH:
        raise DisputeInvalid(
            {
                field: _("The statement has %(count)d characters; at most %(max)d are allowed.")
                % {"count": len(cleaned), "max": STATEMENT_MAX_LENGTH}
            }
        )
    return cleaned


def _check_attachments(uploads: Sequence[UploadedFile]) -> list[tuple[UploadedFile, FileType]]:
    if len(uploads) > max_files():
        raise DisputeInvalid(
            {"attachments": _("At most %(max)d files per statement.") % {"max": max_files()}}
        )
    checked = []
    problems = []
    for upload in uploads:
        kind, problem = check_upload(upload)
        if kind is None:
            problems.append(problem)
        else:
            checked.append((upload, kind))
    if problems:
        raise DisputeInvalid({"attachments": " ".join(problems)})
    return checked


def _store_attachments(
    *,
    dispute: Dispute,
    statement: DisputeStatement,
    actor: User,
    checked: list[tuple[UploadedFile, FileType]],
    now: datetime,
    stored: list[DisputeAttachment],
) -> None:
    for upload, kind in checked:
        upload.seek(0)
        content = upload.read()
        attachment = DisputeAttachment(
            dispute=dispute,
            statement=statement,
            uploaded_by=actor,
            original_name=(upload.name or "")[:255],
            content_type=kind.content_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            created_at=now,
        )
        # Through Django's storage API (file system here, an object store in production).
        attachment.file.save(
            f"{uuid.uuid4().hex}.{kind.extension}", ContentFile(content), save=False
        )
        stored.append(attachment)
        attachment.save()


def _discard_files(stored: list[DisputeAttachment]) -> None:
    """The transaction failed after files were written: remove them (no orphans)."""
    for attachment in stored:
        if attachment.file.name:
            attachment.file.storage.delete(attachment.file.name)


def _add_statement(
    *,
    dispute: Dispute,
    actor: User,
    text: str,
    attachments: Sequence[UploadedFile],
    now: datetime,
    stored: list[DisputeAttachment],
) -> DisputeStatement:
    checked = _check_attachments(attachments)
    statement = DisputeStatement.objects.create(
        dispute=dispute, author=actor, round=dispute.round, text=text, created_at=now
    )
    _store_attachments(
        dispute=dispute, statement=statement, actor=actor, checked=checked, now=now, stored=stored
    )
    return statement


# --- the state machine -------------------------------------------------------------------


def check_transition(from_state: str, to_state: str) -> None:
    if to_state not in TRANSITIONS.get(from_state, frozenset()):
        raise IllegalTransition(from_state, to_state)


def dispute_transition(
    *,
    dispute_id: int,
    to_state: str,
    actor: User | None,
    note: str = "",
    now: datetime | None = None,
) -> tuple[Dispute, bool]:
    """THE state change of a case: lock the row, no-op when already in `to_state`, refuse
    what the table does not allow (IllegalTransition), write the history row in the same
    transaction. Returns the case and whether anything changed."""
    now = now or timezone.now()
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update().get(pk=dispute_id)
        if dispute.state == to_state:
            return dispute, False
        check_transition(dispute.state, to_state)
        from_state = dispute.state
        dispute.state = to_state
        fields = ["state"]
        if to_state == DisputeState.DECIDED:
            dispute.decided_at = now
            fields.append("decided_at")
            if dispute.round == 1:
                dispute.appeal_until = now + timedelta(days=selectors.appeal_days())
                fields.append("appeal_until")
        if to_state in (DisputeState.CLOSED, DisputeState.WITHDRAWN):
            dispute.closed_at = now
            fields.append("closed_at")
        dispute.save(update_fields=fields)
        DisputeHistory.objects.create(
            dispute=dispute,
            from_state=from_state,
            to_state=to_state,
            actor=actor,
            note=note,
            at=now,
        )
        return dispute, True


# --- filing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filing:
    kind: str
    customer: Customer
    other_customer: Customer | None
    respondent: User | None
    rule_event: OwnershipEvent | None


def _plan_filing(
    *,
    actor: User,
    kind: str,
    customer: Customer,
    other_customer: Customer | None,
    rule_event: OwnershipEvent | None,
) -> Filing:
    errors: dict[str, str] = {}
    if kind not in DisputeKind.values:
        raise DisputeInvalid({"kind": _("Choose what the dispute is about.")})
    if customer.merged_into_id is not None:
        raise DisputeInvalid({"customer": _("This customer record was merged into another one.")})
    respondent: User | None = None
    if kind == DisputeKind.FIRST_CONTACT:
        if customer.owner_id is None:
            errors["customer"] = _(
                "This customer is in the public pool: claim it instead of filing a dispute."
            )
        elif customer.owner_id == actor.pk:
            errors["customer"] = _("You already own this customer.")
        respondent = customer.owner
        other_customer = rule_event = None
    elif kind == DisputeKind.SAME_COMPANY:
        if other_customer is None:
            errors["other_customer"] = _("Choose the other record of the same company.")
        elif other_customer.pk == customer.pk:
            errors["other_customer"] = _("Choose a different record.")
        elif other_customer.merged_into_id is not None:
            errors["other_customer"] = _("That record was already merged into another one.")
        else:
            # The other party: whoever owns a record of the pair and is not the filer.
            for record in (other_customer, customer):
                if record.owner_id is not None and record.owner_id != actor.pk:
                    respondent = record.owner
                    break
        rule_event = None
    else:
        if rule_event is None:
            errors["rule_event"] = _("Choose the change you contest.")
        elif rule_event.customer_id != customer.pk or rule_event.from_owner_id != actor.pk:
            errors["rule_event"] = _(
                "You can only contest a change that took this customer from you."
            )
        elif customer.owner_id == actor.pk:
            errors["customer"] = _("You already own this customer.")
        respondent = customer.owner
        other_customer = None
    if errors:
        raise DisputeInvalid(errors)
    return Filing(kind, customer, other_customer, respondent, rule_event)


def dispute_file(
    *,
    actor: User,
    customer: Customer,
    kind: str,
    statement: str,
    other_customer: Customer | None = None,
    rule_event: OwnershipEvent | None = None,
    attachments: Sequence[UploadedFile] = (),
    now: datetime | None = None,
) -> Dispute:
    """A rep files a dispute. The customers of the case are under dispute from now on (the
    review does not recycle them); the dossier is assembled and frozen at once; the other
    party, the managers of both and the committee are told. All or nothing: a refused
    attachment or a concurrent filing leaves no row and no file behind."""
    now = now or timezone.now()
    if not actor.is_active or actor.role != Role.REP:
        raise NotEligible(_("Only sales reps can file a dispute."))
    text = _clean_statement(statement)
    _check_attachments(attachments)
    # Decide on the stored owners, not on what the caller's instances remember.
    customer = Customer.objects.select_related("owner").get(pk=customer.pk)
    if other_customer is not None:
        other_customer = Customer.objects.select_related("owner").get(pk=other_customer.pk)
    filing = _plan_filing(
        actor=actor,
        kind=kind,
        customer=customer,
        other_customer=other_customer,
        rule_event=rule_event,
    )
    existing = selectors.open_dispute_between(filing.customer, filing.other_customer)
    if existing is not None:
        raise DisputeExists(
            _("There is already an open dispute about this customer (#%(id)s).")
            % {"id": existing.pk},
            dispute=existing,
        )
    respondent = filing.respondent
    stored: list[DisputeAttachment] = []
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    dispute = Dispute.objects.create(
                        kind=filing.kind,
                        customer=filing.customer,
                        other_customer=filing.other_customer,
                        claimant=actor,
                        respondent=respondent,
                        claimant_team_id=actor.team_id,
                        respondent_team_id=respondent.team_id if respondent else None,
                        rule_event=filing.rule_event,
                        filed_at=now,
                        deadline=now + timedelta(days=selectors.deadline_days()),
                    )
            except IntegrityError as error:
                # Filed at the same moment by someone else: the constraint decided.
                raise DisputeExists(
                    _("There is already an open dispute about this customer.")
                ) from error
            DisputeHistory.objects.create(
                dispute=dispute, from_state="", to_state=DisputeState.FILED, actor=actor, at=now
            )
            _add_statement(
                dispute=dispute,
                actor=actor,
                text=text,
                attachments=attachments,
                now=now,
                stored=stored,
            )
            dispute.dossier = build_dossier(dispute)
            dispute.dossier_built_at = now
            dispute.save(update_fields=["dossier", "dossier_built_at"])
            _notify_filed(dispute, actor)
    except Exception:
        _discard_files(stored)
        raise
    return dispute


def _notify_filed(dispute: Dispute, actor: User) -> None:
    respondent = dispute.respondent
    notify(
        recipients=[p for p in [respondent, *_managers_of([actor, respondent])] if p],
        kind="dispute_filed",
        context={"dispute": dispute},
        url=case_url(dispute),
        dedup_key=f"dispute:{dispute.pk}:filed",
    )
    notify(
        recipients=selectors.eligible_voters(dispute),
        kind="dispute_filed",
        context={"dispute": dispute, "for_committee": True},
        url=admin_url(dispute),
        dedup_key=f"dispute:{dispute.pk}:filed",
    )


# --- what the parties do ----------------------------------------------------------------------


def dispute_add_statement(
    *,
    actor: User,
    dispute: Dispute,
    text: str,
    attachments: Sequence[UploadedFile] = (),
    now: datetime | None = None,
) -> DisputeStatement:
    """A party adds a statement (with evidence files) until the deadline."""
    now = now or timezone.now()
    cleaned = _clean_statement(text, "text")
    stored: list[DisputeAttachment] = []
    try:
        with transaction.atomic():
            locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
            if not selectors.is_party(actor, locked):
                raise NotEligible(_("Only the parties can add statements to a dispute."))
            if locked.state not in PENDING_STATES:
                raise DisputeError(_("This dispute no longer accepts statements."))
            if now > locked.deadline:
                raise DisputeError(_("The deadline for statements has passed."))
            return _add_statement(
                dispute=locked,
                actor=actor,
                text=cleaned,
                attachments=attachments,
                now=now,
                stored=stored,
            )
    except Exception:
        _discard_files(stored)
        raise


def dispute_withdraw(
    *, actor: User, dispute: Dispute, note: str = "", now: datetime | None = None
) -> Dispute:
    with transaction.atomic():
        locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
        if actor.pk != locked.claimant_id:
            raise NotEligible(_("Only the rep who filed the dispute can withdraw it."))
        locked, changed = dispute_transition(
            dispute_id=locked.pk,
            to_state=DisputeState.WITHDRAWN,
            actor=actor,
            note=note.strip(),
            now=now,
        )
        if changed and locked.respondent is not None:
            notify(
                recipients=[locked.respondent],
                kind="dispute_withdrawn",
                context={"dispute": locked},
                url=case_url(locked),
                dedup_key=f"dispute:{locked.pk}:withdrawn",
            )
        return locked


def dispute_appeal(
    *,
    actor: User,
    dispute: Dispute,
    text: str,
    attachments: Sequence[UploadedFile] = (),
    now: datetime | None = None,
) -> Dispute:
    """One appeal per case, by a party, within the appeal window; heard by members who did
    not vote the first time, with a new deadline."""
    now = now or timezone.now()
    cleaned = _clean_statement(text, "text")
    stored: list[DisputeAttachment] = []
    try:
        with transaction.atomic():
            locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
            if not selectors.is_party(actor, locked):
                raise NotEligible(_("Only the parties can appeal a ruling."))
            if locked.round != 1 or locked.appealed_by_id is not None:
                raise DisputeError(
                    _("This dispute was already appealed once; the ruling is final.")
                )
            if locked.state != DisputeState.DECIDED:
                raise IllegalTransition(locked.state, DisputeState.APPEALED)
            if locked.appeal_until is None or now > locked.appeal_until:
                raise DisputeError(_("The time to appeal this ruling has passed."))
            locked, _changed = dispute_transition(
                dispute_id=locked.pk,
                to_state=DisputeState.APPEALED,
                actor=actor,
                note=cleaned[:200],
                now=now,
            )
            locked.round = 2
            locked.appealed_by = actor
            locked.deadline = now + timedelta(days=selectors.appeal_deadline_days())
            locked.escalated_at = None
            locked.save(update_fields=["round", "appealed_by", "deadline", "escalated_at"])
            _add_statement(
                dispute=locked,
                actor=actor,
                text=cleaned,
                attachments=attachments,
                now=now,
                stored=stored,
            )
            _notify_appealed(locked, actor)
            return locked
    except Exception:
        _discard_files(stored)
        raise


def _notify_appealed(dispute: Dispute, actor: User) -> None:
    others = [p for p in (dispute.claimant, dispute.respondent) if p and p.pk != actor.pk]
    notify(
        recipients=others,
        kind="dispute_appealed",
        context={"dispute": dispute},
        url=case_url(dispute),
        dedup_key=f"dispute:{dispute.pk}:appealed",
    )
    notify(
        recipients=selectors.eligible_voters(dispute),
        kind="dispute_appealed",
        context={"dispute": dispute, "for_committee": True},
        url=admin_url(dispute),
        dedup_key=f"dispute:{dispute.pk}:appealed",
    )


# --- the committee ------------------------------------------------------------------------


def dispute_refresh_dossier(
    *, actor: User | None, dispute: Dispute, now: datetime | None = None
) -> Dispute:
    now = now or timezone.now()
    with transaction.atomic():
        locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
        locked.dossier = build_dossier(locked)
        locked.dossier_built_at = now
        locked.save(update_fields=["dossier", "dossier_built_at"])
        return locked


def dispute_start_review(
    *, actor: User, dispute: Dispute, now: datetime | None = None
) -> tuple[Dispute, bool]:
    """A committee member takes a filed case up (also happens with the first vote)."""
    if actor.role != Role.COMMITTEE and not actor.is_crm_admin:
        raise NotEligible(_("Only committee members can take a dispute up."))
    return dispute_transition(
        dispute_id=dispute.pk, to_state=DisputeState.UNDER_REVIEW, actor=actor, now=now
    )


def _check_choice(dispute: Dispute, outcome: str, award_to: str) -> str:
    if outcome not in RulingOutcome.values:
        raise DisputeInvalid({"outcome": _("Choose a ruling.")})
    if outcome == RulingOutcome.MERGE:
        if not dispute.has_two_records:
            raise DisputeInvalid({"outcome": _("Only a dispute about two records can merge them.")})
        if award_to not in AwardTo.values:
            raise DisputeInvalid({"award_to": _("Say who receives the merged customer.")})
        return award_to
    return ""


def _clean_rationale(rationale: str) -> str:
    cleaned = (rationale or "").strip()
    if not cleaned:
        raise DisputeInvalid({"rationale": _("Write the rationale of your vote.")})
    return cleaned[:STATEMENT_MAX_LENGTH]


def dispute_vote(
    *,
    actor: User,
    dispute: Dispute,
    outcome: str,
    rationale: str,
    award_to: str = "",
    now: datetime | None = None,
) -> Vote:
    """A committee member's vote. When it makes a majority (with quorum), the case is
    decided and the ruling applied in the same transaction; a tie is escalated to the chair."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            Dispute.objects.select_for_update(of=("self",))
            .select_related("claimant", "respondent")
            .get(pk=dispute.pk)
        )
        if locked.state not in PENDING_STATES:
            raise DisputeError(_("Voting on this dispute is closed."))
        if actor.role != Role.COMMITTEE or not actor.is_active:
            raise NotEligible(_("Only committee members vote on disputes."))
        if selectors.conflicted(actor, locked):
            raise NotEligible(
                _("You are a party to this dispute or manage a party: you cannot vote on it.")
            )
        if locked.round == 2 and actor.pk in selectors.first_round_voter_ids(locked):
            raise NotEligible(
                _("You voted the first time; the appeal is decided by the other members.")
            )
        award = _check_choice(locked, outcome, award_to)
        text = _clean_rationale(rationale)
        if selectors.has_voted(actor, locked):
            raise AlreadyVoted(_("You have already voted on this case."))
        if locked.state == DisputeState.FILED:
            locked, _changed = dispute_transition(
                dispute_id=locked.pk, to_state=DisputeState.UNDER_REVIEW, actor=actor, now=now
            )
        try:
            with transaction.atomic():
                vote = Vote.objects.create(
                    dispute=locked,
                    round=locked.round,
                    member=actor,
                    outcome=outcome,
                    award_to=award,
                    rationale=text,
                    created_at=now,
                )
        except IntegrityError as error:
            raise AlreadyVoted(_("You have already voted on this case.")) from error
        result = selectors.tally(locked)
        if result.leader is not None:
            leader_outcome, _sep, leader_award = result.leader.partition(":")
            _decide(
                dispute=locked,
                outcome=leader_outcome,
                award_to=leader_award,
                method=RulingMethod.MAJORITY,
                actor=actor,
                decided_by=None,
                rationale="",
                counts=result.counts,
                now=now,
            )
        elif result.tied:
            _escalate(locked, reason="tie")
        return vote


def dispute_chair_decide(
    *,
    actor: User,
    dispute: Dispute,
    outcome: str,
    rationale: str,
    award_to: str = "",
    now: datetime | None = None,
) -> Ruling:
    """The chair decides a tie, or a case past its deadline."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            Dispute.objects.select_for_update(of=("self",))
            .select_related("claimant", "respondent")
            .get(pk=dispute.pk)
        )
        if locked.state not in PENDING_STATES:
            raise DisputeError(_("This dispute is not waiting for a ruling."))
        chair = selectors.chair_for(locked)
        if chair is None or chair.pk != actor.pk:
            raise NotEligible(_("Only the chair of the committee decides this case."))
        if not selectors.needs_chair(locked, now):
            raise DisputeError(
                _(
                    "The chair decides only a tie or a case past its deadline; "
                    "the votes decide this one."
                )
            )
        award = _check_choice(locked, outcome, award_to)
        text = _clean_rationale(rationale)
        if locked.state == DisputeState.FILED:
            locked, _changed = dispute_transition(
                dispute_id=locked.pk, to_state=DisputeState.UNDER_REVIEW, actor=actor, now=now
            )
        return _decide(
            dispute=locked,
            outcome=outcome,
            award_to=award,
            method=RulingMethod.CHAIR,
            actor=actor,
            decided_by=actor,
            rationale=text,
            counts=selectors.tally(locked).counts,
            now=now,
        )


def dispute_close(*, actor: User | None, dispute: Dispute, now: datetime | None = None) -> Dispute:
    """Close a decided case once no appeal is possible any more."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
        if (
            locked.state == DisputeState.DECIDED
            and locked.round == 1
            and locked.appeal_until is not None
            and now <= locked.appeal_until
        ):
            raise DisputeError(
                _("The parties may still appeal until %(date)s.")
                % {"date": timezone.localtime(locked.appeal_until).strftime("%Y-%m-%d %H:%M")}
            )
        locked, _changed = dispute_transition(
            dispute_id=locked.pk, to_state=DisputeState.CLOSED, actor=actor, now=now
        )
        return locked


# --- applying a ruling ---------------------------------------------------------------------


def _target_owner(dispute: Dispute, outcome: str, award_to: str) -> User | None:
    if outcome == RulingOutcome.POOL:
        return None
    if outcome == RulingOutcome.AWARD:
        return dispute.claimant
    if outcome == RulingOutcome.MERGE:
        return dispute.claimant if award_to == AwardTo.CLAIMANT else dispute.respondent
    return dispute.respondent


def _first_entry(customer: Customer) -> tuple[datetime, int]:
    """When a record was first entered: its first owner event, else its creation."""
    first = (
        OwnershipEvent.objects.filter(customer=customer)
        .order_by("sequence")
        .values_list("occurred_at", flat=True)
        .first()
    )
    return (first or customer.created_at, customer.pk)


def _subject(dispute: Dispute) -> Customer:
    """The record whose owner the ruling decides: the other party's record of a pair."""
    if dispute.kind == DisputeKind.SAME_COMPANY and dispute.other_customer is not None:
        return dispute.other_customer
    return dispute.customer


@dataclass(frozen=True)
class _Plan:
    moves: list[tuple[Customer, User | None]]
    survivor: Customer | None
    merged: Customer | None


def _plan(dispute: Dispute, outcome: str, award_to: str) -> _Plan:
    target = _target_owner(dispute, outcome, award_to)
    records = [dispute.customer] + ([dispute.other_customer] if dispute.other_customer else [])
    records = [Customer.objects.get(pk=record.pk) for record in records]
    # A record merged by an earlier round (an appeal of a merge) stays merged: the
    # ruling then decides the survivor's owner. Merges are not undone.
    live = [record for record in records if record.merged_into_id is None]
    if outcome == RulingOutcome.MERGE and len(live) == 2:
        survivor, merged = sorted(live, key=_first_entry)
        return _Plan(moves=[(survivor, target)], survivor=survivor, merged=merged)
    if outcome == RulingOutcome.POOL:
        return _Plan(moves=[(record, None) for record in live], survivor=None, merged=None)
    subject = Customer.objects.get(pk=_subject(dispute).pk)
    if subject.merged_into_id is not None:
        subject = Customer.objects.get(pk=subject.merged_into_id)
    return _Plan(moves=[(subject, target)], survivor=None, merged=None)


def _decide(
    *,
    dispute: Dispute,
    outcome: str,
    award_to: str,
    method: str,
    actor: User,
    decided_by: User | None,
    rationale: str,
    counts: dict[str, int],
    now: datetime,
) -> Ruling:
    """Record the ruling and apply it through the ownership writer (the ledger events name
    the ruling as their cause; `actor` is the member whose vote or decision made it)."""
    plan = _plan(dispute, outcome, award_to)
    effects: list[str] = []
    for record, to_owner in plan.moves:
        if record.owner_id != (to_owner.pk if to_owner else None):
            effects.append(
                _("%(customer)s: %(from)s → %(to)s")
                % {
                    "customer": record.display_name,
                    "from": record.owner or _("the pool"),
                    "to": to_owner or _("the pool"),
                }
            )
    if plan.merged is not None and plan.survivor is not None:
        effects.insert(
            0,
            _("%(merged)s merged into %(survivor)s")
            % {"merged": plan.merged.display_name, "survivor": plan.survivor.display_name},
        )
    if not effects:
        effects.append(_("No owner changes."))
    ruling = Ruling.objects.create(
        dispute=dispute,
        round=dispute.round,
        outcome=outcome,
        award_to=award_to,
        method=method,
        decided_by=decided_by,
        rationale=rationale,
        tally=counts,
        survivor=plan.survivor,
        merged=plan.merged,
        effects=effects,
        created_at=now,
    )
    reason = _("Committee ruling on dispute #%(id)s: %(outcome)s") % {
        "id": dispute.pk,
        "outcome": RulingOutcome(outcome).label,
    }
    if plan.merged is not None and plan.survivor is not None:
        crm_services.customer_merge(
            actor=actor, merged=plan.merged, survivor=plan.survivor, now=now
        )
        ownership.ownership_merge(
            actor=actor, customer=plan.merged, into=plan.survivor, reason=reason, cause=ruling
        )
    for record, to_owner in plan.moves:
        current = Customer.objects.get(pk=record.pk)
        if current.owner_id == (to_owner.pk if to_owner else None):
            continue
        ownership.ownership_rule(
            actor=actor,
            customer=current,
            to_owner=to_owner,
            reason=reason,
            cause=ruling,
        )
    dispute, _changed = dispute_transition(
        dispute_id=dispute.pk,
        to_state=DisputeState.DECIDED,
        actor=actor,
        note=str(RulingOutcome(outcome).label),
        now=now,
    )
    recipients = [p for p in (dispute.claimant, dispute.respondent) if p]
    notify(
        recipients=[*recipients, *_managers_of(recipients)],
        kind="dispute_decided",
        context={"dispute": dispute, "ruling": ruling},
        url=case_url(dispute),
        dedup_key=f"dispute:{dispute.pk}:r{ruling.round}:decided",
    )
    return ruling


def _escalate(dispute: Dispute, *, reason: str) -> bool:
    """Tell the chair once per round and reason (a tie, or the deadline passed)."""
    chair = selectors.chair_for(dispute)
    if chair is None:
        return False
    created = notify(
        recipients=[chair],
        kind="dispute_escalated",
        context={"dispute": dispute, "reason": reason},
        url=admin_url(dispute),
        dedup_key=f"dispute:{dispute.pk}:r{dispute.round}:{reason}",
    )
    return bool(created)


# --- deadlines (the Celery task calls this) ------------------------------------------------


@dataclass
class DeadlineRun:
    reminded: int = 0
    escalated: int = 0
    closed: int = 0


def disputes_check_deadlines(*, now: datetime | None = None) -> DeadlineRun:
    """Reminders before the deadline, escalation of overdue cases to the chair, closing of
    decided cases that can no longer be appealed. Idempotent: every notification carries a
    dedup key, the escalation is claimed with a conditional UPDATE before it is sent, and a
    closed case is not closed again."""
    now = now or timezone.now()
    run = DeadlineRun()
    soon = now + timedelta(hours=selectors.reminder_hours())
    due = Dispute.objects.filter(state__in=PENDING_STATES, deadline__gt=now, deadline__lte=soon)
    for dispute in due.select_related("claimant__team", "respondent__team"):
        voted = set(
            Vote.objects.filter(dispute=dispute, round=dispute.round).values_list(
                "member_id", flat=True
            )
        )
        waiting = [m for m in selectors.eligible_voters(dispute) if m.pk not in voted]
        run.reminded += len(
            notify(
                recipients=waiting,
                kind="dispute_reminder",
                context={"dispute": dispute},
                url=admin_url(dispute),
                dedup_key=f"dispute:{dispute.pk}:r{dispute.round}:reminder",
            )
        )
    overdue = Dispute.objects.filter(
        state__in=PENDING_STATES, deadline__lte=now, escalated_at__isnull=True
    )
    for dispute in overdue.select_related("claimant__team", "respondent__team"):
        with transaction.atomic():
            # Claim the escalation first: two workers never both send it.
            claimed = Dispute.objects.filter(pk=dispute.pk, escalated_at__isnull=True).update(
                escalated_at=now
            )
            if claimed == 1 and _escalate(dispute, reason="overdue"):
                run.escalated += 1
    closable = Dispute.objects.filter(state=DisputeState.DECIDED).filter(
        Q(round=2) | Q(appeal_until__lt=now)
    )
    for pk in closable.values_list("pk", flat=True):
        _dispute, changed = dispute_transition(
            dispute_id=pk,
            to_state=DisputeState.CLOSED,
            actor=None,
            note=_("No appeal is possible any more."),
            now=now,
        )
        run.closed += int(changed)
    return run
