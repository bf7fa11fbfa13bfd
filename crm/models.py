"""The people and customer domain: users, teams (customers follow in their own issue)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.models import UserObjectPermissionBase


class Role(models.TextChoices):
    REP = "rep", _("Sales rep")
    MANAGER = "manager", _("Sales manager")
    COMMITTEE = "committee", _("Committee member")
    ADMIN = "admin", _("CRM administrator")


class EmploymentState(models.TextChoices):
    ACTIVE = "active", _("Active")
    DEPARTING = "departing", _("Departing")
    DEPARTED = "departed", _("Departed")


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    manager = models.ForeignKey(
        "crm.User",
        verbose_name=_("manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_teams",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("team")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")), name="team_not_its_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.REP)
    state = models.CharField(
        _("employment state"),
        max_length=16,
        choices=EmploymentState.choices,
        default=EmploymentState.ACTIVE,
    )
    language = models.CharField(
        _("language"), max_length=8, choices=Language.choices, default=Language.ZH_HANS
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("user")
        ordering = ["username"]
        constraints = [
            # A departed user can never sign in again; the reverse is allowed (suspended).
            models.CheckConstraint(
                condition=~Q(state=EmploymentState.DEPARTED) | Q(is_active=False),
                name="departed_user_is_inactive",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def is_rep(self) -> bool:
        return self.role == Role.REP

    @property
    def is_manager(self) -> bool:
        return self.role == Role.MANAGER

    @property
    def is_committee_member(self) -> bool:
        return self.role == Role.COMMITTEE

    @property
    def is_crm_admin(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser

    @property
    def is_departing(self) -> bool:
        return self.state == EmploymentState.DEPARTING


# --- Customers ---------------------------------------------------------------------------


class Industry(models.Model):
    """A configurable industry category (seeded with common Chinese categories)."""

    name = models.CharField(_("name"), max_length=50, unique=True)
    code = models.SlugField(_("code"), max_length=50, unique=True)
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("industry")
        verbose_name_plural = _("industries")
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name


class SizeBand(models.TextChoices):
    MICRO = "micro", _("1–19 employees")
    SMALL = "small", _("20–99 employees")
    MEDIUM = "medium", _("100–499 employees")
    LARGE = "large", _("500–1999 employees")
    ENTERPRISE = "enterprise", _("2000+ employees")


class ValueTier(models.TextChoices):
    A = "A", _("A (key account)")
    B = "B", _("B")
    C = "C", _("C")
    D = "D", _("D")


class Lifecycle(models.TextChoices):
    POTENTIAL = "potential", _("Potential")
    NEW = "new", _("New")
    MATURE = "mature", _("Mature")
    LOST = "lost", _("Lost")


class Source(models.TextChoices):
    COLD_CALL = "cold_call", _("Cold call")
    REFERRAL = "referral", _("Referral")
    EXHIBITION = "exhibition", _("Exhibition")
    WEBSITE = "website", _("Website")
    PARTNER = "partner", _("Partner")
    IMPORT = "import", _("Import")
    OTHER = "other", _("Other")


class FunnelStage(models.IntegerChoices):
    RAW = 0, _("0% raw")
    CONTACTED = 25, _("25% contacted, contact valid")
    OPPORTUNITY = 50, _("50% decision maker found, need identified")
    MATCHED = 75, _("75% need matches our product")
    WON = 100, _("100% won")


class Customer(models.Model):
    display_name = models.CharField(_("display name"), max_length=200)
    legal_name = models.CharField(_("legal name"), max_length=200, blank=True)
    credit_code = models.CharField(_("unified social credit code"), max_length=18, blank=True)
    address = models.CharField(_("address"), max_length=255, blank=True)
    province = models.CharField(_("province"), max_length=32, blank=True)
    city = models.CharField(_("city"), max_length=32, blank=True)
    district = models.CharField(_("district"), max_length=32, blank=True)
    division_code = models.CharField(
        _("administrative division code"), max_length=12, blank=True, db_index=True
    )
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    industry = models.ForeignKey(
        Industry, verbose_name=_("industry"), null=True, blank=True, on_delete=models.PROTECT
    )
    size_band = models.CharField(_("size"), max_length=16, choices=SizeBand.choices, blank=True)
    value_tier = models.CharField(
        _("value tier"), max_length=1, choices=ValueTier.choices, default=ValueTier.C
    )
    lifecycle = models.CharField(
        _("lifecycle"), max_length=16, choices=Lifecycle.choices, default=Lifecycle.POTENTIAL
    )
    source = models.CharField(
        _("source"), max_length=16, choices=Source.choices, default=Source.OTHER
    )
    stage = models.PositiveSmallIntegerField(
        _("funnel stage"), choices=FunnelStage.choices, default=FunnelStage.RAW
    )
    # Written only by ownership.services (one writer of ownership); None = in the public pool.
    owner = models.ForeignKey(
        User,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_customers",
    )
    owned_since = models.DateTimeField(_("owned since"), null=True, blank=True)
    # When the ownership clock (保护期) last started: registration, claim, allocation,
    # transfer, ruling or handover. Written only by ownership.services.
    clock_started_at = models.DateTimeField(_("clock started at"), null=True, blank=True)
    created_by = models.ForeignKey(
        User,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_customers",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_follow_up_at = models.DateTimeField(_("last follow-up"), null=True, blank=True)
    external_ref = models.CharField(_("external reference"), max_length=64, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # A merged record keeps its row and history but leaves the uniqueness scope.
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merged_records",
    )
    needs_duplicate_review = models.BooleanField(_("needs duplicate review"), default=False)

    # Identity keys, maintained only by crm.identity_services from the fields above.
    name_key = models.CharField(_("name key"), max_length=200, blank=True, db_index=True)
    name_region = models.CharField(_("name region code"), max_length=12, blank=True)
    branch = models.CharField(_("branch"), max_length=100, blank=True)
    search_key = models.CharField(_("search key"), max_length=200, blank=True)
    pinyin_key = models.CharField(_("pinyin key"), max_length=400, blank=True)
    email_domain = models.CharField(_("e-mail domain"), max_length=100, blank=True)
    # The parsed name the duplicate check compares (crm.identity.stored); NULL, or made by
    # another version of the parser: parsed again from the display name.
    name_parts = models.JSONField(_("parsed name"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at"]
        permissions = [
            ("view_shared_customer", _("Can view a customer shared by its owner")),
            ("view_case_customer", _("Can view a customer of a dispute case")),
            ("preview_handover_customer", _("Can preview a customer handed over to them")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_code"],
                condition=~Q(credit_code="") & Q(merged_into__isnull=True),
                name="customer_unique_credit_code",
                violation_error_message=_("A customer with this credit code already exists."),
            ),
            models.UniqueConstraint(
                fields=["name_key", "name_region", "branch"],
                condition=~Q(name_key="") & Q(merged_into__isnull=True),
                name="customer_unique_name_key",
                violation_error_message=_("A customer with this name already exists."),
            ),
            models.UniqueConstraint(
                fields=["external_ref"],
                condition=~Q(external_ref=""),
                name="customer_unique_external_ref",
            ),
            models.CheckConstraint(
                condition=Q(stage__in=[0, 25, 50, 75, 100]), name="customer_stage_valid"
            ),
            models.CheckConstraint(
                condition=Q(credit_code="") | Q(credit_code__regex=r"^[0-9A-Z]{18}$"),
                name="customer_credit_code_shape",
            ),
            models.CheckConstraint(
                condition=~Q(merged_into=models.F("id")), name="customer_not_merged_into_itself"
            ),
        ]
        indexes = [
            # The duplicate check's fuzzy candidate query: search_key % %s ORDER BY similarity.
            # The GIN indexes of the check write through (fastupdate off): with a pending list,
            # every check reads the whole list of recent inserts (thousands of rows until
            # autovacuum merges it), which made the look-ups 2-4x slower under registrations.
            GinIndex(
                OpClass(models.F("search_key"), name="gin_trgm_ops"),
                name="customer_search_key_trgm",
                fastupdate=False,
            ),
            # "My customers" and the pool: owner IS NULL / owner = %s, newest first.
            models.Index(fields=["owner", "-created_at"], name="customer_owner_created"),
            # Exact probes (a short trade name, a homophone's pinyin): a trigram index answers
            # equality too, but reads every posting list of the text's trigrams to do it.
            models.Index(fields=["search_key"], name="customer_search_key_eq"),
            models.Index(fields=["pinyin_key"], name="customer_pinyin_key_eq"),
            # One-character typos of short trade names, and English / pinyin names one slip
            # away: crm.identity.lookup_keys computes the probe's side of each.
            GinIndex(
                models.Func(
                    models.F("search_key"),
                    models.F("name_key"),
                    function="crm_typo_masks",
                    output_field=ArrayField(base_field=models.TextField()),
                ),
                condition=Q(merged_into__isnull=True),
                name="customer_typo_masks",
                fastupdate=False,
            ),
            GinIndex(
                models.Func(
                    models.F("pinyin_key"),
                    function="crm_deletion_variants",
                    output_field=ArrayField(base_field=models.TextField()),
                ),
                condition=Q(merged_into__isnull=True),
                name="customer_pinyin_deletions",
                fastupdate=False,
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def in_pool(self) -> bool:
        return self.owner_id is None


class CustomerUserObjectPermission(UserObjectPermissionBase):
    """django-guardian's per-object grants on customers, with a real foreign key (indexable,
    joinable in the visibility selectors). Only the exceptions to ownership live here."""

    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = _("customer access grant")
        verbose_name_plural = _("customer access grants")


class CustomerPhone(models.Model):
    """A customer's normalised phone number. Mobiles are hard identity keys (unique)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="phones")
    number = models.CharField(_("number (E.164)"), max_length=20)
    is_mobile = models.BooleanField(_("mobile"), default=False)
    # Copied from the customer so the partial unique index can leave merged records out.
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("customer phone")
        verbose_name_plural = _("customer phones")
        constraints = [
            models.UniqueConstraint(
                fields=["number"],
                condition=Q(is_mobile=True, active=True),
                name="customer_unique_mobile",
                violation_error_message=_("A customer with this mobile number already exists."),
            ),
            models.UniqueConstraint(fields=["customer", "number"], name="customer_phone_once"),
        ]
        indexes = [models.Index(fields=["number"], name="customer_phone_number")]

    def __str__(self) -> str:
        return self.number


class Contact(models.Model):
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=100)
    title = models.CharField(_("title"), max_length=100, blank=True)
    mobile = models.CharField(_("mobile"), max_length=20, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    wechat = models.CharField(_("WeChat ID"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FollowUpKind(models.TextChoices):
    CALL = "call", _("Call")
    VISIT = "visit", _("Visit")
    MESSAGE = "message", _("Message")
    MEETING = "meeting", _("Meeting")


class FollowUp(models.Model):
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="follow_ups"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=FollowUpKind.choices)
    happened_at = models.DateTimeField(_("when"))
    summary = models.TextField(_("summary"))
    next_step = models.CharField(_("next step"), max_length=255, blank=True)
    stage_before = models.PositiveSmallIntegerField(_("stage before"), choices=FunnelStage.choices)
    stage_after = models.PositiveSmallIntegerField(_("stage after"), choices=FunnelStage.choices)
    stage_reason = models.CharField(_("reason for moving back"), max_length=255, blank=True)
    by = models.ForeignKey(
        User, verbose_name=_("by"), on_delete=models.PROTECT, related_name="follow_ups"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["-happened_at"]
        indexes = [models.Index(fields=["customer", "-happened_at"], name="followup_timeline")]
        constraints = [
            models.CheckConstraint(
                condition=Q(stage_after__gte=models.F("stage_before")) | ~Q(stage_reason=""),
                name="followup_backwards_needs_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.happened_at:%Y-%m-%d}"


class PossibleDuplicate(models.Model):
    """A soft match accepted at entry or import: a person should look at the pair."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="possible_duplicates"
    )
    candidate = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(_("score"))
    reasons = models.JSONField(_("reasons"), default=list)
    confirmed_distinct_by = models.ForeignKey(
        User,
        verbose_name=_("confirmed distinct by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("possible duplicate")
        verbose_name_plural = _("possible duplicates")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "candidate"], name="possible_duplicate_once"
            ),
            models.CheckConstraint(
                condition=~Q(customer=models.F("candidate")), name="possible_duplicate_two_records"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} ~ {self.candidate_id} ({self.score:.2f})"


# --- Bulk import (crm.importer) ----------------------------------------------------------


class ImportStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """One uploaded customer file: first previewed (dry run), then imported on confirmation.

    The same row goes through both runs; the report file always holds the latest run's
    problem rows (JSON lines) and `counts` its figures.
    """

    created_by = models.ForeignKey(
        User, verbose_name=_("created by"), on_delete=models.PROTECT, related_name="import_jobs"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    # The rep the imported customers will belong to; None = the public pool.
    owner = models.ForeignKey(
        User,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    dry_run = models.BooleanField(_("preview only"), default=True)
    status = models.CharField(
        _("status"), max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    report = models.FileField(_("report"), upload_to="imports/reports/", blank=True)
    error = models.TextField(_("error"), blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer import")
        verbose_name_plural = _("customer imports")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The jobs list: created_by = %s ORDER BY created_at DESC.
            models.Index(fields=["created_by", "-created_at"], name="importjob_user_created"),
        ]

    def __str__(self) -> str:
        return self.original_name

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.finished else 0
        return min(100, self.processed_rows * 100 // self.total_rows)


# --- Notifications (shared by every app) -------------------------------------------------


class Notification(models.Model):
    """An in-app message to one user (the bell); e-mailed too unless the sender says not."""

    recipient = models.ForeignKey(
        User, verbose_name=_("recipient"), on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(_("kind"), max_length=64)
    # Makes a notification idempotent: one per (recipient, kind, key), e.g. one clock warning
    # per customer per warning window however often the review runs.
    dedup_key = models.CharField(_("deduplication key"), max_length=200, blank=True)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True)
    url = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("e-mailed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "kind", "dedup_key"],
                condition=~Q(dedup_key=""),
                name="notification_once_per_key",
            )
        ]
        indexes = [
            # The bell: unread count of one user.
            models.Index(
                fields=["recipient"],
                condition=Q(read_at__isnull=True),
                name="notification_unread",
            ),
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox"),
        ]

    def __str__(self) -> str:
        return self.title


# --- Funnel-stage reports (crm.funnel) ---------------------------------------------------


class FunnelSnapshotKind(models.TextChoices):
    WEEKLY = "weekly", _("Weekly")
    ON_DEMAND = "on_demand", _("On demand")


class FunnelSnapshot(models.Model):
    """The funnel of every rep and team at one moment; a series of them draws the trend.

    Written in one transaction with all its rows: a reader sees a whole snapshot or none."""

    kind = models.CharField(_("kind"), max_length=16, choices=FunnelSnapshotKind.choices)
    taken_at = models.DateTimeField(_("taken at"))
    # "Stage changes in the period" count follow-ups with period_start < happened_at <= end.
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(_("period end"))
    requested_by = models.ForeignKey(
        User,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta:
        verbose_name = _("funnel snapshot")
        verbose_name_plural = _("funnel snapshots")
        ordering = ["-taken_at", "-id"]
        constraints = [
            # The weekly task may run twice (retry, two beats): one snapshot per week.
            models.UniqueConstraint(
                fields=["period_end"],
                condition=Q(kind="weekly"),
                name="funnel_snapshot_one_per_week",
            ),
        ]
        indexes = [
            # Latest snapshot and the trend: ORDER BY taken_at DESC LIMIT n.
            models.Index(fields=["-taken_at"], name="funnel_snapshot_taken"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {timezone.localtime(self.taken_at):%Y-%m-%d %H:%M}"


class FunnelStageRow(models.Model):
    """One stage of one rep's funnel (rep set) or one team's total (rep empty) in a snapshot."""

    snapshot = models.ForeignKey(
        FunnelSnapshot, verbose_name=_("snapshot"), on_delete=models.CASCADE, related_name="rows"
    )
    # A team's history goes with the team (teams are deleted only when empty and unused).
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.CASCADE
    )
    rep = models.ForeignKey(
        User,
        verbose_name=_("sales rep"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    stage = models.PositiveSmallIntegerField(_("funnel stage"), choices=FunnelStage.choices)
    # Customers owned at exactly this stage, and at this stage or beyond (the funnel's width).
    count = models.PositiveIntegerField(_("customers at this stage"), default=0)
    reached = models.PositiveIntegerField(_("customers at this stage or beyond"), default=0)
    # Follow-ups that moved a customer into this stage during the snapshot's period.
    entered = models.PositiveIntegerField(_("stage changes into this stage"), default=0)
    # Median days a customer spent in this stage before it moved (stints ended in the last
    # 180 days), and how many stints that median is made of.
    median_days = models.FloatField(_("median days in this stage"), null=True, blank=True)
    stints = models.PositiveIntegerField(_("stints measured"), default=0)

    class Meta:
        verbose_name = _("funnel stage row")
        verbose_name_plural = _("funnel stage rows")
        ordering = ["snapshot_id", "team_id", "rep_id", "stage"]
        constraints = [
            models.UniqueConstraint(
                fields=["snapshot", "team", "rep", "stage"],
                name="funnel_row_once",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(stage__in=[0, 25, 50, 75, 100]), name="funnel_row_stage_valid"
            ),
        ]
        indexes = [
            # A team's page: WHERE snapshot_id = %s AND team_id = %s.
            models.Index(fields=["snapshot", "team"], name="funnel_row_snapshot_team"),
            # Trends: WHERE team_id = %s AND rep_id IS NULL AND snapshot_id IN (...).
            models.Index(fields=["team", "snapshot"], name="funnel_row_team_trend"),
            # A rep's trend and home card: WHERE rep_id = %s AND snapshot_id IN (...).
            models.Index(fields=["rep", "snapshot"], name="funnel_row_rep_trend"),
        ]

    def __str__(self) -> str:
        return f"{self.snapshot_id} {self.team_id}/{self.rep_id} {self.stage}%"
