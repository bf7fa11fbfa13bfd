"""A small territory rule set for the registration and pool suites: one territory per
out-of-territory policy, all looked after by the north team except 华东 (the east team)."""

from __future__ import annotations

from crm.models import Team, User
from ownership.models import OutOfTerritoryPolicy, RuleSet
from ownership.territories.services import rule_set_activate
from tests.ownership.territory_helpers import territory

ADDRESS = {
    "beijing": "北京市海淀区中关村大街1号",  # 华北: approval by the north team's manager
    "tianjin": "天津市和平区南京路1号",  # 天津: routed to the north team's pool
    "guangdong": "广东省深圳市南山区科技园1号",  # 华南: anyone may register
    "shanghai": "上海市浦东新区世纪大道100号",  # 华东: the east team's own
    "chongqing": "重庆市渝中区解放碑1号",  # no territory: the rule set's default
}


def activate_rule_set(
    *, actor: User, east: Team, north: Team, default_team: Team | None = None
) -> RuleSet:
    rule_set = RuleSet.objects.create(name="2026 区域划分", default_team=default_team)
    territory(
        rule_set,
        "华北",
        division_codes=["11"],
        teams=[north],
        out_of_territory=OutOfTerritoryPolicy.APPROVAL,
    )
    territory(
        rule_set,
        "天津",
        division_codes=["12"],
        teams=[north],
        out_of_territory=OutOfTerritoryPolicy.ROUTE,
    )
    territory(rule_set, "华南", division_codes=["44"], teams=[north])
    territory(
        rule_set,
        "华东",
        division_codes=["31"],
        teams=[east],
        out_of_territory=OutOfTerritoryPolicy.APPROVAL,
    )
    rule_set_activate(actor=actor, rule_set=rule_set)
    return rule_set
