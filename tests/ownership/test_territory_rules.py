"""Territory rules in memory: inheritance, priority, validation and overlap detection."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ownership.territories.rules import (
    CompiledRuleSet,
    Facts,
    TerritoryNode,
    normalise_division_code,
)

# Real GB/T 2260 codes (short form): 北京 11 → 海淀 110108 / 朝阳 110105; 上海 31 → 浦东 310115;
# 广东 44 → 广州 4401 → 天河 440106; 深圳 4403.
BEIJING, HAIDIAN, CHAOYANG = "11", "110108", "110105"
SHANGHAI, PUDONG = "31", "310115"
GUANGDONG, GUANGZHOU, TIANHE, SHENZHEN = "44", "4401", "440106", "4403"
SOFTWARE, MANUFACTURING = 1, 2
NORTH, EAST, SOUTH, KEY_ACCOUNTS = 10, 20, 30, 40


def node(id: int, name: str, **kwargs: object) -> TerritoryNode:
    return TerritoryNode(id=id, name=name, **kwargs)  # type: ignore[arg-type]


def standard_tree() -> list[TerritoryNode]:
    return [
        node(1, "华北", division_codes=(BEIJING,), team_ids=(NORTH,)),
        node(2, "海淀区", parent_id=1, division_codes=(HAIDIAN,)),
        node(3, "华东", division_codes=(SHANGHAI,), team_ids=(EAST,), out_of_territory="route"),
        node(4, "华南", division_codes=(GUANGDONG,), team_ids=(SOUTH,)),
        node(
            5,
            "广州软件",
            parent_id=4,
            division_codes=(GUANGZHOU,),
            industry_ids=frozenset({SOFTWARE}),
        ),
        node(
            6,
            "全国重点客户",
            priority=1,
            value_tiers=frozenset({"A"}),
            team_ids=(KEY_ACCOUNTS,),
            out_of_territory="approval",
        ),
    ]


def test_division_codes_are_normalised_to_the_short_form() -> None:
    assert normalise_division_code("110000") == "11"
    assert normalise_division_code("110100") == "1101"
    assert normalise_division_code("110108") == "110108"
    assert normalise_division_code(" 44 01 00 ") == "4401"


def test_a_customer_resolves_to_the_most_specific_territory_of_its_branch() -> None:
    rules = CompiledRuleSet(standard_tree())
    assert not rules.problems
    haidian = rules.resolve(Facts(division_code=HAIDIAN, value_tier="C"))
    assert haidian.territory_id == 2
    assert haidian.territory_label == "华北 → 海淀区"
    assert haidian.team_ids == (NORTH,)  # inherited from 华北
    chaoyang = rules.resolve(Facts(division_code=CHAOYANG, value_tier="C"))
    assert chaoyang.territory_id == 1


def test_a_child_inherits_what_it_leaves_empty_and_narrows_the_rest() -> None:
    rules = CompiledRuleSet(standard_tree())
    guangzhou_software = rules.resolve(
        Facts(division_code=TIANHE, industry_id=SOFTWARE, value_tier="B")
    )
    assert guangzhou_software.territory_id == 5
    guangzhou_factory = rules.resolve(
        Facts(division_code=TIANHE, industry_id=MANUFACTURING, value_tier="B")
    )
    assert guangzhou_factory.territory_id == 4
    shenzhen_software = rules.resolve(
        Facts(division_code=SHENZHEN, industry_id=SOFTWARE, value_tier="B")
    )
    assert shenzhen_software.territory_id == 4


def test_priority_decides_between_branches() -> None:
    rules = CompiledRuleSet(standard_tree())
    key_account = rules.resolve(Facts(division_code=HAIDIAN, value_tier="A"))
    assert key_account.territory_id == 6
    assert key_account.team_ids == (KEY_ACCOUNTS,)
    assert key_account.policy == "approval"
    assert "1" in key_account.reason
    assert not key_account.tied_with


def test_policies_are_inherited_and_default_to_allow() -> None:
    rules = CompiledRuleSet(
        [*standard_tree(), node(7, "浦东新区", parent_id=3, division_codes=(PUDONG,))]
    )
    assert rules.resolve(Facts(division_code=PUDONG, value_tier="C")).policy == "route"
    assert rules.resolve(Facts(division_code=HAIDIAN, value_tier="C")).policy == "allow"


def test_no_match_falls_back_to_the_default() -> None:
    rules = CompiledRuleSet(standard_tree(), default_team_id=99, default_label="全国公海")
    nowhere = rules.resolve(Facts(division_code="65", value_tier="C"))  # 新疆
    assert nowhere.is_default
    assert nowhere.team_ids == (99,)
    assert "全国公海" in nowhere.reason
    unknown_address = rules.resolve(Facts(division_code="", value_tier="C"))
    assert unknown_address.is_default


def test_validation_names_unknown_codes_empty_criteria_widening_and_cycles() -> None:
    rules = CompiledRuleSet(
        [
            node(1, "华北", division_codes=(BEIJING,), team_ids=(NORTH,)),
            node(2, "火星", division_codes=("990000",), team_ids=(NORTH,)),
            node(3, "什么都管", team_ids=(NORTH,)),
            node(4, "越界", parent_id=1, division_codes=(SHANGHAI,)),
            node(5, "甲", parent_id=6, division_codes=(HAIDIAN,), team_ids=(NORTH,)),
            node(6, "乙", parent_id=5, division_codes=(HAIDIAN,), team_ids=(NORTH,)),
            node(7, "无团队", division_codes=(GUANGDONG,)),
            node(8, "软件", industry_ids=frozenset({SOFTWARE}), team_ids=(NORTH,)),
            node(9, "扩大行业", parent_id=8, industry_ids=frozenset({SOFTWARE, MANUFACTURING})),
        ]
    )
    by_territory: dict[int, list[str]] = {}
    for problem in rules.problems:
        by_territory.setdefault(problem.territory_id, []).append(problem.message)
    assert set(by_territory) == {2, 3, 4, 5, 6, 7, 9}
    assert any("990000" in message for message in by_territory[2])
    kinds = {(p.territory_id, p.kind) for p in rules.problems}
    assert {
        (2, "unknown_code"),
        (3, "empty"),
        (4, "outside_parent"),
        (5, "cycle"),
        (6, "cycle"),
        (7, "no_team"),
        (9, "widens"),
    } <= kinds
    assert 1 not in by_territory and 8 not in by_territory


def test_overlaps_need_the_same_priority_different_branches_and_shared_customers() -> None:
    rules = CompiledRuleSet(
        [
            node(1, "北京", division_codes=(BEIJING,), team_ids=(NORTH,)),
            node(
                2,
                "北京软件",
                division_codes=(BEIJING,),
                industry_ids=frozenset({SOFTWARE}),
                team_ids=(EAST,),
            ),
            node(3, "海淀", parent_id=1, division_codes=(HAIDIAN,)),
            node(4, "上海", division_codes=(SHANGHAI,), team_ids=(EAST,)),
            node(5, "制造业", industry_ids=frozenset({MANUFACTURING}), team_ids=(SOUTH,)),
            node(6, "重点", priority=1, value_tiers=frozenset({"A"}), team_ids=(KEY_ACCOUNTS,)),
        ]
    )
    pairs = {(o.first.id, o.second.id) for o in rules.overlaps()}
    # 北京 / 北京软件: same division, one has no industry criterion. 海淀 is inside both.
    # 制造业 has no division: it meets every regional territory of its priority.
    assert pairs == {(1, 2), (2, 3), (1, 5), (3, 5), (4, 5)}
    # A tie resolves deterministically and says so.
    tied = rules.resolve(Facts(division_code=HAIDIAN, industry_id=SOFTWARE, value_tier="C"))
    assert tied.territory_id == 2 and tied.tied_with == (3,)


def test_priority_resolves_an_overlap() -> None:
    rules = CompiledRuleSet(
        [
            node(1, "北京", division_codes=(BEIJING,), team_ids=(NORTH,)),
            node(
                2,
                "北京软件",
                priority=10,
                division_codes=(BEIJING,),
                industry_ids=frozenset({SOFTWARE}),
                team_ids=(EAST,),
            ),
        ]
    )
    assert rules.overlaps() == []
    assert rules.resolve(Facts(division_code=HAIDIAN, industry_id=SOFTWARE)).territory_id == 2
    assert rules.resolve(Facts(division_code=HAIDIAN, industry_id=MANUFACTURING)).territory_id == 1


# --- many shapes of trees ---------------------------------------------------------------

CODES = [BEIJING, HAIDIAN, CHAOYANG, SHANGHAI, PUDONG, GUANGDONG, GUANGZHOU, TIANHE, SHENZHEN]
CUSTOMER_CODES = ["", HAIDIAN, CHAOYANG, PUDONG, TIANHE, SHENZHEN, "4402", "65"]
INDUSTRIES = [None, SOFTWARE, MANUFACTURING, 3]
TIERS = ["A", "B", "C", "D"]


@st.composite
def trees(draw: st.DrawFn) -> list[TerritoryNode]:
    size = draw(st.integers(min_value=1, max_value=9))
    nodes = []
    for i in range(1, size + 1):
        parent = (
            draw(st.one_of(st.none(), st.integers(min_value=1, max_value=i - 1))) if i > 1 else None
        )
        nodes.append(
            node(
                i,
                f"T{i}",
                parent_id=parent,
                priority=draw(st.sampled_from([1, 5, 100])),
                division_codes=tuple(
                    draw(st.lists(st.sampled_from(CODES), max_size=2, unique=True))
                ),
                industry_ids=frozenset(
                    draw(st.lists(st.sampled_from([SOFTWARE, MANUFACTURING, 3]), max_size=2))
                ),
                value_tiers=frozenset(draw(st.lists(st.sampled_from(TIERS), max_size=2))),
                team_ids=(draw(st.sampled_from([NORTH, EAST, SOUTH])),),
            )
        )
    return nodes


def all_facts() -> list[Facts]:
    return [
        Facts(division_code=code, industry_id=industry, value_tier=tier)
        for code, industry, tier in itertools.product(CUSTOMER_CODES, INDUSTRIES, TIERS)
    ]


def brute_force_matches(rules: CompiledRuleSet, facts: Facts) -> set[int]:
    return {t.id for t in rules.territories.values() if t.matches(facts)}


@settings(max_examples=150, deadline=None)
@given(trees())
def test_resolution_agrees_with_a_brute_force_reading_of_the_rules(
    nodes: list[TerritoryNode],
) -> None:
    rules = CompiledRuleSet(nodes)
    for facts in all_facts():
        result = rules.resolve(facts)
        matches = brute_force_matches(rules, facts)
        if not matches:
            assert result.territory_id is None
            continue
        assert result.territory_id in matches
        winner = rules.territories[result.territory_id]
        # No matching descendant of the winner exists (the most specific wins) ...
        assert not any(winner.id in rules.territories[m].ancestors for m in matches)
        # ... and no other most-specific match has a lower priority number.
        specific = [
            rules.territories[m]
            for m in matches
            if not any(m in rules.territories[o].ancestors for o in matches)
        ]
        assert winner.priority == min(t.priority for t in specific)


@settings(max_examples=150, deadline=None)
@given(trees())
def test_every_tie_in_resolution_is_reported_as_an_overlap(nodes: list[TerritoryNode]) -> None:
    rules = CompiledRuleSet(nodes)
    reported = {(o.first.id, o.second.id) for o in rules.overlaps()}
    for facts in all_facts():
        result = rules.resolve(facts)
        for other in result.tied_with:
            assert result.territory_id is not None
            pair = (min(result.territory_id, other), max(result.territory_id, other))
            assert pair in reported, (facts, pair)


@settings(max_examples=100, deadline=None)
@given(trees())
def test_a_child_never_matches_a_customer_its_parent_does_not(nodes: list[TerritoryNode]) -> None:
    rules = CompiledRuleSet(nodes)
    for facts in all_facts():
        for territory in rules.territories.values():
            if territory.matches(facts) and territory.parent_id in rules.territories:
                parent = rules.territories[territory.parent_id]
                widening = any(
                    p.territory_id == territory.id and p.kind in ("widens", "outside_parent")
                    for p in rules.problems
                )
                assert parent.matches(facts) or widening
