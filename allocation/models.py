"""Registrations (报备), reassignment requests (转移申请) and allocations (分配) from the pool."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models import Customer


class RegistrationOutcome(models.TextChoices):
    REGISTERED = "registered", _("Registered")
    COLLISION = "collision", _("Collision: owned by someone else")
    IN_POOL = "in_pool", _("Already in the pool")
    OWN = "own", _("Already yours")
    CAP_REACHED = "cap_reached", _("Holding cap reached")
    # Outside the rep's team's territory (ownership.territories):
    PENDING = "pending", _("Awaiting approval by the responsible team")
    REJECTED = "rejected", _("Rejected: sent to the responsible team's pool")
    ROUTED = "routed", _("Routed to the responsible team's pool")
    # Someone else's registration of the same company awaits approval.
    AWAITING = "awaiting", _("Collision: another registration awaits approval")


# The only changes of a registration's outcome after it was recorded: a pending one is
# approved (registered) or rejected. Every other outcome is final when written.
REGISTRATION_TRANSITIONS: dict[str, frozenset[str]] = {
    RegistrationOutcome.PENDING: frozenset(
        {RegistrationOutcome.REGISTERED, RegistrationOutcome.REJECTED}
    ),
}


class Registration(models.Model):
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rep"),
        on_delete=models.PROTECT,
        related_name="registrations",
    )
    # The precedence time: when the rep submitted, also if approval comes later.
    submitted_at = models.DateTimeField(_("submitted at"), db_index=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=RegistrationOutcome.choices)
    customer = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="registrations",
    )
    # What the rep typed, as typed: the evidence a dispute reads.
    entered_name = models.CharField(_("company name"), max_length=200)
    entered_credit_code = models.CharField(_("credit code"), max_length=32, blank=True)
    entered_phone = models.CharField(_("phone"), max_length=32, blank=True)
    entered_address = models.CharField(_("address"), max_length=255, blank=True)
    first_contact_name = models.CharField(_("first contact"), max_length=100, blank=True)
    first_contact_phone = models.CharField(_("first contact phone"), max_length=32, blank=True)
    evidence = models.TextField(_("how I found or first contacted them"), blank=True)
    # Soft matches shown to the rep and confirmed as "a different company".
    soft_matches_shown = models.JSONField(_("similar customers shown"), default=list, blank=True)
    confirmed_different = models.BooleanField(_("confirmed a different company"), default=False)
    # Out of territory: the territory that decided the outcome, as it was labelled then (the
    # label survives a later rule set), and the teams responsible for it.
    territory = models.ForeignKey(
        "ownership.Territory",
        verbose_name=_("territory"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    territory_label = models.CharField(_("territory"), max_length=300, blank=True)
    responsible_teams = models.ManyToManyField(
        "crm.Team", verbose_name=_("responsible teams"), blank=True, related_name="+"
    )
    # The ledger event that settled a registration the territory held back: its routing to
    # a pool, or the manager's approval or rejection. That append-only, hash-chained event
    # (actor, time, reason, cause = this registration) is the decision's history row.
    ledger_event = models.ForeignKey(
        "ownership.OwnershipEvent",
        verbose_name=_("ledger event"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("registration")
        verbose_name_plural = _("registrations")
        ordering = ["-submitted_at"]
        indexes = [
            models.Index(fields=["customer", "submitted_at"], name="registration_customer"),
            # The approval queue: WHERE outcome = 'pending' ORDER BY submitted_at.
            models.Index(
                fields=["submitted_at"],
                condition=Q(outcome="pending"),
                name="registration_pending_queue",
            ),
        ]
        constraints = [
            # One pending registration per customer: it holds the customer out of the pool
            # (also the index behind the hold's lookup by customer).
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(outcome="pending"),
                name="registration_one_pending_per_customer",
                violation_error_message=_(
                    "A registration of this customer already awaits approval."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(outcome__in=["pending", "routed", "rejected", "awaiting"])
                | Q(customer__isnull=False),
                name="registration_held_has_customer",
            ),
            # Nothing has settled a pending registration yet. (The converse — routed or
            # rejected ones point to their ledger event — is the transition function's job:
            # the outcome must change before the writer runs, to lift the hold.)
            models.CheckConstraint(
                condition=~Q(outcome="pending") | Q(ledger_event__isnull=True),
                name="registration_pending_has_no_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entered_name} ({self.get_outcome_display()})"

    @property
    def is_pending(self) -> bool:
        return self.outcome == RegistrationOutcome.PENDING


# --- Reassignment requests (转移申请) ------------------------------------------------------


class RequestKind(models.TextChoices):
    OFFER = "offer", _("Offered to a colleague")
    ASK = "ask", _("Asked for by a rep")
    MOVE = "move", _("Moved by a manager")


class RequestState(models.TextChoices):
    PENDING = "pending", _("Pending approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    EXPIRED = "expired", _("Expired")
    APPLIED = "applied", _("Applied")


# States in which a request still holds its customer (one at a time, see the constraint).
OPEN_STATES = (RequestState.PENDING, RequestState.APPROVED)


class ReassignmentRequest(models.Model):
    """A request to change a customer's owner outside the clock's own rules.

    The state changes only through `allocation.services.request_transition` (explicit
    table, row lock, history row in the same transaction). Approvals are recorded per side:
    the manager of the current owner's team (source) and, when the customer changes team,
    the receiving team's manager (target).
    """

    customer = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="reassignment_requests",
    )
    kind = models.CharField(_("kind"), max_length=8, choices=RequestKind.choices)
    state = models.CharField(
        _("state"), max_length=16, choices=RequestState.choices, default=RequestState.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.PROTECT,
        related_name="reassignment_requests_sent",
    )
    # The owner when the request was made: approval refuses if it changed meanwhile.
    from_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("current owner"),
        on_delete=models.PROTECT,
        related_name="reassignment_requests_from",
    )
    to_rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("new owner"),
        on_delete=models.PROTECT,
        related_name="reassignment_requests_to",
    )
    source_team = models.ForeignKey(
        "crm.Team",
        verbose_name=_("current owner's team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    target_team = models.ForeignKey(
        "crm.Team",
        verbose_name=_("receiving team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    needs_target_approval = models.BooleanField(
        _("needs the receiving team's approval"), default=False
    )
    reason = models.TextField(_("reason"))
    evidence = models.TextField(_("evidence"), blank=True)
    source_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved for the current team by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    source_approved_at = models.DateTimeField(
        _("approved for the current team at"), null=True, blank=True
    )
    target_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved for the receiving team by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    target_approved_at = models.DateTimeField(
        _("approved for the receiving team at"), null=True, blank=True
    )
    applied_event = models.ForeignKey(
        "ownership.OwnershipEvent",
        verbose_name=_("ledger event"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), db_index=True)
    expires_at = models.DateTimeField(_("expires at"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reassignment request")
        verbose_name_plural = _("reassignment requests")
        ordering = ["-created_at", "-id"]
        constraints = [
            # Only one open request per customer: the second gets a clear refusal, also
            # when two are sent at the same moment.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(state__in=["pending", "approved"]),
                name="reassignment_one_open_per_customer",
                violation_error_message=_("There is already an open request for this customer."),
            ),
            models.CheckConstraint(
                condition=~Q(from_owner=models.F("to_rep")), name="reassignment_changes_owner"
            ),
            models.CheckConstraint(
                condition=Q(
                    state__in=["pending", "approved", "rejected", "withdrawn", "expired", "applied"]
                ),
                name="reassignment_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state="applied") | Q(applied_event__isnull=False),
                name="reassignment_applied_has_event",
            ),
        ]
        indexes = [
            # requests_expire: state = 'pending' AND expires_at <= now.
            models.Index(
                fields=["expires_at"],
                condition=Q(state="pending"),
                name="reassignment_pending_expiry",
            ),
            # The approval queue: pending requests of the teams a manager manages.
            models.Index(
                fields=["source_team", "created_at"],
                condition=Q(state="pending"),
                name="reassignment_queue_source",
            ),
            models.Index(
                fields=["target_team", "created_at"],
                condition=Q(state="pending"),
                name="reassignment_queue_target",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer} → {self.to_rep}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_cross_team(self) -> bool:
        return self.needs_target_approval

    def missing_sides(self) -> set[str]:
        """Which approvals are still missing: "source" and/or "target"."""
        missing = set()
        if self.source_approved_at is None:
            missing.add("source")
        if self.needs_target_approval and self.target_approved_at is None:
            missing.add("target")
        return missing


class HistoryAction(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    APPROVED_SOURCE = "approved_source", _("Approved for the current owner's team")
    APPROVED_TARGET = "approved_target", _("Approved for the receiving team")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    EXPIRED = "expired", _("Expired")
    APPLIED = "applied", _("Applied: owner changed")
    MOVED = "moved", _("Moved to the surviving record of a merge")


class RequestHistory(models.Model):
    """One step of a request, written in the same transaction as the step. Append-only."""

    request = models.ForeignKey(
        ReassignmentRequest,
        verbose_name=_("request"),
        on_delete=models.PROTECT,
        related_name="history",
    )
    from_state = models.CharField(
        _("from state"), max_length=16, choices=RequestState.choices, blank=True
    )
    to_state = models.CharField(_("to state"), max_length=16, choices=RequestState.choices)
    action = models.CharField(_("action"), max_length=16, choices=HistoryAction.choices)
    # None: the system (expiry).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    comment = models.TextField(_("comment"), blank=True)
    at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("request history")
        verbose_name_plural = _("request history")
        ordering = ["request_id", "at", "id"]
        triggers = [
            pgtrigger.Protect(
                name="request_history_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.from_state or '—'} → {self.to_state}"


# --- Allocation from the pool (分配) -------------------------------------------------------


class AllocationMethod(models.TextChoices):
    MANUAL = "manual", _("One by one")
    BULK = "bulk", _("Bulk, balanced by value tier")
    AUTO = "auto", _("Automatic distribution")


class AllocationBatch(models.Model):
    """One allocation action of a manager (or an administrator's distribution): the cause
    every `allocated` ledger event of that action points to."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        related_name="allocation_batches",
    )
    team = models.ForeignKey(
        "crm.Team", verbose_name=_("team"), on_delete=models.PROTECT, related_name="+"
    )
    method = models.CharField(_("method"), max_length=8, choices=AllocationMethod.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    requested = models.PositiveIntegerField(_("customers chosen"), default=0)
    allocated = models.PositiveIntegerField(_("customers allocated"), default=0)
    left_in_pool = models.PositiveIntegerField(_("left in the pool"), default=0)

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_method_display()} · {self.team} · {self.created_at:%Y-%m-%d %H:%M}"


class PoolCustomer(Customer):
    """The pool as the administrator's "distribute" action sees it (a proxy, no table)."""

    class Meta:
        proxy = True
        verbose_name = _("pool customer")
        verbose_name_plural = _("pool customers")
