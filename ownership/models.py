"""The ownership ledger (append-only, hash-chained) and the pool policies."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EventKind(models.TextChoices):
    REGISTERED = "registered", _("Registered")
    CLAIMED = "claimed", _("Claimed from the pool")
    ALLOCATED = "allocated", _("Allocated")
    TRANSFERRED = "transferred", _("Transferred")
    RELEASED = "released", _("Released to the pool")
    RECYCLED = "recycled", _("Recycled to the pool")
    RULED = "ruled", _("Ruled by the committee")
    HANDED_OVER = "handed_over", _("Handed over")
    MERGED = "merged", _("Merged")


class OwnershipEvent(models.Model):
    """One change of a customer's owner. Rows are never updated or deleted (the database
    refuses it); each row's hash covers its content and the previous row's hash for the
    same customer, so a rewritten history cannot go unnoticed (`manage.py verify_ledger`)."""

    customer = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="ownership_events",
    )
    sequence = models.PositiveIntegerField(_("sequence"))
    from_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("from owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    to_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("to owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    kind = models.CharField(_("kind"), max_length=16, choices=EventKind.choices)
    reason = models.TextField(_("reason"), blank=True)
    # None means the system (the periodic review, an import without a user).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("acting user"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # What caused it, generically (a policy, request, ruling, handover task, import), so
    # that this app never imports the workflow apps.
    cause_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cause_id = models.PositiveBigIntegerField(null=True, blank=True)
    cause = GenericForeignKey("cause_type", "cause_id")
    cause_label = models.CharField(_("cause"), max_length=200, blank=True)
    occurred_at = models.DateTimeField(_("time"))
    prev_hash = models.CharField(_("previous hash"), max_length=64, blank=True)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("ownership event")
        verbose_name_plural = _("ownership ledger")
        ordering = ["customer_id", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "sequence"], name="ownership_event_sequence_once"
            ),
            models.CheckConstraint(
                condition=~Q(from_owner=models.F("to_owner"))
                | Q(from_owner__isnull=True, to_owner__isnull=True)
                | Q(kind="merged"),
                name="ownership_event_changes_owner",
            ),
        ]
        indexes = [
            # Cooldown: "was this customer recycled from this rep recently?"
            models.Index(
                fields=["customer", "from_owner", "kind", "-occurred_at"],
                name="ownership_event_cooldown",
            ),
            # Daily claim cap: "how many claims did this rep make today?"
            models.Index(
                fields=["to_owner", "kind", "-occurred_at"], name="ownership_event_claims"
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="ledger_no_update_or_delete",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
            # pgtrigger's Protect does not cover TRUNCATE; a statement trigger does. Only a
            # database explicitly configured for it (the throw-away test database, which
            # transactional tests empty with TRUNCATE) may truncate.
            pgtrigger.Trigger(
                name="ledger_no_truncate",
                operation=pgtrigger.Truncate,
                level=pgtrigger.Statement,
                when=pgtrigger.Before,
                func=(
                    "IF coalesce(current_setting('guishu.test_database', true), '') = 'on' "
                    "THEN RETURN NULL; END IF; "
                    "RAISE EXCEPTION 'ownership ledger is append-only: TRUNCATE refused';"
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}#{self.sequence} {self.kind}"


class PoolPolicy(models.Model):
    """The ownership clock's parameters: one global default, optional overrides per team."""

    team = models.OneToOneField(
        "crm.Team",
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="pool_policy",
        help_text=_("Empty: the global default for every team without its own policy."),
    )
    # A territory's own clock parameters override its customers' owners' team and the
    # global default (caps stay with the rep: they come from the team or the default).
    territory = models.OneToOneField(
        "ownership.Territory",
        verbose_name=_("territory"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="pool_policy",
        help_text=_("Set for a territory's own clock; leave the team empty then."),
    )
    max_owned = models.PositiveIntegerField(
        _("holding cap"), default=50, validators=[MinValueValidator(1)]
    )
    count_won_in_cap = models.BooleanField(_("won customers count towards the cap"), default=False)
    max_claims_per_day = models.PositiveIntegerField(
        _("pool claims per day"), default=5, validators=[MinValueValidator(1)]
    )
    days_without_follow_up = models.PositiveIntegerField(
        _("days without follow-up before recycling"), default=30, validators=[MinValueValidator(1)]
    )
    days_to_reach_50 = models.PositiveIntegerField(
        _("days to reach 50% before recycling"), default=60, validators=[MinValueValidator(1)]
    )
    days_to_reach_100 = models.PositiveIntegerField(
        _("days to reach 100% before recycling"), default=180, validators=[MinValueValidator(1)]
    )
    won_exempt = models.BooleanField(_("won customers are never recycled"), default=True)
    cooldown_days = models.PositiveIntegerField(_("former-owner cooldown (days)"), default=30)
    warning_days = models.PositiveIntegerField(_("warn owners this many days ahead"), default=7)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("pool policy")
        verbose_name_plural = _("pool policies")
        constraints = [
            # Exactly one global default (team IS NULL).
            models.UniqueConstraint(
                fields=["team"],
                condition=Q(team__isnull=True, territory__isnull=True),
                name="pool_policy_one_global",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(team__isnull=True) | Q(territory__isnull=True),
                name="pool_policy_team_or_territory",
            ),
            models.CheckConstraint(
                condition=Q(warning_days__lt=models.F("days_without_follow_up")),
                name="pool_policy_warning_shorter_than_period",
            ),
            models.CheckConstraint(
                condition=Q(days_to_reach_50__lte=models.F("days_to_reach_100")),
                name="pool_policy_50_before_100",
            ),
        ]

    def __str__(self) -> str:
        if self.territory_id:
            return str(_("Territory %(name)s") % {"name": self.territory})
        return str(self.team) if self.team_id else str(_("Global default"))


# --- The periodic ownership review (ownership.review) --------------------------------------


class ReviewStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    # A run that was still "running" when the next one got the lock: its worker died.
    INTERRUPTED = "interrupted", _("Interrupted")


class ReviewRun(models.Model):
    """One run of the ownership review (nightly, by command or from the review page).

    Real runs recycle, warn and list anomalies; dry runs recorded from the page only count
    (the command's dry run records nothing at all). `counts` is updated in the same
    transaction as each batch, so after a crash it says exactly what was applied."""

    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    as_of = models.DateTimeField(_("clocks evaluated at"))
    dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(
        _("status"), max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.RUNNING
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("started by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    # Dry runs: a few customers per action, as {"recycled": [{"customer": ..., ...}], ...}.
    examples = models.JSONField(_("examples"), default=dict, blank=True)
    errors = models.JSONField(_("errors"), default=list, blank=True)
    # Set once the owners of this run's recycled customers have been told (one message per
    # owner per run, also for a run that crashed after some batches).
    owners_notified = models.BooleanField(_("owners notified"), default=False)

    class Meta:
        verbose_name = _("ownership review run")
        verbose_name_plural = _("ownership review runs")
        ordering = ["-started_at", "-id"]
        indexes = [
            # The runs page: ORDER BY started_at DESC.
            models.Index(fields=["-started_at"], name="review_run_started"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {timezone.localtime(self.started_at):%Y-%m-%d %H:%M}"

    def count(self, action: str) -> int:
        return int(self.counts.get(action, 0))


class ReviewAction(models.TextChoices):
    RECYCLED = "recycled", _("Recycled to the pool")
    WARNED = "warned", _("Owner warned")
    INACTIVE_OWNER = "inactive_owner", _("Owned by an inactive user")
    OVER_CAP = "over_cap", _("Rep over the holding cap")
    POSSIBLE_DUPLICATE = "possible_duplicate", _("Unresolved possible duplicate")
    DISPUTE_OVERDUE = "dispute_overdue", _("Dispute past its deadline")


class ReviewOutcome(models.Model):
    """What one review run did to (or found about) one customer or rep. Managers read their
    teams' rows: which customers they lost, which owners were warned, what needs a look."""

    run = models.ForeignKey(
        ReviewRun, verbose_name=_("review run"), on_delete=models.CASCADE, related_name="outcomes"
    )
    action = models.CharField(_("action"), max_length=24, choices=ReviewAction.choices)
    customer = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    # The owner at the time of the run (for an over-cap anomaly: the rep).
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The rep's team at the time of the run: what a manager's scope is matched against.
    team = models.ForeignKey(
        "crm.Team",
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    rule = models.CharField(_("rule"), max_length=32, blank=True)
    returns_at = models.DateTimeField(_("protection ends"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    event = models.ForeignKey(
        OwnershipEvent,
        verbose_name=_("ledger event"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("ownership review outcome")
        verbose_name_plural = _("ownership review outcomes")
        ordering = ["run_id", "id"]
        constraints = [
            # A run recycles or warns a customer at most once.
            models.UniqueConstraint(
                fields=["run", "action", "customer"],
                condition=Q(action__in=["recycled", "warned"]),
                name="review_outcome_once_per_run",
            ),
        ]
        indexes = [
            # A run's page: WHERE run_id = %s AND action = %s.
            models.Index(fields=["run", "action"], name="review_outcome_run_action"),
            # "What did my teams lose": WHERE team_id IN (...) AND action = %s ORDER BY run DESC.
            models.Index(fields=["team", "action", "-run"], name="review_outcome_team"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.action} {self.customer_id or self.rep_id}"


# --- Territories and ownership rules (ownership.territories) -------------------------------


class RuleSetStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    # Not "Active": that msgid is an employee's state (在职) in the catalogue.
    ACTIVE = "active", _("In force")
    RETIRED = "retired", _("Retired")


class RuleSet(models.Model):
    """One version of the territory model. Exactly one is active at a time; drafts are
    edited and simulated, then activated (which retires the previous one)."""

    name = models.CharField(_("name"), max_length=100)
    status = models.CharField(
        _("status"), max_length=8, choices=RuleSetStatus.choices, default=RuleSetStatus.DRAFT
    )
    # Customers no territory matches: this team's pool, or the national pool when empty.
    default_team = models.ForeignKey(
        "crm.Team",
        verbose_name=_("default team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Customers that no territory matches. Empty: the national pool."),
    )
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("territory rule set")
        verbose_name_plural = _("territory rule sets")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="active"),
                name="rule_set_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"

    @property
    def editable(self) -> bool:
        return self.status == RuleSetStatus.DRAFT


class RuleSetActivation(models.Model):
    """The record of one activation: who, when, which set it replaced, what it recomputed."""

    rule_set = models.ForeignKey(
        RuleSet, verbose_name=_("rule set"), on_delete=models.PROTECT, related_name="activations"
    )
    previous = models.ForeignKey(
        RuleSet,
        verbose_name=_("replaced rule set"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("activated by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    activated_at = models.DateTimeField(_("activated at"))
    customers_resolved = models.PositiveIntegerField(_("customers resolved"), default=0)
    customers_changed = models.PositiveIntegerField(
        _("customers whose territory changed"), default=0
    )

    class Meta:
        verbose_name = _("rule set activation")
        verbose_name_plural = _("rule set activations")
        ordering = ["-activated_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule_set} @ {timezone.localtime(self.activated_at):%Y-%m-%d %H:%M}"


class OutOfTerritoryPolicy(models.TextChoices):
    INHERIT = "", _("As the parent territory (allow at the top)")
    ALLOW = "allow", _("Allow: the registering rep owns it")
    APPROVAL = "approval", _("Require approval by a manager of the responsible team")
    ROUTE = "route", _("Route to the responsible team's pool")


class Territory(models.Model):
    """A node of the territory tree with its criteria. Empty criteria are inherited from the
    parent; a child may only narrow them. Lower priority numbers are decided first."""

    rule_set = models.ForeignKey(
        RuleSet, verbose_name=_("rule set"), on_delete=models.CASCADE, related_name="territories"
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent territory"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="children",
    )
    name = models.CharField(_("name"), max_length=100)
    priority = models.PositiveIntegerField(
        _("priority"),
        default=100,
        help_text=_("Lower numbers win when territories in different branches both match."),
    )
    # GB/T 2260 codes in their short form (11, 1101, 110108): a code matches everything
    # under it.
    division_codes = ArrayField(
        models.CharField(max_length=6),
        verbose_name=_("administrative divisions"),
        default=list,
        blank=True,
    )
    industries = models.ManyToManyField(
        "crm.Industry", verbose_name=_("industries"), blank=True, related_name="+"
    )
    size_bands = ArrayField(
        models.CharField(max_length=16), verbose_name=_("sizes"), default=list, blank=True
    )
    value_tiers = ArrayField(
        models.CharField(max_length=1), verbose_name=_("value tiers"), default=list, blank=True
    )
    teams = models.ManyToManyField(
        "crm.Team", verbose_name=_("responsible teams"), blank=True, related_name="territories"
    )
    out_of_territory = models.CharField(
        _("registration by other teams"),
        max_length=8,
        choices=OutOfTerritoryPolicy.choices,
        default=OutOfTerritoryPolicy.INHERIT,
        blank=True,
    )

    class Meta:
        verbose_name = _("territory")
        verbose_name_plural = _("territories")
        ordering = ["rule_set_id", "priority", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule_set", "parent", "name"],
                name="territory_name_once_per_parent",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")), name="territory_not_its_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CustomerTerritory(models.Model):
    """Which territory a customer lies in under the active rule set (None: no territory
    matched, the rule set's default applies). Kept beside the customer row so that a
    rule-set activation rewrites this narrow table, not the wide, heavily indexed customer
    table."""

    # No database foreign key to the customer, on purpose: an activation writes a row per
    # customer, and each key check would lock its customer row (FOR KEY SHARE writes the
    # tuple), touching the very table this one exists to spare. Customers are never deleted
    # by raw SQL; a deletion through the ORM still cascades here.
    customer = models.OneToOneField(
        "crm.Customer",
        verbose_name=_("customer"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="territory_record",
        db_constraint=False,
    )
    rule_set = models.ForeignKey(
        RuleSet, verbose_name=_("rule set"), on_delete=models.PROTECT, related_name="+"
    )
    territory = models.ForeignKey(
        Territory,
        verbose_name=_("territory"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customer_records",
    )
    resolved_at = models.DateTimeField(_("resolved at"))
    # Kept with its owner outside the owner's team on purpose: realignment leaves it alone
    # until the exception is cleared.
    realignment_exception = models.BooleanField(_("realignment exception"), default=False)
    exception_reason = models.CharField(_("exception reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("customer territory")
        verbose_name_plural = _("customer territories")
        indexes = [models.Index(fields=["territory"], name="customer_territory_territory")]

    def __str__(self) -> str:
        return f"{self.customer_id} → {self.territory_id}"


class Realignment(models.Model):
    """An applied realignment: what the administrator chose per group, and what moved."""

    rule_set = models.ForeignKey(
        RuleSet, verbose_name=_("rule set"), on_delete=models.PROTECT, related_name="realignments"
    )
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("applied by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    applied_at = models.DateTimeField(_("applied at"))
    # [{"owner_team": id, "territory": id, "choice": "keep"|"pool"|"allocate", "rep": id,
    #   "customers": [ids]}]
    decisions = models.JSONField(_("decisions"), default=list)
    counts = models.JSONField(_("counts"), default=dict)

    class Meta:
        verbose_name = _("realignment")
        verbose_name_plural = _("realignments")
        ordering = ["-applied_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule_set} @ {timezone.localtime(self.applied_at):%Y-%m-%d %H:%M}"
