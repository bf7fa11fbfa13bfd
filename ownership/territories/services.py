"""Writes of territories: drafts, activation (validated, recorded, recomputing every
customer's territory set-based), one customer's refresh, and realignment.

Realignment never moves anyone on its own: `realignment_preview` lists owned customers that
fall outside their owner's team under the active rule set, grouped by (owner's team →
responsible team); `realignment_apply` takes the administrator's choice per group and
re-computes the preview first, refusing when it no longer matches what was shown. Every
move goes through the ownership writer with the rule set as its cause.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import Customer, Team, User
from ownership import services as ownership
from ownership.models import (
    CustomerTerritory,
    PoolPolicy,
    Realignment,
    RuleSet,
    RuleSetActivation,
    RuleSetStatus,
    Territory,
)
from ownership.territories import selectors
from ownership.territories.rules import CompiledRuleSet, Facts, Overlap, Problem

BATCH = 20_000
NULL = r"\N"  # COPY's NULL


class TerritoryError(DomainError):
    """A territory or rule-set operation that cannot be done (shown as is)."""


class RuleSetInvalid(TerritoryError):
    def __init__(self, message: str, *, problems: list[Problem], overlaps: list[Overlap]) -> None:
        super().__init__(message)
        self.problems = problems
        self.overlaps = overlaps


class RealignmentStale(TerritoryError):
    """The owned customers outside their team changed since the preview was shown."""


# --- drafts and activation ----------------------------------------------------------------


@transaction.atomic
def rule_set_copy(*, actor: User, source: RuleSet, name: str = "") -> RuleSet:
    """A new draft with a copy of `source`'s whole tree (to edit and simulate)."""
    draft = RuleSet.objects.create(
        name=(name or _("Copy of %(name)s") % {"name": source.name})[:100],
        default_team=source.default_team,
        notes=source.notes,
        created_by=actor,
    )
    mapping: dict[int, Territory] = {}
    pending = list(
        Territory.objects.filter(rule_set=source).prefetch_related("teams", "industries")
    )
    # Parents first: a parent is copied before any of its children.
    while pending:
        ready = [t for t in pending if t.parent_id is None or t.parent_id in mapping]
        if not ready:  # a cycle cannot be copied; the source is invalid anyway
            raise TerritoryError(_("The territory tree has a cycle; fix it before copying."))
        for territory in ready:
            copy = Territory.objects.create(
                rule_set=draft,
                parent=mapping.get(territory.parent_id) if territory.parent_id else None,
                name=territory.name,
                priority=territory.priority,
                division_codes=list(territory.division_codes),
                size_bands=list(territory.size_bands),
                value_tiers=list(territory.value_tiers),
                out_of_territory=territory.out_of_territory,
            )
            copy.teams.set(territory.teams.all())
            copy.industries.set(territory.industries.all())
            mapping[territory.pk] = copy
            policy = PoolPolicy.objects.filter(territory=territory).first()
            if policy is not None:
                # The territory's own clock goes with it into the draft.
                policy.pk = None
                policy.territory = copy
                policy.save(force_insert=True)
        pending = [t for t in pending if t.pk not in mapping]
    return draft


def rule_set_check(rule_set: RuleSet) -> tuple[CompiledRuleSet, list[Problem], list[Overlap]]:
    compiled = selectors.compile_rule_set(rule_set)
    return compiled, compiled.problems, compiled.overlaps()


Progress = Callable[[int], None]


def _refuse_if_invalid(problems: list[Problem], overlaps: list[Overlap]) -> None:
    if problems or overlaps:
        raise RuleSetInvalid(
            _(
                "Activation refused: %(problems)d problem(s) and %(overlaps)d undecided "
                "overlap(s). Fix them first."
            )
            % {"problems": len(problems), "overlaps": len(overlaps)},
            problems=problems,
            overlaps=overlaps,
        )


def rule_set_activate(
    *, actor: User | None, rule_set: RuleSet, progress: Progress | None = None
) -> RuleSetActivation:
    """Make `rule_set` the one active set and recompute every customer's territory, in one
    transaction. Refused while the set has problems or undecided overlaps."""
    with transaction.atomic():
        # One activation at a time: lock every rule set row (a small table).
        locked = {rs.pk: rs for rs in RuleSet.objects.select_for_update().order_by("pk")}
        target = locked.get(rule_set.pk)
        if target is None:
            raise TerritoryError(_("This rule set no longer exists."))
        if target.status == RuleSetStatus.ACTIVE:
            raise TerritoryError(_("This rule set is already active."))
        compiled, problems, overlaps = rule_set_check(target)
        if not compiled.territories and not problems:
            raise TerritoryError(_("This rule set has no territories."))
        _refuse_if_invalid(problems, overlaps)
        previous = next((rs for rs in locked.values() if rs.status == RuleSetStatus.ACTIVE), None)
        now = timezone.now()
        if previous is not None:
            previous.status = RuleSetStatus.RETIRED
            previous.save(update_fields=["status"])
        target.status = RuleSetStatus.ACTIVE
        target.activated_at = now
        target.save(update_fields=["status", "activated_at"])
        resolved, changed = customer_territories_recompute(
            rule_set=target, now=now, progress=progress
        )
        return RuleSetActivation.objects.create(
            rule_set=target,
            previous=previous,
            activated_by=actor,
            activated_at=now,
            customers_resolved=resolved,
            customers_changed=changed,
        )


# --- customers' territories ---------------------------------------------------------------


def _customer_facts(customer_ids: Iterable[int] | None) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of (id, division_code, industry_id, size_band, value_tier), read with a
    server-side cursor so that a million customers never sit in memory at once."""
    sql = (
        "SELECT id, division_code, industry_id, size_band, value_tier FROM crm_customer "
        "WHERE merged_into_id IS NULL"
    )
    params: list[Any] = []
    if customer_ids is not None:
        sql += " AND id = ANY(%s)"
        params.append(list(customer_ids))
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(BATCH):
            yield rows


def customer_territories_recompute(
    *,
    rule_set: RuleSet | None = None,
    customer_ids: Iterable[int] | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Resolve customers (all, or `customer_ids`) under `rule_set` (default: the active
    one) and store the results. Set-based: resolution in memory, then one COPY into a
    temporary table and one upsert. Returns (resolved, changed). Exceptions survive."""
    rule_set = rule_set or selectors.active_rule_set()
    if rule_set is None:
        return 0, 0
    compiled = selectors.compile_rule_set(rule_set)
    now = now or timezone.now()
    resolved = changed = 0
    table = CustomerTerritory._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS territory_resolution "
            "(customer_id bigint, territory_id bigint) ON COMMIT DROP"
        )
        cursor.execute("TRUNCATE territory_resolution")
        # A whole-base recompute (an activation) writes a row per customer: checking the
        # foreign keys row by row costs more than everything else together. As PostgreSQL's
        # bulk-loading advice says, drop them for the load and add them back validated in
        # one pass, all in this transaction, so no one ever sees the table without them.
        # (It holds the table for the duration; registrations meanwhile wait.)
        keys: list[tuple[str, str]] = []
        if customer_ids is None:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
                [table],
            )
            keys = list(cursor.fetchall())
            # Earlier writes of this transaction may have deferred checks queued on these
            # tables; ALTER TABLE refuses to run over them, so run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            for name, _definition in keys:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for rows in _customer_facts(customer_ids):
            buffer = io.StringIO()
            resolve_id = compiled.resolve_id
            for customer_id, division, industry_id, size_band, tier in rows:
                found = resolve_id(Facts(division, industry_id, size_band, tier))
                buffer.write(f"{customer_id}\t{NULL if found is None else found}\n")
            buffer.seek(0)
            cursor.copy_expert("COPY territory_resolution FROM STDIN", buffer)
            resolved += len(rows)
            if progress is not None:
                progress(resolved)
        if customer_ids is None:
            changed = _replace_all(cursor, table, rule_set_id=rule_set.pk, now=now)
        else:
            cursor.execute(
                f"""
                INSERT INTO {table}
                    (customer_id, rule_set_id, territory_id, resolved_at,
                     realignment_exception, exception_reason)
                SELECT r.customer_id, %s, r.territory_id, %s, false, ''
                FROM territory_resolution r
                ON CONFLICT (customer_id) DO UPDATE
                   SET rule_set_id = EXCLUDED.rule_set_id,
                       territory_id = EXCLUDED.territory_id,
                       resolved_at = EXCLUDED.resolved_at
                   WHERE {table}.territory_id IS DISTINCT FROM EXCLUDED.territory_id
                      OR {table}.rule_set_id <> EXCLUDED.rule_set_id
                """,
                [rule_set.pk, now],
            )
            changed = cursor.rowcount
        cursor.execute("DROP TABLE territory_resolution")
        for name, definition in keys:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition} NOT VALID')
            cursor.execute(f'ALTER TABLE {table} VALIDATE CONSTRAINT "{name}"')
    return resolved, changed


def _replace_all(cursor: Any, table: str, *, rule_set_id: int, now: datetime) -> int:
    """Replace every stored territory with `territory_resolution`'s, keeping realignment
    exceptions. Rewriting a million rows in place would leave a million dead ones behind;
    emptying the table and loading it afresh (in this transaction) does not. Returns how
    many customers' territories changed."""
    cursor.execute(
        f"""
        SELECT count(*) FROM territory_resolution r
        LEFT JOIN {table} t ON t.customer_id = r.customer_id
        WHERE t.customer_id IS NULL OR t.rule_set_id <> %s
           OR t.territory_id IS DISTINCT FROM r.territory_id
        """,
        [rule_set_id],
    )
    changed = int(cursor.fetchone()[0])
    cursor.execute(
        "CREATE TEMP TABLE territory_exceptions ON COMMIT DROP AS "
        f"SELECT customer_id, exception_reason FROM {table} WHERE realignment_exception"
    )
    cursor.execute(f"TRUNCATE {table}")
    cursor.execute(
        f"""
        INSERT INTO {table}
            (customer_id, rule_set_id, territory_id, resolved_at,
             realignment_exception, exception_reason)
        SELECT r.customer_id, %s, r.territory_id, %s,
               e.customer_id IS NOT NULL, coalesce(e.exception_reason, '')
        FROM territory_resolution r
        LEFT JOIN territory_exceptions e ON e.customer_id = r.customer_id
        """,
        [rule_set_id, now],
    )
    cursor.execute("DROP TABLE territory_exceptions")
    return changed


def customer_territories_catch_up() -> int:
    """Resolve customers that have no territory under the active rule set yet (created by a
    path that sent no signal, or while an activation was running). Idempotent."""
    rule_set = selectors.active_rule_set()
    if rule_set is None:
        return 0
    missing = list(
        Customer.objects.filter(merged_into__isnull=True)
        .exclude(pk__in=CustomerTerritory.objects.filter(rule_set=rule_set).values("customer_id"))
        .values_list("pk", flat=True)
    )
    if missing:
        customer_territories_recompute(rule_set=rule_set, customer_ids=missing)
    return len(missing)


def customer_territory_refresh(*, customer: Customer) -> None:
    """Re-resolve one customer after its address, industry, size or tier changed (or it was
    created). One statement, an upsert: a realignment exception on the record stays."""
    compiled = selectors.active_compiled()
    if compiled is None or compiled.rule_set_id is None:
        return
    CustomerTerritory.objects.bulk_create(
        [
            CustomerTerritory(
                customer_id=customer.pk,
                rule_set_id=compiled.rule_set_id,
                territory_id=compiled.resolve_id(selectors.facts_of(customer)),
                resolved_at=timezone.now(),
            )
        ],
        update_conflicts=True,
        unique_fields=["customer"],
        update_fields=["rule_set", "territory", "resolved_at"],
    )


@transaction.atomic
def realignment_exception_clear(*, actor: User, customer: Customer) -> None:
    CustomerTerritory.objects.filter(customer=customer).update(
        realignment_exception=False, exception_reason=""
    )


# --- realignment --------------------------------------------------------------------------

KEEP, POOL, ALLOCATE = "keep", "pool", "allocate"


@dataclass
class RealignmentGroup:
    """Owned customers of one owner's team that now belong to another team's territory."""

    key: str  # "<owner team id or 0>:<responsible team ids joined by ->"
    owner_team: Team | None
    responsible_teams: list[Team]
    customers: list[Customer] = field(default_factory=list)
    territories: dict[int | None, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.customers)

    @property
    def responsible_label(self) -> str:
        if not self.responsible_teams:
            return _("the national pool")
        return _("、").join(team.name for team in self.responsible_teams)


@dataclass
class RealignmentPreview:
    rule_set: RuleSet | None
    groups: list[RealignmentGroup]
    fingerprint: str

    @property
    def total(self) -> int:
        return sum(group.count for group in self.groups)

    def group(self, key: str) -> RealignmentGroup | None:
        return next((g for g in self.groups if g.key == key), None)


def realignment_preview() -> RealignmentPreview:
    """Owned customers outside their owner's team under the active rule set (exceptions
    excluded), grouped. Resolution is recomputed from the customers' current facts, so the
    preview is right even if a stored territory is stale."""
    rule_set = selectors.active_rule_set()
    if rule_set is None:
        return RealignmentPreview(rule_set=None, groups=[], fingerprint="")
    compiled = selectors.compile_rule_set(rule_set)
    teams = {team.pk: team for team in Team.objects.select_related("parent")}

    def lineage(team_id: int | None) -> set[int]:
        found: set[int] = set()
        while team_id is not None and team_id not in found and team_id in teams:
            found.add(team_id)
            team_id = teams[team_id].parent_id
        return found

    exceptions = set(
        CustomerTerritory.objects.filter(realignment_exception=True).values_list(
            "customer_id", flat=True
        )
    )
    groups: dict[str, RealignmentGroup] = {}
    owned = (
        Customer.objects.filter(owner__isnull=False, merged_into__isnull=True)
        .select_related("owner")
        .only(
            "pk",
            "display_name",
            "division_code",
            "industry_id",
            "size_band",
            "value_tier",
            "owner__id",
            "owner__username",
            "owner__display_name",
            "owner__team_id",
        )
        .order_by("pk")
    )
    digest = hashlib.sha256()
    for customer in owned.iterator(chunk_size=5000):
        if customer.pk in exceptions:
            continue
        result = compiled.resolve(selectors.facts_of(customer))
        if not result.team_ids:
            continue  # the national pool: any team may own it
        owner_team_id = customer.owner.team_id if customer.owner else None
        if lineage(owner_team_id) & set(result.team_ids):
            continue
        key = f"{owner_team_id or 0}:{'-'.join(str(t) for t in result.team_ids)}"
        group = groups.get(key)
        if group is None:
            group = groups[key] = RealignmentGroup(
                key=key,
                owner_team=teams.get(owner_team_id) if owner_team_id else None,
                responsible_teams=[teams[t] for t in result.team_ids if t in teams],
            )
        group.customers.append(customer)
        group.territories[result.territory_id] = result.territory_label
        digest.update(f"{customer.pk}:{customer.owner_id}:{key};".encode())
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.key))
    return RealignmentPreview(rule_set=rule_set, groups=ordered, fingerprint=digest.hexdigest())


def realignment_csv(preview: RealignmentPreview) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            _("customer id"),
            _("customer"),
            _("owner"),
            _("owner's team"),
            _("territory"),
            _("responsible team"),
        ]
    )
    for group in preview.groups:
        for customer in group.customers:
            result_label = next(iter(group.territories.values()), "")
            writer.writerow(
                [
                    customer.pk,
                    customer.display_name,
                    str(customer.owner),
                    group.owner_team.name if group.owner_team else "",
                    result_label if len(group.territories) == 1 else _("several"),
                    group.responsible_label,
                ]
            )
    return out.getvalue()


@dataclass(frozen=True)
class GroupDecision:
    key: str
    choice: str  # keep | pool | allocate
    rep: User | None = None


def realignment_apply(
    *, actor: User, fingerprint: str, decisions: Iterable[GroupDecision]
) -> Realignment:
    """Apply the administrator's choice for each group of the preview they saw.

    Refused (nothing moves) when the preview changed since (`fingerprint`), when a group has
    no decision, or when an allocation names a rep outside the responsible team."""
    with transaction.atomic():
        # Serialise realignments: the active rule set's row is the lock.
        rule_set = selectors.active_rule_set()
        if rule_set is None:
            raise TerritoryError(_("No rule set is active."))
        RuleSet.objects.select_for_update().filter(pk=rule_set.pk).first()
        preview = realignment_preview()
        if preview.fingerprint != fingerprint:
            raise RealignmentStale(
                _(
                    "The customers outside their team changed since the preview; nothing was "
                    "moved. Review the new preview."
                )
            )
        by_key = {d.key: d for d in decisions}
        missing = [g for g in preview.groups if g.key not in by_key]
        if missing:
            raise TerritoryError(_("Choose what happens to every group; nothing was moved."))
        for group in preview.groups:
            decision = by_key[group.key]
            if decision.choice not in (KEEP, POOL, ALLOCATE):
                raise TerritoryError(_("Unknown choice; nothing was moved."))
            if decision.choice == ALLOCATE:
                rep = decision.rep
                allowed = {t.pk for t in group.responsible_teams}
                if rep is None or not (selectors.team_lineage(rep.team) & allowed):
                    raise TerritoryError(
                        _("Allocate %(group)s to a rep of %(team)s; nothing was moved.")
                        % {
                            "group": group.owner_team or _("no team"),
                            "team": group.responsible_label,
                        }
                    )
        reason = _("Realignment under rule set %(name)s") % {"name": rule_set.name}
        counts = {KEEP: 0, POOL: 0, ALLOCATE: 0}
        record = Realignment.objects.create(
            rule_set=rule_set, applied_by=actor, applied_at=timezone.now(), decisions=[]
        )
        log: list[dict[str, Any]] = []
        for group in preview.groups:
            decision = by_key[group.key]
            ids = [c.pk for c in group.customers]
            if decision.choice == KEEP:
                # A customer not resolved yet (created since the activation) gets its record
                # now, so that the exception has somewhere to live.
                unresolved = set(ids) - set(
                    CustomerTerritory.objects.filter(customer_id__in=ids).values_list(
                        "customer_id", flat=True
                    )
                )
                if unresolved:
                    customer_territories_recompute(rule_set=rule_set, customer_ids=unresolved)
                CustomerTerritory.objects.filter(customer_id__in=ids).update(
                    realignment_exception=True, exception_reason=reason[:200]
                )
            for customer in group.customers:
                if decision.choice == POOL:
                    ownership.ownership_realign(
                        actor=actor,
                        customer=customer,
                        expected_owner=customer.owner,
                        to_rep=None,
                        reason=f"{reason}: {group.responsible_label}",
                        cause=record,
                    )
                elif decision.choice == ALLOCATE:
                    ownership.ownership_realign(
                        actor=actor,
                        customer=customer,
                        expected_owner=customer.owner,
                        to_rep=decision.rep,
                        reason=reason,
                        cause=record,
                    )
            counts[decision.choice] += len(ids)
            log.append(
                {
                    "group": group.key,
                    "owner_team": group.owner_team.pk if group.owner_team else None,
                    "responsible_teams": [t.pk for t in group.responsible_teams],
                    "choice": decision.choice,
                    "rep": decision.rep.pk if decision.rep else None,
                    "customers": ids,
                }
            )
        record.decisions = log
        record.counts = counts
        record.save(update_fields=["decisions", "counts"])
        return record


# --- activation in the background (a large customer base) -------------------------------

ACTIVATION_PROGRESS_TTL = 24 * 3600


def activation_progress_key(rule_set_id: int) -> str:
    return f"territory-activation:{rule_set_id}"


def activation_progress(rule_set_id: int) -> dict[str, Any] | None:
    """What a background activation has done so far (None: none was started)."""
    from django.core.cache import cache

    return cache.get(activation_progress_key(rule_set_id))


def _set_progress(rule_set_id: int, **state: Any) -> None:
    from django.core.cache import cache

    cache.set(activation_progress_key(rule_set_id), state, timeout=ACTIVATION_PROGRESS_TTL)


def customers_estimate() -> int:
    """The number of customers as the planner knows it (no COUNT over a million rows)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
            [Customer._meta.db_table],
        )
        row = cursor.fetchone()
    estimate = int(row[0]) if row else 0
    if estimate < 10_000:
        estimate = Customer.objects.count()  # small or never analysed: count exactly
    return estimate


def rule_set_activate_later(*, actor: User, rule_set: RuleSet) -> None:
    """Check now (a refusal is immediate), then activate in a Celery task whose progress
    `activation_progress` reports; the task checks again under its lock."""
    from ownership.tasks import activate_rule_set

    _compiled, problems, overlaps = rule_set_check(rule_set)
    _refuse_if_invalid(problems, overlaps)
    _set_progress(rule_set.pk, state="queued", done=0, total=customers_estimate())
    transaction.on_commit(lambda: activate_rule_set.delay(rule_set.pk, actor.pk))


def rule_set_activate_with_progress(*, rule_set_id: int, actor_id: int | None) -> None:
    """The task's body: activation with its progress written for the page to read."""
    rule_set = RuleSet.objects.get(pk=rule_set_id)
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    total = customers_estimate()
    if rule_set.status == RuleSetStatus.ACTIVE:
        return  # a redelivered task: the first delivery activated it
    _set_progress(rule_set_id, state="running", done=0, total=total)
    try:
        activation = rule_set_activate(
            actor=actor,
            rule_set=rule_set,
            progress=lambda done: _set_progress(
                rule_set_id, state="running", done=done, total=max(total, done)
            ),
        )
    except TerritoryError as error:
        _set_progress(rule_set_id, state="failed", done=0, total=total, message=error.message)
        return
    _set_progress(
        rule_set_id,
        state="done",
        done=activation.customers_resolved,
        total=activation.customers_resolved,
        changed=activation.customers_changed,
    )
