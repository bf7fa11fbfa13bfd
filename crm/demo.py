"""The demo organisation's logins, printed by `make run` and created by `seed_demo`."""

from __future__ import annotations

from dataclasses import dataclass

from crm.models import Role

DEMO_PASSWORD = "guishu-demo-2026"


@dataclass(frozen=True)
class DemoPerson:
    username: str
    display_name: str
    role: str
    team: str | None


DEMO_TEAMS: list[tuple[str, str | None, str]] = [
    # (team, parent team, manager username)
    ("华东销售部", None, "manager_east"),
    ("华北销售部", None, "manager_north"),
]

DEMO_PEOPLE: list[DemoPerson] = [
    DemoPerson("manager_east", "陈经理", Role.MANAGER, "华东销售部"),
    DemoPerson("manager_north", "赵经理", Role.MANAGER, "华北销售部"),
    DemoPerson("rep_wang", "王小明", Role.REP, "华东销售部"),
    DemoPerson("rep_li", "李娜", Role.REP, "华东销售部"),
    DemoPerson("rep_zhang", "张伟", Role.REP, "华东销售部"),
    DemoPerson("rep_liu", "刘洋", Role.REP, "华北销售部"),
    DemoPerson("rep_chen", "陈静", Role.REP, "华北销售部"),
    DemoPerson("rep_yang", "杨帆", Role.REP, "华北销售部"),
    DemoPerson("committee_sun", "孙主任", Role.COMMITTEE, None),
    DemoPerson("committee_zhou", "周委员", Role.COMMITTEE, None),
    DemoPerson("committee_wu", "吴委员", Role.COMMITTEE, None),
    DemoPerson("admin", "系统管理员", Role.ADMIN, None),
]


def demo_logins() -> list[tuple[str, str, str]]:
    """(username, password, role label) for every demo person."""
    return [(p.username, DEMO_PASSWORD, str(Role(p.role).label)) for p in DEMO_PEOPLE]
