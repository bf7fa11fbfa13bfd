"""Territory rules in memory: inheritance, validation, resolution and overlap detection.

A rule set is compiled once into plain objects (`CompiledRuleSet`); resolving a customer is
then a few dictionary lookups, the same code for one registration being typed and for a
million customers at activation, so the two can never disagree.

How a customer is resolved:
1. Every territory whose *effective* criteria all match is a candidate. Effective criteria
   are the territory's own, or its parent's for every dimension it leaves empty (a child
   narrows, never widens). Empty in every ancestor means "any".
2. A candidate whose descendant is also a candidate drops out: the more specific territory
   in a branch always wins (北京市 → 海淀区: a 海淀 customer belongs to 海淀区).
3. Of what is left, the lowest priority number wins. Two left with the same priority are an
   undecided overlap: the admin reports it and activation is refused; resolution still
   answers deterministically (the older territory) so that nothing ever fails at runtime.
4. No candidate: the rule set's default (a team's pool, or the national pool).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from crm.identity.regions import division_by_code, division_code_known

# A division code's prefixes, as stored on customers (2, 4 or 6 digits).
PREFIX_LENGTHS = (2, 4, 6)


def normalise_division_code(raw: str) -> str:
    """ "110000" → "11", "110100" → "1101", "110108" → "110108" (the form customers store)."""
    code = "".join(ch for ch in str(raw) if ch.isdigit())
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def division_prefixes(code: str) -> list[str]:
    return [code[:n] for n in PREFIX_LENGTHS if len(code) >= n]


@dataclass(frozen=True)
class Facts:
    """What the rules look at (a customer row, or a registration form still being typed)."""

    division_code: str = ""
    industry_id: int | None = None
    size_band: str = ""
    value_tier: str = ""


@dataclass
class TerritoryNode:
    """One territory as the admin entered it (own criteria only)."""

    id: int
    name: str
    parent_id: int | None = None
    priority: int = 100
    division_codes: tuple[str, ...] = ()
    industry_ids: frozenset[int] = frozenset()
    size_bands: frozenset[str] = frozenset()
    value_tiers: frozenset[str] = frozenset()
    team_ids: tuple[int, ...] = ()
    out_of_territory: str = ""


@dataclass
class CompiledTerritory:
    """A territory with its inherited (effective) criteria."""

    id: int
    name: str
    path: tuple[str, ...]
    parent_id: int | None
    ancestors: frozenset[int]
    depth: int
    priority: int
    # None: any (no criterion on this dimension anywhere up the tree).
    prefixes: tuple[str, ...] | None
    industry_ids: frozenset[int] | None
    size_bands: frozenset[str] | None
    value_tiers: frozenset[str] | None
    team_ids: tuple[int, ...]
    out_of_territory: str

    @property
    def label(self) -> str:
        return " → ".join(self.path)

    def matches(self, facts: Facts) -> bool:
        if self.prefixes is not None and not any(
            facts.division_code.startswith(p) for p in self.prefixes
        ):
            return False
        if self.industry_ids is not None and facts.industry_id not in self.industry_ids:
            return False
        if self.size_bands is not None and facts.size_band not in self.size_bands:
            return False
        return self.matches_beyond_region(facts)

    def matches_beyond_region(self, facts: Facts) -> bool:
        if self.industry_ids is not None and facts.industry_id not in self.industry_ids:
            return False
        if self.size_bands is not None and facts.size_band not in self.size_bands:
            return False
        return self.value_tiers is None or facts.value_tier in self.value_tiers


@dataclass(frozen=True)
class Resolution:
    """Where a customer belongs: the territory (None: the default), its responsible teams,
    the rule that matched and why, and what a registration by another team does."""

    territory_id: int | None
    territory_label: str
    team_ids: tuple[int, ...]
    policy: str  # allow | approval | route
    reason: str
    tied_with: tuple[int, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.territory_id is None


@dataclass
class Problem:
    """A validation problem of one territory (unknown code, empty criteria, widening, cycle)."""

    territory_id: int
    territory: str
    kind: str  # cycle | unknown_code | outside_parent | widens | empty | no_team
    message: str


@dataclass
class Overlap:
    """Two territories in different branches, with the same priority, that can match the same
    customers: nothing decides between them."""

    first: CompiledTerritory
    second: CompiledTerritory
    examples: list[object] = field(default_factory=list)


def _intersects(a: frozenset | None, b: frozenset | None) -> bool:
    return a is None or b is None or bool(a & b)


def _prefixes_intersect(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> bool:
    if a is None or b is None:
        return True
    return any(x.startswith(y) or y.startswith(x) for x in a for y in b)


class CompiledRuleSet:
    def __init__(
        self,
        nodes: Iterable[TerritoryNode],
        *,
        rule_set_id: int | None = None,
        default_team_id: int | None = None,
        default_label: str = "",
    ) -> None:
        self.rule_set_id = rule_set_id
        self.default_team_id = default_team_id
        self.default_label = default_label
        self.nodes: dict[int, TerritoryNode] = {node.id: node for node in nodes}
        self.problems: list[Problem] = []
        self.territories: dict[int, CompiledTerritory] = {}
        self._compile()
        self._by_prefix: dict[str, list[CompiledTerritory]] = {}
        self._anywhere: list[CompiledTerritory] = []
        self._region_cache: dict[str, tuple[CompiledTerritory, ...]] = {}
        for territory in self.territories.values():
            if territory.prefixes is None:
                self._anywhere.append(territory)
            else:
                for prefix in territory.prefixes:
                    self._by_prefix.setdefault(prefix, []).append(territory)

    # --- compiling ------------------------------------------------------------------------

    def _problem(self, node: TerritoryNode, kind: str, message: str) -> None:
        self.problems.append(
            Problem(territory_id=node.id, territory=node.name, kind=kind, message=message)
        )

    def _compile(self) -> None:
        cyclic: set[int] = set()
        for node in self.nodes.values():
            seen = [node.id]
            parent = node.parent_id
            while parent is not None and parent in self.nodes:
                if parent in seen:
                    cyclic.add(node.id)
                    self._problem(
                        node, "cycle", _("The parent chain loops back to this territory.")
                    )
                    break
                seen.append(parent)
                parent = self.nodes[parent].parent_id
        for node_id in sorted(self.nodes):
            if node_id not in cyclic:
                self._compile_node(node_id, cyclic)

    def _compile_node(self, node_id: int, cyclic: set[int]) -> CompiledTerritory | None:
        if node_id in self.territories:
            return self.territories[node_id]
        node = self.nodes[node_id]
        parent: CompiledTerritory | None = None
        if node.parent_id is not None:
            if node.parent_id not in self.nodes or node.parent_id in cyclic:
                return None
            parent = self._compile_node(node.parent_id, cyclic)
            if parent is None:
                return None

        prefixes: tuple[str, ...] | None = parent.prefixes if parent else None
        if node.division_codes:
            own = []
            for raw in node.division_codes:
                code = normalise_division_code(raw)
                if len(code) not in PREFIX_LENGTHS or not division_code_known(code):
                    self._problem(
                        node,
                        "unknown_code",
                        _("Unknown administrative division code: %(code)s") % {"code": raw},
                    )
                    continue
                own.append(code)
            if parent is not None and parent.prefixes is not None:
                for code in own:
                    if not any(code.startswith(p) for p in parent.prefixes):
                        self._problem(
                            node,
                            "outside_parent",
                            _("Division %(code)s lies outside the parent territory %(parent)s.")
                            % {"code": code, "parent": parent.name},
                        )
            prefixes = tuple(sorted(set(own))) if own else prefixes

        def narrowed(own: frozenset, inherited: frozenset | None, label: str) -> frozenset | None:
            if not own:
                return inherited
            if inherited is not None and not own <= inherited:
                self._problem(
                    node,
                    "widens",
                    _("The %(criterion)s widen the parent territory's; a child may only narrow.")
                    % {"criterion": label},
                )
            return own

        industry_ids = narrowed(
            node.industry_ids, parent.industry_ids if parent else None, _("industries")
        )
        size_bands = narrowed(node.size_bands, parent.size_bands if parent else None, _("sizes"))
        value_tiers = narrowed(
            node.value_tiers, parent.value_tiers if parent else None, _("value tiers")
        )
        if prefixes is None and industry_ids is None and size_bands is None and not value_tiers:
            self._problem(
                node,
                "empty",
                _("No criteria: a territory needs divisions, industries, sizes or value tiers."),
            )
        team_ids = node.team_ids or (parent.team_ids if parent else ())
        if not team_ids:
            self._problem(
                node, "no_team", _("No responsible team (here or in a parent territory).")
            )
        compiled = CompiledTerritory(
            id=node.id,
            name=node.name,
            path=(*(parent.path if parent else ()), node.name),
            parent_id=node.parent_id,
            ancestors=(parent.ancestors | {parent.id}) if parent else frozenset(),
            depth=(parent.depth + 1) if parent else 0,
            priority=node.priority,
            prefixes=prefixes,
            industry_ids=industry_ids,
            size_bands=size_bands,
            value_tiers=value_tiers,
            team_ids=tuple(team_ids),
            out_of_territory=node.out_of_territory
            or (parent.out_of_territory if parent else "allow"),
        )
        self.territories[node.id] = compiled
        return compiled

    # --- resolving ------------------------------------------------------------------------

    def _by_region(self, code: str) -> tuple[CompiledTerritory, ...]:
        """Territories whose region criterion a division code meets (or that have none),
        each once. Cached per code: a country has a few thousand of them, a batch over a
        million customers asks for the same ones again and again."""
        cached = self._region_cache.get(code)
        if cached is None:
            found: dict[int, CompiledTerritory] = {}
            for length in PREFIX_LENGTHS:
                if len(code) < length:
                    break
                for territory in self._by_prefix.get(code[:length], ()):
                    found[territory.id] = territory
            for territory in self._anywhere:
                found[territory.id] = territory
            cached = self._region_cache[code] = tuple(found.values())
        return cached

    def candidates(self, facts: Facts) -> list[CompiledTerritory]:
        """Every territory whose effective criteria all match."""
        return [t for t in self._by_region(facts.division_code) if t.matches_beyond_region(facts)]

    def _most_specific(self, facts: Facts) -> list[CompiledTerritory]:
        """The candidates no other candidate narrows, best first (priority, then age)."""
        matched = self.candidates(facts)
        if len(matched) > 1:
            covered = set().union(*(t.ancestors for t in matched))
            matched = [t for t in matched if t.id not in covered]
            matched.sort(key=lambda t: (t.priority, t.id))
        return matched

    def resolve_id(self, facts: Facts) -> int | None:
        """Only the territory's id: what a batch over a million customers needs."""
        specific = self._most_specific(facts)
        return specific[0].id if specific else None

    def resolve(self, facts: Facts) -> Resolution:
        specific = self._most_specific(facts)
        if not specific:
            return Resolution(
                territory_id=None,
                territory_label=self.default_label,
                team_ids=(self.default_team_id,) if self.default_team_id else (),
                policy="allow",
                reason=_("No territory matches: %(default)s applies.")
                % {"default": self.default_label},
            )
        winner = specific[0]
        tied = tuple(t.id for t in specific[1:] if t.priority == winner.priority)
        return Resolution(
            territory_id=winner.id,
            territory_label=winner.label,
            team_ids=winner.team_ids,
            policy=winner.out_of_territory,
            reason=self.explain(winner, facts, others=len(specific) - 1),
            tied_with=tied,
        )

    def explain(self, territory: CompiledTerritory, facts: Facts, *, others: int = 0) -> str:
        parts = []
        if territory.prefixes is not None:
            prefix = next(p for p in territory.prefixes if facts.division_code.startswith(p))
            division = division_by_code(prefix)
            parts.append(_("region %(region)s") % {"region": division.name if division else prefix})
        if territory.industry_ids is not None:
            parts.append(_("industry"))
        if territory.size_bands is not None:
            parts.append(_("size"))
        if territory.value_tiers is not None:
            parts.append(_("value tier %(tier)s") % {"tier": facts.value_tier})
        reason = _("%(territory)s matches on %(criteria)s (priority %(priority)d)") % {
            "territory": territory.label,
            "criteria": _(", ").join(parts),
            "priority": territory.priority,
        }
        if others:
            reason += _("; it wins over %(count)d other matching territories") % {"count": others}
        return reason

    # --- overlaps -------------------------------------------------------------------------

    def overlaps(self) -> list[Overlap]:
        """Pairs in different branches with the same priority whose criteria intersect.

        Conservative: a pair is reported even if more specific children happen to decide
        every shared customer. Candidate pairs come from the division index (only codes on
        one line of descent can intersect) plus the territories without a division."""
        found: list[Overlap] = []
        seen: set[tuple[int, int]] = set()
        keys = list(self._by_prefix)
        for a in self.territories.values():
            if a.prefixes is None:
                others: Iterable[CompiledTerritory] = self.territories.values()
            else:
                pool: dict[int, CompiledTerritory] = {t.id: t for t in self._anywhere}
                for prefix in a.prefixes:
                    for ancestor in division_prefixes(prefix):
                        for t in self._by_prefix.get(ancestor, ()):
                            pool[t.id] = t
                    for key in keys:
                        if key.startswith(prefix):
                            for t in self._by_prefix[key]:
                                pool[t.id] = t
                others = pool.values()
            for b in others:
                pair = (min(a.id, b.id), max(a.id, b.id))
                if a.id == b.id or pair in seen or a.priority != b.priority:
                    continue
                seen.add(pair)
                if a.id in b.ancestors or b.id in a.ancestors:
                    continue
                if (
                    _prefixes_intersect(a.prefixes, b.prefixes)
                    and _intersects(a.industry_ids, b.industry_ids)
                    and _intersects(a.size_bands, b.size_bands)
                    and _intersects(a.value_tiers, b.value_tiers)
                ):
                    first, second = sorted((a, b), key=lambda t: t.id)
                    found.append(Overlap(first=first, second=second))
        found.sort(key=lambda o: (o.first.id, o.second.id))
        return found
