"""Dispute cases before the arbitration committee (仲裁委员会): the case, its statements and
attachments, the committee's votes, the rulings and the append-only state history.

The state changes only through `disputes.services.dispute_transition` (explicit table, row
lock, history row in the same transaction)."""

from __future__ import annotations

from datetime import datetime

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Greatest, Least
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DisputeKind(models.TextChoices):
    FIRST_CONTACT = "first_contact", _("I registered or contacted this customer first")
    SAME_COMPANY = "same_company", _("These two customer records are the same company")
    WRONG_RULE = "wrong_rule", _("The rule applied to me was wrong")


class DisputeState(models.TextChoices):
    FILED = "filed", _("Filed")
    UNDER_REVIEW = "under_review", _("Under review")
    DECIDED = "decided", _("Decided")
    APPEALED = "appealed", _("Appealed")
    CLOSED = "closed", _("Closed")
    WITHDRAWN = "withdrawn", _("Withdrawn")


# A case holds its customer pair (one at a time, see the constraint) until it is closed or
# withdrawn: a decided case can still be appealed, so no second case may start meanwhile.
OPEN_STATES = (
    DisputeState.FILED,
    DisputeState.UNDER_REVIEW,
    DisputeState.DECIDED,
    DisputeState.APPEALED,
)
# Waiting for a ruling: these customers are "under dispute" and must not be recycled.
PENDING_STATES = (DisputeState.FILED, DisputeState.UNDER_REVIEW, DisputeState.APPEALED)

# The one table of allowed moves (django-oscar style); anything else is IllegalTransition.
TRANSITIONS: dict[str, frozenset[str]] = {
    DisputeState.FILED: frozenset({DisputeState.UNDER_REVIEW, DisputeState.WITHDRAWN}),
    DisputeState.UNDER_REVIEW: frozenset({DisputeState.DECIDED, DisputeState.WITHDRAWN}),
    DisputeState.DECIDED: frozenset({DisputeState.APPEALED, DisputeState.CLOSED}),
    DisputeState.APPEALED: frozenset({DisputeState.DECIDED}),
    DisputeState.CLOSED: frozenset(),
    DisputeState.WITHDRAWN: frozenset(),
}


class RulingOutcome(models.TextChoices):
    UPHOLD = "uphold", _("Uphold the current owner")
    AWARD = "award", _("Award to the other party")
    MERGE = "merge", _("Merge the two records and award")
    POOL = "pool", _("Send to the pool")


class AwardTo(models.TextChoices):
    """Who receives the surviving record of a merge."""

    CLAIMANT = "claimant", _("the party who filed")
    RESPONDENT = "respondent", _("the current owner")


class RulingMethod(models.TextChoices):
    MAJORITY = "majority", _("Majority of the committee")
    CHAIR = "chair", _("Decided by the chair")


class CommitteeMembership(models.Model):
    """A seat on the arbitration committee. Voting rights come from the committee role; the
    membership row says who chairs (decides ties and overdue cases)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("member"),
        on_delete=models.CASCADE,
        related_name="committee_membership",
        limit_choices_to={"role": "committee"},
    )
    is_chair = models.BooleanField(_("chair"), default=False)
    since = models.DateField(_("member since"), default=timezone.localdate)

    class Meta:
        verbose_name = _("committee membership")
        verbose_name_plural = _("committee memberships")
        ordering = ["-is_chair", "id"]

    def __str__(self) -> str:
        return str(self.user)


class Dispute(models.Model):
    kind = models.CharField(_("kind"), max_length=16, choices=DisputeKind.choices)
    state = models.CharField(
        _("state"), max_length=16, choices=DisputeState.choices, default=DisputeState.FILED
    )
    customer = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="disputes",
    )
    # The second record of a "same company" case.
    other_customer = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("other record"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="disputes_as_other",
    )
    claimant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("filed by"),
        on_delete=models.PROTECT,
        related_name="disputes_filed",
    )
    # The owner of the contested record when the case was filed (None: the pool).
    respondent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("other party"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="disputes_answered",
    )
    # The parties' teams when filed: the managers who may read the case and the queue filter.
    claimant_team = models.ForeignKey(
        "crm.Team",
        verbose_name=_("team of the party who filed"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    respondent_team = models.ForeignKey(
        "crm.Team",
        verbose_name=_("team of the other party"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # "The rule applied to me was wrong": the ledger event contested (a recycle, a transfer).
    rule_event = models.ForeignKey(
        "ownership.OwnershipEvent",
        verbose_name=_("contested ledger event"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    filed_at = models.DateTimeField(_("filed at"), db_index=True)
    # Statements are accepted and the committee rules until then; reset by an appeal.
    deadline = models.DateTimeField(_("deadline"))
    # 1: the first hearing; 2: the appeal (decided by members who did not vote in round 1).
    round = models.PositiveSmallIntegerField(_("round"), default=1)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    appeal_until = models.DateTimeField(_("appeal possible until"), null=True, blank=True)
    appealed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("appealed by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # Set by the deadline task when it escalated the current round to the chair (once).
    escalated_at = models.DateTimeField(_("escalated to the chair at"), null=True, blank=True)
    # The evidence dossier, assembled by disputes.dossier; never typed by hand.
    dossier = models.JSONField(_("dossier"), default=dict, blank=True)
    dossier_built_at = models.DateTimeField(_("dossier assembled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
        ordering = ["-filed_at", "-id"]
        constraints = [
            # One open case per customer pair, also when two are filed at the same moment.
            # LEAST/GREATEST make (a, b) and (b, a) one pair; a single-record case has
            # other_customer NULL, which both functions ignore: the pair (a, a).
            models.UniqueConstraint(
                Least(F("customer"), F("other_customer")),
                Greatest(F("customer"), F("other_customer")),
                condition=Q(state__in=["filed", "under_review", "decided", "appealed"]),
                name="dispute_one_open_per_pair",
                violation_error_message=_("There is already an open dispute about this customer."),
            ),
            models.CheckConstraint(
                condition=~Q(other_customer=F("customer")), name="dispute_two_different_records"
            ),
            models.CheckConstraint(
                condition=Q(
                    state__in=[
                        "filed",
                        "under_review",
                        "decided",
                        "appealed",
                        "closed",
                        "withdrawn",
                    ]
                ),
                name="dispute_state_valid",
            ),
            models.CheckConstraint(condition=Q(round__in=[1, 2]), name="dispute_round_valid"),
        ]
        indexes = [
            # The deadline task and the queue's overdue filter: state IN (...) AND deadline <= %s.
            models.Index(
                fields=["deadline"],
                condition=Q(state__in=["filed", "under_review", "appealed"]),
                name="dispute_pending_deadline",
            ),
            # customer_ids_under_dispute(): EXISTS (... other_customer_id = customer.id).
            models.Index(
                fields=["other_customer"],
                condition=Q(state__in=["filed", "under_review", "appealed"]),
                name="dispute_pending_other",
            ),
            models.Index(
                fields=["customer"],
                condition=Q(state__in=["filed", "under_review", "appealed"]),
                name="dispute_pending_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer}"

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def has_two_records(self) -> bool:
        return self.other_customer_id is not None

    def is_overdue(self, now: datetime | None = None) -> bool:
        return self.is_pending and self.deadline < (now or timezone.now())


class DisputeHistory(models.Model):
    """One state change of a case, written in the same transaction. Append-only."""

    dispute = models.ForeignKey(
        Dispute, verbose_name=_("dispute"), on_delete=models.PROTECT, related_name="history"
    )
    from_state = models.CharField(
        _("from state"), max_length=16, choices=DisputeState.choices, blank=True
    )
    to_state = models.CharField(_("to state"), max_length=16, choices=DisputeState.choices)
    # None: the system (the deadline task).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    note = models.TextField(_("note"), blank=True)
    at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("dispute history")
        verbose_name_plural = _("dispute history")
        ordering = ["dispute_id", "at", "id"]
        triggers = [
            pgtrigger.Protect(
                name="dispute_history_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
        ]

    def __str__(self) -> str:
        before = self.get_from_state_display() if self.from_state else "—"
        return f"#{self.dispute_id}: {before} → {self.get_to_state_display()}"


class DisputeStatement(models.Model):
    """What a party says: the claim when filing, answers and appeals later. Append-only."""

    dispute = models.ForeignKey(
        Dispute, verbose_name=_("dispute"), on_delete=models.PROTECT, related_name="statements"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+"
    )
    round = models.PositiveSmallIntegerField(_("round"), default=1)
    text = models.TextField(_("statement"))
    created_at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("statement")
        verbose_name_plural = _("statements")
        ordering = ["dispute_id", "created_at", "id"]
        triggers = [
            pgtrigger.Protect(
                name="dispute_statement_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dispute_id} · {self.author}"


def attachment_path(instance: DisputeAttachment, filename: str) -> str:
    # The stored name never comes from the user: the service passes "<uuid>.<ext>" with the
    # extension of the type detected from the content.
    return f"disputes/{instance.dispute_id}/{filename}"


class DisputeAttachment(models.Model):
    dispute = models.ForeignKey(
        Dispute, verbose_name=_("dispute"), on_delete=models.PROTECT, related_name="attachments"
    )
    statement = models.ForeignKey(
        DisputeStatement,
        verbose_name=_("statement"),
        on_delete=models.PROTECT,
        related_name="attachments",
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+"
    )
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=200)
    original_name = models.CharField(_("file name"), max_length=255)
    # Detected from the first bytes, not from the name or the browser's claim.
    content_type = models.CharField(_("type"), max_length=64)
    size = models.PositiveIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    created_at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["dispute_id", "created_at", "id"]

    def __str__(self) -> str:
        return self.original_name


class Vote(models.Model):
    """One committee member's vote in one round, with the written rationale. Kept forever."""

    dispute = models.ForeignKey(
        Dispute, verbose_name=_("dispute"), on_delete=models.PROTECT, related_name="votes"
    )
    round = models.PositiveSmallIntegerField(_("round"))
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("member"),
        on_delete=models.PROTECT,
        related_name="dispute_votes",
    )
    outcome = models.CharField(_("vote"), max_length=16, choices=RulingOutcome.choices)
    award_to = models.CharField(_("award to"), max_length=16, choices=AwardTo.choices, blank=True)
    rationale = models.TextField(_("rationale"))
    created_at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("vote")
        verbose_name_plural = _("votes")
        ordering = ["dispute_id", "round", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dispute", "round", "member"],
                name="vote_once_per_round",
                violation_error_message=_("You have already voted on this case."),
            ),
            models.CheckConstraint(
                condition=Q(outcome="merge", award_to__in=["claimant", "respondent"])
                | (~Q(outcome="merge") & Q(award_to="")),
                name="vote_merge_names_the_party",
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="vote_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dispute_id}/{self.round} {self.member}: {self.outcome}"

    @property
    def choice_key(self) -> str:
        return f"{self.outcome}:{self.award_to}" if self.award_to else self.outcome


class Ruling(models.Model):
    """The binding result of one round, and what applying it did (ledger events, merge)."""

    dispute = models.ForeignKey(
        Dispute, verbose_name=_("dispute"), on_delete=models.PROTECT, related_name="rulings"
    )
    round = models.PositiveSmallIntegerField(_("round"))
    outcome = models.CharField(_("ruling"), max_length=16, choices=RulingOutcome.choices)
    award_to = models.CharField(_("award to"), max_length=16, choices=AwardTo.choices, blank=True)
    method = models.CharField(_("decided by"), max_length=16, choices=RulingMethod.choices)
    # The chair for a chair's decision; None for a majority.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("chair"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    rationale = models.TextField(_("rationale"), blank=True)
    # {"uphold": 2, "merge:claimant": 1, ...} when decided.
    tally = models.JSONField(_("votes"), default=dict, blank=True)
    # A merge: the record that survives and the one merged into it.
    survivor = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("surviving record"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    merged = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("merged record"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # What applying it changes, planned before the ledger is written (the ledger events
    # themselves point back here as their cause).
    effects = models.JSONField(_("effects"), default=list, blank=True)
    created_at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("ruling")
        verbose_name_plural = _("rulings")
        ordering = ["dispute_id", "round"]
        constraints = [
            models.UniqueConstraint(fields=["dispute", "round"], name="ruling_once_per_round"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="ruling_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dispute_id}/{self.round}: {self.get_outcome_display()}"
