"""Reads behind the territory pages and the territory admin: effective criteria as text and
as a customer query, overlap examples, the managers' territory table and the simulation of
customers (pasted, uploaded or picked) under the active rule set and another one.

Nothing here writes; the rules themselves live in `ownership.territories.rules`."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils.translation import gettext as _

from crm.identity.regions import division_by_code, parse_address
from crm.models import Customer, Industry, SizeBand, Team, User, ValueTier
from crm.selectors import teams_managed_by
from ownership.models import OutOfTerritoryPolicy, RuleSet, RuleSetStatus, Territory
from ownership.territories import selectors
from ownership.territories.rules import (
    CompiledRuleSet,
    CompiledTerritory,
    Facts,
    Overlap,
    Resolution,
)

# --- criteria as words and as a query ------------------------------------------------------


def division_label(code: str) -> str:
    """ "110108 海淀区"; an unknown code is shown as it is."""
    division = division_by_code(code)
    return f"{code} {division.name}" if division is not None else code


def criteria_text(territory: CompiledTerritory, industries: dict[int, str]) -> list[str]:
    """The effective criteria of a territory (own or inherited), one phrase per dimension."""
    parts: list[str] = []
    if territory.prefixes is not None:
        names = "、".join(division_label(code) for code in territory.prefixes)
        parts.append(_("regions: %(names)s") % {"names": names})
    if territory.industry_ids is not None:
        names = "、".join(sorted(industries.get(i, str(i)) for i in territory.industry_ids))
        parts.append(_("industries: %(names)s") % {"names": names})
    if territory.size_bands is not None:
        labels = dict(SizeBand.choices)
        names = "、".join(str(labels.get(s, s)) for s in sorted(territory.size_bands))
        parts.append(_("sizes: %(names)s") % {"names": names})
    if territory.value_tiers is not None:
        names = "、".join(sorted(territory.value_tiers))
        parts.append(_("value tiers: %(names)s") % {"names": names})
    return parts


def criteria_q(territory: CompiledTerritory) -> Q:
    """The customers whose facts meet a territory's effective criteria (the same tests as
    `CompiledTerritory.matches`, as SQL)."""
    q = Q()
    if territory.prefixes is not None:
        if not territory.prefixes:
            return Q(pk__in=[])
        q &= reduce(or_, [Q(division_code__startswith=p) for p in territory.prefixes])
    if territory.industry_ids is not None:
        q &= Q(industry_id__in=sorted(territory.industry_ids))
    if territory.size_bands is not None:
        q &= Q(size_band__in=sorted(territory.size_bands))
    if territory.value_tiers is not None:
        q &= Q(value_tier__in=sorted(territory.value_tiers))
    return q


def industry_names() -> dict[int, str]:
    return dict(Industry.objects.values_list("pk", "name"))


# --- the overlap report --------------------------------------------------------------------

EXAMPLES_PER_OVERLAP = 3
# Each overlap costs one query for its examples; past this many the report lists the pairs
# without examples (a rule set with that many undecided overlaps needs a broader fix first).
OVERLAPS_WITH_EXAMPLES = 100


@dataclass
class OverlapRow:
    overlap: Overlap
    first_criteria: list[str]
    second_criteria: list[str]
    examples: list[Customer]
    examples_looked_up: bool
    hint: str


def overlap_rows(overlaps: Iterable[Overlap]) -> list[OverlapRow]:
    """Each undecided overlap with up to three existing customers both territories match
    and a hint how to decide it."""
    industries = industry_names()
    rows: list[OverlapRow] = []
    for index, overlap in enumerate(overlaps):
        first, second = overlap.first, overlap.second
        examples: list[Customer] = []
        looked_up = index < OVERLAPS_WITH_EXAMPLES
        if looked_up:
            examples = list(
                Customer.objects.filter(merged_into__isnull=True)
                .filter(criteria_q(first) & criteria_q(second))
                .select_related("industry", "owner")
                .order_by("pk")[:EXAMPLES_PER_OVERLAP]
            )
        hint = _(
            "Give one of them a lower priority number (for example %(first)s: %(lower)d; "
            "lower numbers win), or narrow their criteria so that they share no customers."
        ) % {"first": first.label, "lower": max(first.priority - 1, 0)}
        if first.priority == 0:
            hint = _(
                "Give %(second)s a higher priority number (for example %(higher)d; lower "
                "numbers win), or narrow their criteria so that they share no customers."
            ) % {"second": second.label, "higher": second.priority + 1}
        rows.append(
            OverlapRow(
                overlap=overlap,
                first_criteria=criteria_text(first, industries),
                second_criteria=criteria_text(second, industries),
                examples=examples,
                examples_looked_up=looked_up,
                hint=hint,
            )
        )
    return rows


# --- the managers' territory table ---------------------------------------------------------


@dataclass
class TerritoryTableRow:
    id: int
    depth: int
    label: str
    name: str
    teams: list[str]
    teams_inherited: bool
    criteria: list[str]
    policy: str
    customers: int
    owned: int

    @property
    def in_pool(self) -> int:
        return self.customers - self.owned


def territory_table(user: User) -> tuple[RuleSet | None, list[TerritoryTableRow]]:
    """The active rule set's territories the user may read: an administrator's whole tree,
    a manager's territories of the teams they manage (and their sub-territories). A
    constant number of queries, whatever the size of the tree."""
    rule_set = selectors.active_rule_set()
    if rule_set is None:
        return None, []
    compiled = selectors.compile_rule_set(rule_set)
    wanted: set[int] | None = None
    if not user.is_crm_admin:
        wanted = selectors.territories_of_teams(rule_set, teams_managed_by(user))
        if not wanted:
            return rule_set, []
    tree = selectors.territory_tree(rule_set, wanted)
    team_names = dict(Team.objects.values_list("pk", "name"))
    industries = industry_names()
    policies = dict(OutOfTerritoryPolicy.choices)
    rows: list[TerritoryTableRow] = []
    for item in tree:
        territory = compiled.territories.get(item.territory.pk)
        if territory is None:
            continue  # an invalid node (a cycle) resolves nothing
        rows.append(
            TerritoryTableRow(
                id=territory.id,
                depth=item.depth,
                label=item.label,
                name=territory.name,
                teams=[team_names.get(t, str(t)) for t in territory.team_ids],
                teams_inherited=not item.territory.teams.all(),
                criteria=criteria_text(territory, industries),
                policy=str(policies.get(territory.out_of_territory, territory.out_of_territory)),
                customers=item.customers,
                owned=item.owned,
            )
        )
    return rule_set, rows


# --- simulation -----------------------------------------------------------------------------

MAX_SIMULATED_ROWS = 500
MAX_UPLOAD_BYTES = 1024 * 1024

# Column names accepted in an uploaded file's header row (English or Chinese).
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "customer", "company", "名称", "客户", "客户名称", "公司", "公司名称"),
    "address": ("address", "地址", "注册地址", "办公地址"),
    "industry": ("industry", "行业"),
    "size": ("size", "size band", "规模", "人员规模", "企业规模"),
    "tier": ("tier", "value tier", "value", "价值等级", "等级", "客户等级"),
}
ORDER = ("name", "address", "industry", "size", "tier")


@dataclass
class SimulatedInput:
    """One customer to simulate: a pasted or uploaded line, or an existing customer."""

    line: int  # 0 for an existing customer
    name: str
    address: str
    industry: str
    size_band: str
    value_tier: str
    facts: Facts
    region: str
    customer: Customer | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class SimulatedRow:
    input: SimulatedInput
    active: Resolution | None
    other: Resolution | None
    active_teams: list[str]
    other_teams: list[str]

    @property
    def differs(self) -> bool:
        if self.active is None or self.other is None:
            return False
        return (self.active.territory_label, self.active.team_ids) != (
            self.other.territory_label,
            self.other.team_ids,
        )


class _Lookups:
    """Industry, size and tier as people type them, mapped to stored values."""

    def __init__(self) -> None:
        self.industries: dict[str, Industry] = {}
        for industry in Industry.objects.all():
            self.industries[industry.name.casefold()] = industry
            self.industries[industry.code.casefold()] = industry
        self.sizes: dict[str, str] = {}
        for value, label in SizeBand.choices:
            self.sizes[_size_key(value)] = value
            self.sizes[_size_key(str(label))] = value
        self.tiers = set(ValueTier.values)


def _size_key(text: str) -> str:
    text = text.casefold().strip()
    for dash in ("–", "—", "~", "～", "至"):
        text = text.replace(dash, "-")
    for noise in ("employees", "people", "人", " "):
        text = text.replace(noise, "")
    return text


def _split_line(line: str) -> list[str]:
    """Tab-separated if the line has a tab (pasted from a spreadsheet), else comma-separated
    (ASCII or full-width commas; quotes allowed)."""
    if "\t" in line:
        return [cell.strip() for cell in line.split("\t")]
    return [cell.strip() for cell in next(csv.reader([line.replace("，", ",")]), [])]


def _is_header(cells: list[str]) -> bool:
    first = cells[0].casefold() if cells else ""
    return first in COLUMNS["name"]


def _build_input(
    line: int, values: dict[str, str], lookups: _Lookups
) -> tuple[SimulatedInput | None, list[str]]:
    errors: list[str] = []
    where = _("Line %(line)d") % {"line": line}
    name = values.get("name", "").strip()
    if not name:
        errors.append(_("%(where)s: the name is missing.") % {"where": where})
    industry_text = values.get("industry", "").strip()
    industry: Industry | None = None
    if industry_text:
        industry = lookups.industries.get(industry_text.casefold())
        if industry is None:
            errors.append(
                _("%(where)s: unknown industry “%(industry)s”.")
                % {"where": where, "industry": industry_text}
            )
    size_text = values.get("size", "").strip()
    size_band = ""
    if size_text:
        size_band = lookups.sizes.get(_size_key(size_text), "")
        if not size_band:
            errors.append(
                _("%(where)s: unknown size “%(size)s” (use micro, small, medium, large or "
                  "enterprise, or a band such as 20–99).")
                % {"where": where, "size": size_text}
            )  # fmt: skip
    tier_text = values.get("tier", "").strip().upper()
    if tier_text and tier_text not in lookups.tiers:
        errors.append(
            _("%(where)s: unknown value tier “%(tier)s” (A, B, C or D).")
            % {"where": where, "tier": values.get("tier", "").strip()}
        )
    if errors:
        return None, errors
    address = values.get("address", "").strip()
    parsed = parse_address(address) if address else None
    notes: list[str] = []
    if address and (parsed is None or not parsed.code):
        notes.append(_("No region recognised in the address."))
    if not tier_text:
        notes.append(_("No value tier: C assumed (new customers start at C)."))
    facts = Facts(
        division_code=parsed.code if parsed is not None else "",
        industry_id=industry.pk if industry is not None else None,
        size_band=size_band,
        value_tier=tier_text or ValueTier.C,
    )
    region = ""
    if parsed is not None and parsed.code:
        region = parsed.district or parsed.city or parsed.province
    return (
        SimulatedInput(
            line=line,
            name=name,
            address=address,
            industry=industry.name if industry is not None else "",
            size_band=size_band,
            value_tier=facts.value_tier,
            facts=facts,
            region=region,
            notes=notes,
        ),
        [],
    )


def parse_pasted(text: str) -> tuple[list[SimulatedInput], list[str]]:
    """Lines of name, address, industry, size, tier (tab- or comma-separated; a header line
    naming the columns is skipped). Returns the good rows and one message per bad line."""
    lookups = _Lookups()
    inputs: list[SimulatedInput] = []
    errors: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        cells = _split_line(raw)
        if number == 1 and _is_header(cells):
            continue
        if len(cells) > len(ORDER):
            errors.append(
                _("Line %(line)d: %(count)d columns; expected at most 5 (name, address, "
                  "industry, size, tier).")
                % {"line": number, "count": len(cells)}
            )  # fmt: skip
            continue
        row, problems = _build_input(number, dict(zip(ORDER, cells, strict=False)), lookups)
        errors.extend(problems)
        if row is not None:
            inputs.append(row)
    return inputs, errors


def decode_upload(data: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), else GB18030 (what Excel saves in China)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def parse_csv(text: str) -> tuple[list[SimulatedInput], list[str]]:
    """An uploaded CSV with a header row naming the columns (English or Chinese)."""
    lookups = _Lookups()
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return [], [_("The file is empty.")]
    positions: dict[str, int] = {}
    for index, title in enumerate(header):
        key = title.strip().casefold()
        for column, names in COLUMNS.items():
            if key in names and column not in positions:
                positions[column] = index
    if "name" not in positions:
        return [], [
            _("The first row must name the columns; a “name” (名称) column is required. "
              "Accepted: name, address, industry, size, tier.")
        ]  # fmt: skip
    inputs: list[SimulatedInput] = []
    errors: list[str] = []
    for number, cells in enumerate(reader, 2):
        if not any(cell.strip() for cell in cells):
            continue
        values = {
            column: cells[index] if index < len(cells) else ""
            for column, index in positions.items()
        }
        row, problems = _build_input(number, values, lookups)
        errors.extend(problems)
        if row is not None:
            inputs.append(row)
    return inputs, errors


def pick_customers(
    text: str, *, limit_per_term: int = 10
) -> tuple[list[SimulatedInput], list[str]]:
    """Existing customers by id or by (part of) their name, one term per line or comma."""
    terms = [t.strip() for t in re.split(r"[\n,，;；]+", text) if t.strip()]
    ids = [int(t) for t in terms if t.isdigit()]
    found: dict[int, Customer] = {}
    errors: list[str] = []
    base = Customer.objects.filter(merged_into__isnull=True).select_related("industry", "owner")
    by_id = {c.pk: c for c in base.filter(pk__in=ids)} if ids else {}
    for term in terms:
        if term.isdigit():
            customer = by_id.get(int(term))
            if customer is None:
                errors.append(_("No customer has the id %(id)s.") % {"id": term})
            else:
                found.setdefault(customer.pk, customer)
            continue
        matches = list(base.filter(display_name__icontains=term).order_by("pk")[:limit_per_term])
        if not matches:
            errors.append(_("No customer's name contains “%(term)s”.") % {"term": term})
        for customer in matches:
            found.setdefault(customer.pk, customer)
    inputs = [
        SimulatedInput(
            line=0,
            name=customer.display_name,
            address=customer.address,
            industry=customer.industry.name if customer.industry else "",
            size_band=customer.size_band,
            value_tier=customer.value_tier,
            facts=selectors.facts_of(customer),
            region=customer.district or customer.city or customer.province,
            customer=customer,
        )
        for customer in found.values()
    ]
    return inputs, errors


def simulate(
    inputs: Iterable[SimulatedInput], *, other: RuleSet | None
) -> tuple[list[SimulatedRow], CompiledRuleSet | None, CompiledRuleSet | None]:
    """Resolve every input under the active rule set and under `other`."""
    active_set = selectors.active_rule_set()
    active = selectors.compile_rule_set(active_set) if active_set is not None else None
    compiled_other = selectors.compile_rule_set(other) if other is not None else None
    resolved = [
        (
            item,
            active.resolve(item.facts) if active is not None else None,
            compiled_other.resolve(item.facts) if compiled_other is not None else None,
        )
        for item in inputs
    ]
    team_ids = {t for _item, a, b in resolved for r in (a, b) if r is not None for t in r.team_ids}
    names = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))

    def labels(result: Resolution | None) -> list[str]:
        return [names.get(t, str(t)) for t in result.team_ids] if result is not None else []

    rows = [
        SimulatedRow(input=item, active=a, other=b, active_teams=labels(a), other_teams=labels(b))
        for item, a, b in resolved
    ]
    return rows, active, compiled_other


def comparable_rule_sets() -> QuerySet[RuleSet]:
    """Rule sets a simulation can compare with the active one: drafts first, then retired."""
    return (
        RuleSet.objects.exclude(status=RuleSetStatus.ACTIVE)
        .annotate(
            draft_first=Case(
                When(status=RuleSetStatus.DRAFT, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("draft_first", "-created_at", "-pk")
    )


def territory_paths(rule_set_ids: Iterable[int]) -> dict[int, str]:
    """ "华北 → 北京市 → 海淀区" for every territory of these rule sets (one query)."""
    rows = {
        pk: (parent, name)
        for pk, parent, name in Territory.objects.filter(
            rule_set_id__in=list(rule_set_ids)
        ).values_list("pk", "parent_id", "name")
    }
    paths: dict[int, str] = {}
    for pk in rows:
        parts: list[str] = []
        node: int | None = pk
        seen: set[int] = set()
        while node is not None and node in rows and node not in seen:
            seen.add(node)
            parent, name = rows[node]
            parts.append(name)
            node = parent
        paths[pk] = " → ".join(reversed(parts))
    return paths
