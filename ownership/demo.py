"""Demo data of territories, the ownership review and the funnel report (called by
`manage.py seed_demo`).

Territories: an active rule set over the demo's provinces (华东: 上海/江苏/浙江/安徽 for
华东销售部; 华北: 北京/天津/河北/山东/山西/辽宁/河南 for 华北销售部), with the financial and IT
industries of 京津 carved out for 华东销售部's key-account desk by priority (an overlap
resolved by priority), approval required for registrations into 华北 by other teams, a
stricter clock in 上海市, and a draft copy to simulate against.

The workflow apps seed their customers after this app (INSTALLED_APPS order), so the first
review run and funnel snapshot are taken once the whole demo has committed. Idempotent:
nothing happens when a run and a snapshot exist."""

from __future__ import annotations

from contextlib import suppress

from django.db import transaction

from crm.funnel import funnel_snapshot_take
from crm.models import FunnelSnapshot
from ownership.models import ReviewRun
from ownership.review import ReviewAlreadyRunning, review_run


def seed() -> str:
    territories = seed_territories()
    if ReviewRun.objects.exists() and FunnelSnapshot.objects.exists():
        return f"{territories}; review run and funnel snapshot already there"
    transaction.on_commit(_after_demo)
    return f"{territories}; review run and funnel snapshot once the demo is committed"


DEMO_RULE_SET = "2026 销售区域"

# (name, parent, division codes, industry codes, teams, priority, out-of-territory policy)
DEMO_TERRITORIES: list[tuple[str, str | None, list[str], list[str], list[str], int, str]] = [
    ("华东大区", None, ["31", "32", "33", "34"], [], ["华东销售部"], 100, "allow"),
    ("上海市", "华东大区", ["31"], [], [], 100, ""),
    ("江苏省", "华东大区", ["32"], [], [], 100, ""),
    ("浙江省", "华东大区", ["33"], [], [], 100, ""),
    ("杭州市", "浙江省", ["3301"], [], [], 100, ""),
    ("安徽省", "华东大区", ["34"], [], [], 100, "route"),
    ("华北大区", None, ["11", "12", "13", "14", "21", "37", "41"], [], ["华北销售部"], 100,
     "approval"),
    ("北京市", "华北大区", ["11"], [], [], 100, ""),
    ("海淀区", "北京市", ["110108"], [], [], 100, ""),
    ("天津市", "华北大区", ["12"], [], [], 100, ""),
    ("河北省", "华北大区", ["13"], [], [], 100, ""),
    ("山东省", "华北大区", ["37"], [], [], 100, ""),
    # Overlaps 北京市 / 天津市 for two industries; decided by its lower priority number.
    ("京津金融与信息技术", None, ["11", "12"], ["finance", "it"], ["华东销售部"], 10, "approval"),
]  # fmt: skip


def seed_territories() -> str:
    """The demo rule set, activated, plus a draft copy; idempotent."""
    from crm.models import Industry, Team, User
    from ownership.models import PoolPolicy, RuleSet, Territory
    from ownership.territories import services as territory_services

    if RuleSet.objects.filter(name=DEMO_RULE_SET).exists():
        return "territories already there"
    admin = User.objects.filter(username="admin").first()
    rule_set = RuleSet.objects.create(
        name=DEMO_RULE_SET,
        created_by=admin,
        notes="按省份划分华东、华北大区；京津的金融与信息技术客户由华东销售部大客户组负责。",
    )
    teams = {team.name: team for team in Team.objects.all()}
    industries = {industry.code: industry for industry in Industry.objects.all()}
    made: dict[str, Territory] = {}
    for name, parent, codes, industry_codes, team_names, priority, policy in DEMO_TERRITORIES:
        territory = Territory.objects.create(
            rule_set=rule_set,
            parent=made.get(parent) if parent else None,
            name=name,
            division_codes=codes,
            priority=priority,
            out_of_territory=policy,
        )
        territory.industries.set([industries[c] for c in industry_codes if c in industries])
        territory.teams.set([teams[t] for t in team_names if t in teams])
        made[name] = territory
    PoolPolicy.objects.create(
        territory=made["上海市"],
        days_without_follow_up=20,
        days_to_reach_50=45,
        days_to_reach_100=150,
        warning_days=5,
    )
    activation = territory_services.rule_set_activate(actor=admin, rule_set=rule_set)
    territory_services.rule_set_copy(actor=admin, source=rule_set, name="2027 销售区域（草稿）")  # type: ignore[arg-type]
    return (
        f"territory rule set with {len(made)} territories active "
        f"({activation.customers_resolved} customers resolved) and a draft"
    )


def _after_demo() -> None:
    from ownership.territories.services import customer_territories_catch_up

    customer_territories_catch_up()
    if not ReviewRun.objects.exists():
        # If the nightly run is at it, it produces the same demo figures.
        with suppress(ReviewAlreadyRunning):
            review_run()
    if not FunnelSnapshot.objects.exists():
        funnel_snapshot_take()
