"""Reads of territories: the active rule set compiled and cached, resolution of a customer or
of a registration form, coverage of a rep's team, and territory pages' counts."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from django.utils.translation import gettext as _

from crm import prepared
from crm.identity.regions import parse_address
from crm.models import Customer, Industry, Team, User
from ownership.clock import PolicyValues, with_territory
from ownership.models import CustomerTerritory, PoolPolicy, RuleSet, RuleSetStatus, Territory
from ownership.territories.rules import CompiledRuleSet, Facts, Resolution, TerritoryNode

_cache_lock = threading.Lock()
_compiled_cache: dict[tuple[int, str], CompiledRuleSet] = {}
# Inside `rule_set_pinned()`: the set in force when the block began (a one-element tuple, so
# that "no rule set is active" can be pinned too).
_pinned: ContextVar[tuple[CompiledRuleSet | None] | None] = ContextVar(
    "territories_pinned_rule_set", default=None
)


def active_rule_set() -> RuleSet | None:
    return (
        RuleSet.objects.filter(status=RuleSetStatus.ACTIVE).select_related("default_team").first()
    )


def territory_nodes(rule_set: RuleSet) -> list[TerritoryNode]:
    """Three queries: the territories, their industries and their teams."""
    industries: dict[int, set[int]] = {}
    for territory_id, industry_id in Territory.industries.through.objects.filter(
        territory__rule_set=rule_set
    ).values_list("territory_id", "industry_id"):
        industries.setdefault(territory_id, set()).add(industry_id)
    teams: dict[int, list[int]] = {}
    for territory_id, team_id in (
        Territory.teams.through.objects.filter(territory__rule_set=rule_set)
        .order_by("team_id")
        .values_list("territory_id", "team_id")
    ):
        teams.setdefault(territory_id, []).append(team_id)
    return [
        TerritoryNode(
            id=row.pk,
            name=row.name,
            parent_id=row.parent_id,
            priority=row.priority,
            division_codes=tuple(row.division_codes),
            industry_ids=frozenset(industries.get(row.pk, ())),
            size_bands=frozenset(row.size_bands),
            value_tiers=frozenset(row.value_tiers),
            team_ids=tuple(teams.get(row.pk, ())),
            out_of_territory=row.out_of_territory,
        )
        for row in Territory.objects.filter(rule_set=rule_set).order_by("pk")
    ]


def default_label(rule_set: RuleSet) -> str:
    if rule_set.default_team_id:
        return _("the pool of %(team)s") % {"team": rule_set.default_team}
    return _("the national pool")


def compile_rule_set(rule_set: RuleSet) -> CompiledRuleSet:
    """Compile a rule set. Active and retired sets cannot change, so they are compiled once
    per process; drafts are compiled afresh every time (they are being edited)."""
    key = (rule_set.pk, str(rule_set.activated_at))
    cacheable = rule_set.status != RuleSetStatus.DRAFT
    if cacheable:
        with _cache_lock:
            if key in _compiled_cache:
                return _compiled_cache[key]
    compiled = CompiledRuleSet(
        territory_nodes(rule_set),
        rule_set_id=rule_set.pk,
        default_team_id=rule_set.default_team_id,
        default_label=default_label(rule_set),
    )
    if cacheable:
        with _cache_lock:
            _compiled_cache.clear()  # at most one (the active set) is ever needed
            _compiled_cache[key] = compiled
    return compiled


def active_compiled() -> CompiledRuleSet | None:
    """The active rule set, compiled. One short query (which set is active, and since when)
    per call, none inside `rule_set_pinned()`; the compiled set is cached per process until
    another set is activated.

    The probe is plain SQL on purpose: a registration resolves its territory on every
    submit, and building an ORM query costs several times the query itself."""
    pinned = _pinned.get()
    if pinned is not None:
        return pinned[0]
    with connection.cursor() as cursor:
        prepared.execute(
            cursor,
            f"SELECT id, activated_at FROM {RuleSet._meta.db_table} WHERE status = %s LIMIT 1",
            [RuleSetStatus.ACTIVE.value],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    with _cache_lock:
        cached = _compiled_cache.get((row[0], str(row[1])))
    if cached is not None:
        return cached
    rule_set = active_rule_set()
    return compile_rule_set(rule_set) if rule_set is not None else None


@contextmanager
def rule_set_pinned() -> Iterator[CompiledRuleSet | None]:
    """A block of work that answers under one rule set: the one in force when it began
    (asked once, then reused by every `active_compiled()` inside, receivers of crm's signals
    included). A registration resolves the form's facts and then, when crm announces the
    customer it created, the customer's: one query instead of two, and both answers under
    the same set. Not for long-running work: an activation during the block is not seen."""
    outer = _pinned.get()
    if outer is not None:  # already pinned by an enclosing block
        yield outer[0]
        return
    compiled = active_compiled()
    token = _pinned.set((compiled,))
    try:
        yield compiled
    finally:
        _pinned.reset(token)


def facts_of(customer: Customer) -> Facts:
    return Facts(
        division_code=customer.division_code,
        industry_id=customer.industry_id,
        size_band=customer.size_band,
        value_tier=customer.value_tier,
    )


def facts_of_form(
    *,
    address: str = "",
    industry: Industry | None = None,
    size_band: str = "",
    value_tier: str = "",
) -> Facts:
    """The facts of a registration still being typed (new customers start at tier C)."""
    return Facts(
        division_code=parse_address(address).code if address.strip() else "",
        industry_id=industry.pk if industry is not None else None,
        size_band=size_band,
        value_tier=value_tier or "C",
    )


def resolve(facts: Facts) -> Resolution | None:
    """Under the active rule set; None when no rule set is active (no territories yet)."""
    compiled = active_compiled()
    return compiled.resolve(facts) if compiled is not None else None


def team_lineage(team: Team | None) -> set[int]:
    """The team and every team above it (a sub-team is covered by its parent's territory)."""
    found: set[int] = set()
    node = team
    while node is not None and node.pk not in found:
        found.add(node.pk)
        node = node.parent
    return found


def _national_pool(resolution: Resolution) -> bool:
    return resolution.is_default and not resolution.team_ids


def team_covers(team: Team | None, resolution: Resolution) -> bool:
    if _national_pool(resolution):
        return True  # every team may own it
    return bool(team_lineage(team) & set(resolution.team_ids))


def user_team_covers(user: User, resolution: Resolution) -> bool:
    """`team_covers` for the user's team, which is loaded only when its lineage must be
    walked (not the national pool, and the user's own team not a responsible one)."""
    if _national_pool(resolution) or (
        user.team_id is not None and user.team_id in resolution.team_ids
    ):
        return True
    return team_covers(user.team, resolution)


@dataclass(frozen=True)
class TerritoryRow:
    territory: Territory
    depth: int
    label: str
    customers: int
    owned: int


def territory_tree(
    rule_set: RuleSet, territory_ids: Iterable[int] | None = None
) -> list[TerritoryRow]:
    """The rule set's territories in tree order with customer counts (three queries)."""
    territories = {
        t.pk: t
        for t in Territory.objects.filter(rule_set=rule_set).prefetch_related("teams", "industries")
    }
    counts = {
        row["territory_id"]: row
        for row in CustomerTerritory.objects.filter(
            rule_set=rule_set, customer__merged_into__isnull=True
        )
        .values("territory_id")
        .annotate(total=Count("pk"), owned=Count("pk", filter=Q(customer__owner__isnull=False)))
    }
    wanted = set(territory_ids) if territory_ids is not None else None
    children: dict[int | None, list[Territory]] = {}
    for territory in territories.values():
        children.setdefault(territory.parent_id, []).append(territory)
    rows: list[TerritoryRow] = []

    def walk(parent_id: int | None, depth: int, path: tuple[str, ...]) -> None:
        for territory in sorted(children.get(parent_id, []), key=lambda t: (t.priority, t.name)):
            label = " → ".join((*path, territory.name))
            if wanted is None or territory.pk in wanted:
                count = counts.get(territory.pk, {})
                rows.append(
                    TerritoryRow(
                        territory=territory,
                        depth=depth,
                        label=label,
                        customers=count.get("total", 0),
                        owned=count.get("owned", 0),
                    )
                )
            walk(territory.pk, depth + 1, (*path, territory.name))

    walk(None, 0, ())
    return rows


def territories_of_teams(rule_set: RuleSet, teams: QuerySet[Team]) -> set[int]:
    """Territories assigned to these teams, and their descendants (which inherit the teams
    unless they name their own)."""
    compiled = compile_rule_set(rule_set)
    team_ids = set(teams.values_list("pk", flat=True))
    return {t.id for t in compiled.territories.values() if team_ids & set(t.team_ids)}


def customer_territory(customer: Customer) -> CustomerTerritory | None:
    return (
        CustomerTerritory.objects.filter(customer=customer)
        .select_related("territory", "rule_set")
        .first()
    )


def teams_by_id(ids: Iterable[int]) -> dict[int, Team]:
    return {team.pk: team for team in Team.objects.filter(pk__in=set(ids))}


def managers_of(team_ids: Iterable[int]) -> QuerySet[User]:
    """Managers who may decide for these teams: each team's manager and those above it."""
    ids: set[int] = set()
    for team in Team.objects.filter(pk__in=set(team_ids)).select_related("parent"):
        node: Team | None = team
        seen: set[int] = set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            if node.manager_id:
                ids.add(node.manager_id)
            node = node.parent
    return User.objects.filter(pk__in=ids, is_active=True)


@dataclass
class TerritoryPolicies:
    """Territories' own pool policies under the active rule set, nearest up the tree first.
    Two queries, then lookups in memory (the review asks for every due customer)."""

    parents: dict[int, int | None]
    names: dict[int, str]
    policies: dict[int, PoolPolicy]

    @classmethod
    def load(cls) -> TerritoryPolicies:
        """The tree comes from the compiled active set (`active_compiled`: one short query;
        the set in force cannot be edited), the policies from the database (one query when
        the set has territories: an administrator may change them at any time)."""
        compiled = active_compiled()
        if compiled is None or not compiled.nodes:
            return cls(parents={}, names={}, policies={})
        nodes = compiled.nodes.values()
        parents: dict[int, int | None] = {node.id: node.parent_id for node in nodes}
        names = {node.id: node.name for node in nodes}
        policies = {
            policy.territory_id: policy
            for policy in PoolPolicy.objects.filter(territory_id__in=list(parents))
            if policy.territory_id is not None
        }
        return cls(parents=parents, names=names, policies=policies)

    def for_territory(self, territory_id: int | None) -> tuple[PoolPolicy | None, str]:
        node = territory_id
        seen: set[int] = set()
        while node is not None and node not in seen and node in self.parents:
            seen.add(node)
            if node in self.policies:
                return self.policies[node], _("territory %(name)s") % {"name": self.names[node]}
            node = self.parents[node]
        return None, ""

    def apply(self, base: PolicyValues, territory_id: int | None) -> PolicyValues:
        if not self.policies:
            return base
        policy, level = self.for_territory(territory_id)
        return with_territory(base, policy, level)

    def all_overrides(self, base: PolicyValues) -> list[PolicyValues]:
        return [with_territory(base, policy, "") for policy in self.policies.values()]


def with_stored_territory(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    """`customers`, each with the id of its stored territory (`territory_id`, None when it
    has none) joined in: `stored_territory_id` then needs no query."""
    return customers.annotate(territory_id=F("territory_record__territory_id"))


def stored_territory_id(customer: Customer) -> int | None:
    """The territory stored for the customer: the `with_stored_territory` annotation when it
    was loaded with it, else one query."""
    if "territory_id" in customer.__dict__:
        stored: int | None = customer.__dict__["territory_id"]
        return stored
    return territory_id_of(customer.pk)


def territory_id_of(customer_id: int) -> int | None:
    return (
        CustomerTerritory.objects.filter(customer_id=customer_id)
        .values_list("territory_id", flat=True)
        .first()
    )
