"""Business writes of the people domain. Keyword-only, typed, atomic, with the acting user."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from pypinyin import lazy_pinyin

from crm import prepared, rows, signals
from crm.duplicates import DuplicateMatch, find_duplicates
from crm.errors import DomainError
from crm.identity.credit import validate_credit_code
from crm.identity.matcher import IdentityKeys, keys_for
from crm.identity.normalize import parse_company_name
from crm.identity.phones import is_mobile, normalize_phone
from crm.identity.regions import parse_address
from crm.identity.stored import PARSER_VERSION, name_parts
from crm.models import (
    Contact,
    Customer,
    CustomerPhone,
    FollowUp,
    FollowUpKind,
    FunnelStage,
    Industry,
    Language,
    Lifecycle,
    Role,
    Source,
    Team,
    User,
    ValueTier,
)
from crm.models import PossibleDuplicate as PossibleDuplicateRecord
from crm.roles import GROUP_NAMES, STAFF_ROLES
from crm.signals import customer_merged


class UserError(DomainError):
    pass


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str,
    role: str = Role.REP,
    team: Team | None = None,
    display_name: str = "",
    email: str = "",
    phone: str = "",
    language: str = Language.ZH_HANS,
) -> User:
    if User.objects.filter(username__iexact=username).exists():
        raise UserError(_("The username %(username)s is already taken.") % {"username": username})
    user = User(
        username=username,
        display_name=display_name,
        email=email,
        phone=phone,
        team=team,
        language=language,
    )
    user.set_password(password)
    user.save()
    user_set_role(actor=actor, user=user, role=role)
    return user


@transaction.atomic
def user_set_role(*, actor: User | None, user: User, role: str) -> User:
    """Give a user exactly one role: the field, the matching group and admin-site access."""
    if role not in Role.values:
        raise UserError(_("Unknown role: %(role)s") % {"role": role})
    user.role = role
    # Superusers keep their staff flag whatever role they are given.
    user.is_staff = role in STAFF_ROLES or user.is_superuser
    user.save(update_fields=["role", "is_staff"])
    role_groups = Group.objects.filter(name__in=GROUP_NAMES.values())
    user.groups.remove(*role_groups)
    group, _created = Group.objects.get_or_create(name=GROUP_NAMES[role])
    user.groups.add(group)
    return user


def user_set_language(*, actor: User, user: User, language: str) -> User:
    if language not in Language.values:
        raise UserError(_("Unsupported language: %(language)s") % {"language": language})
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])
    return user


@transaction.atomic
def team_create(
    *, actor: User | None, name: str, manager: User | None = None, parent: Team | None = None
) -> Team:
    if Team.objects.filter(name=name).exists():
        raise UserError(_("A team named %(name)s already exists.") % {"name": name})
    team = Team.objects.create(name=name, manager=manager, parent=parent)
    if manager is not None and manager.team_id is None:
        manager.team = team
        manager.save(update_fields=["team"])
    return team


def team_check_parent(*, team: Team, parent: Team | None) -> None:
    """Refuse a parent that would make the team tree a cycle."""
    node = parent
    while node is not None:
        if node.pk == team.pk:
            raise UserError(_("The parent team cannot be the team itself or one of its sub-teams."))
        node = node.parent


# --- Customers ---------------------------------------------------------------------------

NAME_MAX_LENGTH = 200


class CustomerError(DomainError):
    pass


class CustomerInvalid(CustomerError):
    """Bad input: `errors` maps a field name to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class DuplicateCustomer(CustomerError):
    """A hard match: the customer already exists (registration must not create it)."""

    def __init__(self, matches: list[DuplicateMatch]) -> None:
        super().__init__(_("This customer already exists."))
        self.matches = matches


class PossibleDuplicate(CustomerError):
    """Soft matches the user has not yet confirmed as different companies."""

    def __init__(self, matches: list[DuplicateMatch]) -> None:
        super().__init__(_("Similar customers exist; confirm that this is a different company."))
        self.matches = matches


def clean_customer_name(raw: str) -> str:
    """Trim and collapse whitespace; refuse empty, over-long and control-character names.

    Markup is kept as text: templates always escape it.
    """
    name = " ".join((raw or "").split())
    if not name:
        raise CustomerInvalid({"display_name": _("Enter the company name.")})
    if len(name) > NAME_MAX_LENGTH:
        raise CustomerInvalid(
            {
                "display_name": _("The name has %(count)d characters; at most %(max)d are allowed.")
                % {"count": len(name), "max": NAME_MAX_LENGTH}
            }
        )
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise CustomerInvalid({"display_name": _("The name contains control characters.")})
    return name


def clean_credit_code(raw: str) -> str:
    if not (raw or "").strip():
        return ""
    try:
        return validate_credit_code(raw)
    except ValueError as error:
        raise CustomerInvalid({"credit_code": str(error)}) from error


def clean_phone(raw: str, field: str = "phone") -> str:
    if not (raw or "").strip():
        return ""
    number = normalize_phone(raw)
    if number is None:
        raise CustomerInvalid(
            {field: _("“%(value)s” is not a valid phone number.") % {"value": raw.strip()}}
        )
    return number


def _apply_identity(customer: Customer, phones: list[str]) -> IdentityKeys:
    """Set the stored identity keys and address divisions from the customer's own fields."""
    keys = keys_for(
        customer.display_name, credit_code=customer.credit_code, phones=phones, email=customer.email
    )
    parsed = keys.name
    customer.name_key = parsed.name_key[:200]
    customer.name_region = parsed.region_code
    customer.branch = parsed.branch[:100]
    customer.search_key = parsed.search_key[:200]
    # The trade name's sound only: industry words would make every name share trigrams.
    customer.pinyin_key = parsed.trade_pinyin[:400]
    customer.email_domain = keys.email_domain
    customer.name_parts = name_parts(parsed)
    if customer.address and not customer.division_code:
        division = parse_address(customer.address)
        customer.province = customer.province or division.province
        customer.city = customer.city or division.city
        customer.district = customer.district or division.district
        customer.division_code = division.code
    return keys


def _save_phones(customer: Customer, numbers: list[str], *, created: bool = False) -> None:
    """Make the customer's stored numbers `numbers`; `created`: it has none yet."""
    existing: set[str] = set()
    if not created:
        CustomerPhone.objects.filter(customer=customer).exclude(number__in=numbers).delete()
        existing = set(customer.phones.values_list("number", flat=True))
    if not numbers:
        return
    CustomerPhone.objects.bulk_create(
        CustomerPhone(
            customer=customer,
            number=number,
            is_mobile=is_mobile(number),
            active=customer.merged_into_id is None,
        )
        for number in dict.fromkeys(numbers)
        if number not in existing
    )


def _lock_identity(keys: IdentityKeys) -> None:
    """Serialise concurrent entries of one company on its identity keys (transaction-scoped).

    The unique constraints already make the second insert fail; the lock makes the second
    transaction wait and then *see* the first, so it gets a collision answer, not an error.
    """
    wanted = {f"phone:{number}" for number in keys.mobiles}
    if keys.name.name_key:
        wanted.add(f"name:{keys.name.name_key}")
    if keys.credit_code:
        wanted.add(f"code:{keys.credit_code}")
    # One global order, so two transactions never wait on each other crosswise.
    lock_keys = sorted(wanted)
    # A coarse blocking key for look-alikes (typos, homophones): two registrations whose
    # trade names start with the same two syllables queue behind each other, so the second
    # one's soft check sees the first.
    trade = keys.name.trade_name
    if trade:
        lock_keys.append("block:" + "".join(lazy_pinyin(trade[:2])))
    if not lock_keys:
        return
    # One statement: the function scan takes the locks row by row, in the array's order.
    with connection.cursor() as cursor:
        prepared.execute(
            cursor,
            "SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) FROM unnest(%s::text[]) key",
            [lock_keys],
        )


@transaction.atomic
def customer_create(
    *,
    actor: User | None,
    display_name: str,
    legal_name: str = "",
    credit_code: str = "",
    address: str = "",
    province: str = "",
    city: str = "",
    phone: str = "",
    email: str = "",
    industry: Industry | None = None,
    size_band: str = "",
    value_tier: str = ValueTier.C,
    lifecycle: str = Lifecycle.POTENTIAL,
    source: str = Source.OTHER,
    external_ref: str = "",
    confirmed_distinct: Iterable[int] = (),
    allow_possible_duplicates: bool = False,
) -> Customer:
    """Create a customer after the duplicate check.

    A hard match raises DuplicateCustomer. Soft matches raise PossibleDuplicate unless every
    one of them is in `confirmed_distinct` (the user said "a different company") or
    `allow_possible_duplicates` (import: created and flagged for review). Confirmations are
    stored as PossibleDuplicate rows, the evidence a later dispute reads.

    The customer starts in the pool: only ownership.services gives it an owner.
    """
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for field_name, cleaner, raw in (
        ("display_name", clean_customer_name, display_name),
        ("credit_code", clean_credit_code, credit_code),
        ("phone", clean_phone, phone),
    ):
        try:
            values[field_name] = cleaner(raw)
        except CustomerInvalid as error:
            errors.update(error.errors)
    if external_ref and Customer.objects.filter(external_ref=external_ref).exists():
        errors["external_ref"] = _("The external reference %(ref)s is already used.") % {
            "ref": external_ref
        }
    if errors:
        raise CustomerInvalid(errors)
    customer = Customer(
        display_name=values["display_name"],
        legal_name=" ".join(legal_name.split())[:NAME_MAX_LENGTH],
        credit_code=values["credit_code"],
        address=address.strip()[:255],
        province=province.strip()[:32],
        city=city.strip()[:32],
        phone=phone.strip()[:32],
        email=email.strip(),
        industry=industry,
        size_band=size_band,
        value_tier=value_tier,
        lifecycle=lifecycle,
        source=source,
        external_ref=external_ref.strip()[:64],
        created_by=actor,
    )
    phones = [values["phone"]] if values["phone"] else []
    keys = _apply_identity(customer, phones)
    _lock_identity(keys)
    matches = find_duplicates(keys)
    hard = [m for m in matches if m.is_hard]
    if hard:
        raise DuplicateCustomer(hard)
    confirmed = set(confirmed_distinct)
    unconfirmed = [m for m in matches if m.customer.pk not in confirmed]
    if unconfirmed and not allow_possible_duplicates:
        raise PossibleDuplicate(unconfirmed)
    customer.needs_duplicate_review = bool(unconfirmed)
    try:
        with transaction.atomic():
            rows.insert(customer)
            _save_phones(customer, phones, created=True)
    except IntegrityError as error:
        # A concurrent entry won between our check and our insert: answer as a collision.
        again = [m for m in find_duplicates(keys) if m.is_hard]
        if again:
            raise DuplicateCustomer(again) from error
        raise
    PossibleDuplicateRecord.objects.bulk_create(
        PossibleDuplicateRecord(
            customer=customer,
            candidate=match.customer,
            score=match.score,
            reasons=match.reasons,
            confirmed_distinct_by=actor if match.customer.pk in confirmed else None,
        )
        for match in matches
    )
    signals.customer_facts_changed.send(sender=Customer, customer=customer, created=True)
    return customer


def customer_name_parts_refresh(*, actor: User | None = None, batch_size: int = 2000) -> int:
    """Store the parsed name again for every customer whose stored parts another version of
    the parser made (after a deploy that changed it): until then each duplicate check parses
    those candidates again. Walks the table in id order, one transaction per batch; a name
    changed meanwhile is left to the change that stored it. Idempotent: returns how many
    customers it re-stamped, 0 when all are current. `actor` is None for the periodic task.
    """
    refreshed = 0
    last_id = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, display_name FROM crm_customer WHERE id > %s"
                " AND name_parts->>'version' IS DISTINCT FROM %s ORDER BY id LIMIT %s",
                [last_id, PARSER_VERSION, batch_size],
            )
            stale = cursor.fetchall()
        if not stale:
            return refreshed
        last_id = stale[-1][0]
        ids = [pk for pk, _name in stale]
        names = [name for _pk, name in stale]
        parts = [json.dumps(name_parts(parse_company_name(name))) for name in names]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE crm_customer AS c SET name_parts = v.parts::jsonb"
                " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(id, name, parts)"
                " WHERE c.id = v.id AND c.display_name = v.name",
                [ids, names, parts],
            )
            refreshed += cursor.rowcount


@transaction.atomic
def customer_update(*, actor: User, customer: Customer, **changes: Any) -> Customer:
    """Edit a customer's descriptive fields; identity keys follow, and must stay unique."""
    allowed = {
        "display_name",
        "legal_name",
        "credit_code",
        "address",
        "province",
        "city",
        "district",
        "division_code",
        "phone",
        "email",
        "industry",
        "size_band",
        "value_tier",
        "lifecycle",
        "source",
        "notes",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise CustomerError(
            _("These fields cannot be changed here: %(fields)s")
            % {"fields": ", ".join(sorted(unknown))}
        )
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    errors: dict[str, str] = {}
    if "display_name" in changes:
        try:
            changes["display_name"] = clean_customer_name(changes["display_name"])
        except CustomerInvalid as error:
            errors.update(error.errors)
    if "credit_code" in changes:
        try:
            changes["credit_code"] = clean_credit_code(changes["credit_code"])
        except CustomerInvalid as error:
            errors.update(error.errors)
    phone_number = None
    if "phone" in changes:
        try:
            phone_number = clean_phone(changes["phone"])
        except CustomerInvalid as error:
            errors.update(error.errors)
    if errors:
        raise CustomerInvalid(errors)
    address_changed = "address" in changes and changes["address"] != customer.address
    territory_facts = ("division_code", "industry_id", "size_band", "value_tier")
    facts_before = [getattr(customer, name) for name in territory_facts]
    for name, value in changes.items():
        setattr(customer, name, value.strip() if isinstance(value, str) else value)
    if address_changed and "division_code" not in changes:
        customer.division_code = ""
        customer.province = customer.city = customer.district = ""
    if phone_number is None:
        phones = list(customer.phones.values_list("number", flat=True))
    else:
        phones = [phone_number] if phone_number else []
    keys = _apply_identity(customer, phones)
    _lock_identity(keys)
    hard = [m for m in find_duplicates(keys, exclude=[customer.pk]) if m.is_hard]
    if hard:
        raise DuplicateCustomer(hard)
    try:
        with transaction.atomic():
            customer.save()
            if "phone" in changes:
                _save_phones(customer, phones)
    except IntegrityError as error:
        raise DuplicateCustomer(
            [m for m in find_duplicates(keys, exclude=[customer.pk]) if m.is_hard]
        ) from error
    if [getattr(customer, name) for name in territory_facts] != facts_before:
        signals.customer_facts_changed.send(sender=Customer, customer=customer, created=False)
    return customer


@transaction.atomic
def contact_add(
    *,
    actor: User,
    customer: Customer,
    name: str,
    title: str = "",
    mobile: str = "",
    phone: str = "",
    email: str = "",
    wechat: str = "",
) -> Contact:
    errors: dict[str, str] = {}
    clean_name = " ".join((name or "").split())
    if not clean_name:
        errors["name"] = _("Enter the contact's name.")
    elif len(clean_name) > 100:
        errors["name"] = _("The name is too long (at most 100 characters).")
    mobile_number = ""
    try:
        mobile_number = clean_phone(mobile, "mobile")
        if mobile_number and not is_mobile(mobile_number):
            errors["mobile"] = _("“%(value)s” is not a mobile number.") % {"value": mobile}
    except CustomerInvalid as error:
        errors.update(error.errors)
    try:
        clean_phone(phone, "phone")
    except CustomerInvalid as error:
        errors.update(error.errors)
    if errors:
        raise CustomerInvalid(errors)
    return Contact.objects.create(
        customer=customer,
        name=clean_name,
        title=title.strip()[:100],
        mobile=mobile_number,
        phone=phone.strip()[:32],
        email=email.strip(),
        wechat=wechat.strip()[:64],
    )


@transaction.atomic
def follow_up_log(
    *,
    actor: User,
    customer: Customer,
    kind: str,
    happened_at: datetime,
    summary: str,
    next_step: str = "",
    stage_after: int | None = None,
    stage_reason: str = "",
) -> FollowUp:
    """Log a contact with the customer; it may move the funnel stage (backwards needs a reason)."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    errors: dict[str, str] = {}
    if kind not in FollowUpKind.values:
        errors["kind"] = _("Choose the kind of follow-up.")
    if not (summary or "").strip():
        errors["summary"] = _("Describe what happened.")
    if happened_at > timezone.now() + timedelta(minutes=5):
        errors["happened_at"] = _("A follow-up cannot be in the future.")
    stage_before = customer.stage
    new_stage = stage_before if stage_after is None else stage_after
    if new_stage not in FunnelStage.values:
        errors["stage_after"] = _("Choose a valid funnel stage.")
    elif new_stage < stage_before and not stage_reason.strip():
        errors["stage_reason"] = _("Moving the customer back in the funnel needs a reason.")
    if errors:
        raise CustomerInvalid(errors)
    follow_up = FollowUp.objects.create(
        customer=customer,
        kind=kind,
        happened_at=happened_at,
        summary=summary.strip(),
        next_step=next_step.strip()[:255],
        stage_before=stage_before,
        stage_after=new_stage,
        stage_reason=stage_reason.strip()[:255],
        by=actor,
    )
    update_fields = []
    if customer.last_follow_up_at is None or happened_at > customer.last_follow_up_at:
        customer.last_follow_up_at = happened_at
        update_fields.append("last_follow_up_at")
    if new_stage != stage_before:
        customer.stage = new_stage
        update_fields.append("stage")
    if update_fields:
        customer.save(update_fields=[*update_fields, "updated_at"])
    return follow_up


# --- Employment state: departing and deactivation (invariant 5) --------------------------


class UserStillOwnsCustomers(UserError):
    """Deactivation refused: the user still owns customers (they must move first)."""

    def __init__(self, user: User, owned: int) -> None:
        super().__init__(
            _(
                "%(name)s still owns %(count)d customers and cannot be deactivated. Record a "
                "departure handover (离职交接) so the customers move to colleagues first."
            )
            % {"name": user, "count": owned}
        )
        self.owned = owned


def user_owned_customer_count(user: User) -> int:
    """Customers the user owns (merged records keep their history, not an owner's duty)."""
    return Customer.objects.filter(owner=user, merged_into__isnull=True).count()


def user_check_can_deactivate(*, user: User) -> None:
    """Raise UserStillOwnsCustomers if deactivating `user` would leave customers with an
    inactive owner (every customer is owned by an active user or is in the pool)."""
    owned = user_owned_customer_count(user)
    if owned:
        raise UserStillOwnsCustomers(user, owned)


@transaction.atomic
def user_mark_departing(*, actor: User | None, user: User) -> User:
    """From now on the user is leaving: the ownership writer refuses them new customers.

    The user row is locked, so a registration or claim of theirs running right now either
    finished before (and its customer is in the handover) or sees the new state."""
    from crm.models import EmploymentState

    locked = User.objects.select_for_update().get(pk=user.pk)
    if not locked.is_active or locked.state == EmploymentState.DEPARTED:
        raise UserError(_("%(name)s is no longer active.") % {"name": locked})
    if locked.state != EmploymentState.DEPARTING:
        locked.state = EmploymentState.DEPARTING
        locked.save(update_fields=["state"])
    user.state = locked.state
    return locked


@transaction.atomic
def user_deactivate(*, actor: User | None, user: User, departed: bool = False) -> User:
    """Deactivate a user (they can no longer sign in); `departed` marks them as having left
    the company for good. Refused while they own customers — everywhere, admin included."""
    from crm.models import EmploymentState

    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.is_superuser and actor is not None and not actor.is_superuser:
        # A CRM administrator may not lock out the people above them.
        raise UserError(_("Only a superuser can deactivate a superuser."))
    user_check_can_deactivate(user=locked)
    fields = []
    if locked.is_active:
        locked.is_active = False
        fields.append("is_active")
    if departed and locked.state != EmploymentState.DEPARTED:
        locked.state = EmploymentState.DEPARTED
        fields.append("state")
    if fields:
        locked.save(update_fields=fields)
    user.is_active, user.state = locked.is_active, locked.state
    return locked


# --- Merging two records of one company (a committee ruling) ------------------------------


class MergeRefused(CustomerError):
    pass


@dataclass(frozen=True)
class MergeResult:
    survivor: Customer
    merged: Customer
    contacts_moved: int
    follow_ups_moved: int
    phones_copied: int
    possible_duplicates_resolved: int
    hard_matches_left: int


@transaction.atomic
def customer_merge(
    *, actor: User | None, merged: Customer, survivor: Customer, now: datetime | None = None
) -> MergeResult:
    """Merge `merged` into `survivor`: contacts and follow-ups move to the survivor, phones
    are copied to it, blank descriptive fields are filled from the merged record.

    The merged record keeps its row (and, in the ownership app, its ledger), points at the
    survivor through `merged_into` and leaves every identity uniqueness scope: the partial
    unique constraints skip merged rows, and its phone rows are deactivated. The survivor's
    identity keys are then recomputed and checked again. Ownership is not touched here: the
    caller moves owners through the ownership writer in the same transaction.
    """
    now = now or timezone.now()
    if merged.pk == survivor.pk:
        raise MergeRefused(_("A customer record cannot be merged into itself."))
    # Both rows locked in id order, so two merges of the same pair cannot deadlock.
    locked = {
        row.pk: row
        for row in Customer.objects.select_for_update()
        .filter(pk__in=[merged.pk, survivor.pk])
        .order_by("pk")
    }
    source, target = locked[merged.pk], locked[survivor.pk]
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise MergeRefused(_("One of the two records was already merged into another one."))
    contacts = Contact.objects.filter(customer=source).update(customer=target)
    follow_ups = FollowUp.objects.filter(customer=source).update(customer=target)
    # The merged record leaves the uniqueness scope first, then the survivor takes over its
    # keys (phones, a credit code it lacked) without colliding with it.
    source.merged_into = target
    source.save(update_fields=["merged_into", "updated_at"])
    CustomerPhone.objects.filter(customer=source).update(active=False)
    existing = set(target.phones.values_list("number", flat=True))
    copied = [
        CustomerPhone(customer=target, number=phone.number, is_mobile=phone.is_mobile, active=True)
        for phone in source.phones.all()
        if phone.number not in existing
    ]
    CustomerPhone.objects.bulk_create(copied)
    for field_name in ("legal_name", "credit_code", "address", "phone", "email"):
        if not getattr(target, field_name) and getattr(source, field_name):
            setattr(target, field_name, getattr(source, field_name))
    if target.industry_id is None:
        target.industry_id = source.industry_id
    if source.last_follow_up_at and (
        target.last_follow_up_at is None or source.last_follow_up_at > target.last_follow_up_at
    ):
        target.last_follow_up_at = source.last_follow_up_at
    # The follow-ups that moved the merged record up the funnel now belong to the survivor.
    target.stage = max(target.stage, source.stage)
    keys = _apply_identity(target, list(target.phones.values_list("number", flat=True)))
    _lock_identity(keys)
    hard = [m for m in find_duplicates(keys, exclude=[target.pk]) if m.is_hard]
    # The pair is settled; any other record still looking like the survivor needs a look.
    resolved = PossibleDuplicateRecord.objects.filter(
        Q(customer=source, candidate=target) | Q(customer=target, candidate=source),
        resolved_at__isnull=True,
    ).update(resolved_at=now)
    target.needs_duplicate_review = bool(hard)
    try:
        with transaction.atomic():
            target.save()
    except IntegrityError as error:
        raise MergeRefused(
            _("The merged record's identity keys clash with a third customer; nothing was merged.")
        ) from error
    # Workflow apps move what hangs on the merged record (e.g. open reassignment requests).
    customer_merged.send(sender=Customer, merged=source, survivor=target, actor=actor)
    return MergeResult(
        survivor=target,
        merged=source,
        contacts_moved=contacts,
        follow_ups_moved=follow_ups,
        phones_copied=len(copied),
        possible_duplicates_resolved=resolved,
        hard_matches_left=len(hard),
    )
