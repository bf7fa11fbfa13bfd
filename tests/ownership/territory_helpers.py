"""Shared builders of the territory page and admin tests: a rule set over 北京 and 上海 with
the personas' teams, and customers that lie in or out of their owner's territory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crm.models import Customer, Industry, Team, User
from ownership.models import RuleSet, Territory
from tests.factories import CustomerFactory

BEIJING, HAIDIAN, SHANGHAI, PUDONG = "11", "110108", "31", "310115"
ADDRESSES = {
    HAIDIAN: "北京市海淀区中关村大街1号",
    BEIJING: "北京市朝阳区建国路88号",
    PUDONG: "上海市浦东新区世纪大道100号",
    SHANGHAI: "上海市黄浦区南京东路1号",
}


def industry(code: str = "software", name: str = "软件") -> Industry:
    found, _created = Industry.objects.get_or_create(code=code, defaults={"name": name})
    return found


def territory(
    rule_set: RuleSet,
    name: str,
    *,
    parent: Territory | None = None,
    teams: Iterable[Team] = (),
    industries: Iterable[Industry] = (),
    **fields: Any,
) -> Territory:
    created = Territory.objects.create(rule_set=rule_set, parent=parent, name=name, **fields)
    created.teams.set(list(teams))
    created.industries.set(list(industries))
    return created


def two_region_rule_set(east: Team, north: Team, *, name: str = "2026 版") -> RuleSet:
    """华北 (北京, the north team) and 华东 (上海, the east team), 海淀区 below 华北."""
    rule_set = RuleSet.objects.create(name=name)
    north_territory = territory(rule_set, "华北", division_codes=[BEIJING], teams=[north])
    territory(rule_set, "海淀区", parent=north_territory, division_codes=[HAIDIAN])
    territory(rule_set, "华东", division_codes=[SHANGHAI], teams=[east])
    return rule_set


def customer_in(
    division: str, *, owner: User | None = None, name: str = "", **kwargs: Any
) -> Customer:
    fields: dict[str, Any] = {"address": ADDRESSES[division], "owner": owner, **kwargs}
    if name:
        fields["display_name"] = name
    return CustomerFactory(**fields)
