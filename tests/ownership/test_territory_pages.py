"""Managers' territories (read-only, with customer counts, constant queries) and the
administrators' simulation of customers under the active rule set and a draft."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from crm.models import Customer, Role, Team, User
from ownership.models import OwnershipEvent, RuleSet, Territory
from ownership.territories.services import rule_set_activate, rule_set_copy
from ownership.territory_reports import MAX_SIMULATED_ROWS
from tests.conftest import login
from tests.factories import TeamFactory, UserFactory
from tests.ownership.territory_helpers import (
    HAIDIAN,
    PUDONG,
    SHANGHAI,
    customer_in,
    industry,
    territory,
    two_region_rule_set,
)


@pytest.fixture
def active(team: Team, other_team: Team, crm_admin: User) -> RuleSet:
    rule_set = two_region_rule_set(east=team, north=other_team)
    rule_set_activate(actor=crm_admin, rule_set=rule_set)
    return rule_set


# --- my territories ------------------------------------------------------------------------


def test_a_manager_sees_the_territories_of_their_teams_with_counts(
    client: Client, manager: User, rep: User, other_team: Team, active: RuleSet
) -> None:
    customer_in(PUDONG, owner=rep)
    customer_in(SHANGHAI)
    customer_in(SHANGHAI)
    customer_in(HAIDIAN, owner=rep)  # in the north team's territory
    from ownership.territories.services import customer_territories_recompute

    customer_territories_recompute(rule_set=active)
    login(client, manager)
    response = client.get(reverse("territory_mine"))
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [row.name for row in rows] == ["华东"]
    assert (rows[0].customers, rows[0].owned, rows[0].in_pool) == (3, 1, 2)
    body = response.content.decode()
    assert "我的区域" in body and "地区：31 上海市" in body and "华东销售部" in body
    assert "华北" not in body


def test_an_administrator_sees_the_whole_tree_with_inherited_teams(
    client: Client, crm_admin: User, active: RuleSet
) -> None:
    customer_in(HAIDIAN)
    from ownership.territories.services import customer_territories_recompute

    customer_territories_recompute(rule_set=active)
    login(client, crm_admin)
    response = client.get(reverse("territory_mine"))
    rows = {row.name: row for row in response.context["rows"]}
    assert list(rows) == ["华东", "华北", "海淀区"]
    assert rows["海淀区"].teams == ["华北销售部"] and rows["海淀区"].teams_inherited
    assert rows["海淀区"].depth == 1 and rows["海淀区"].customers == 1
    assert rows["华北"].customers == 0  # a customer counts where it resolves, not above


def test_my_territories_take_a_constant_number_of_queries(
    client: Client,
    manager: User,
    crm_admin: User,
    team: Team,
    active: RuleSet,
    django_assert_max_num_queries: Any,
) -> None:
    login(client, manager)
    client.get(reverse("territory_mine"))  # warm the compiled rule set's cache
    # The same bound for a tree of three territories and one of eighteen.
    with django_assert_max_num_queries(11):
        client.get(reverse("territory_mine"))
    bigger = rule_set_copy(actor=crm_admin, source=active, name="更细的版本")
    east = Territory.objects.get(rule_set=bigger, name="华东")
    for n in range(15):
        child = territory(bigger, f"上海分区{n}", parent=east, division_codes=[PUDONG])
        if n % 3 == 0:
            child.teams.set([team])
        customer_in(PUDONG)
    # Distinct priorities: siblings over the same district must not tie.
    for n, child in enumerate(Territory.objects.filter(rule_set=bigger, parent=east)):
        Territory.objects.filter(pk=child.pk).update(priority=n + 1)
    rule_set_activate(actor=crm_admin, rule_set=bigger)
    client.get(reverse("territory_mine"))
    with django_assert_max_num_queries(11):
        response = client.get(reverse("territory_mine"))
    assert len(response.context["rows"]) == 16


def test_reps_and_the_committee_have_no_territory_page(
    client: Client, rep: User, committee_member: User
) -> None:
    for user in (rep, committee_member):
        client.logout()
        login(client, user)
        assert client.get(reverse("territory_mine")).status_code == 403


def test_without_an_active_rule_set_the_page_says_so(client: Client, manager: User) -> None:
    login(client, manager)
    body = client.get(reverse("territory_mine")).content.decode()
    assert "目前没有生效的区域规则集" in body


# --- simulation ----------------------------------------------------------------------------


@pytest.fixture
def draft(active: RuleSet, crm_admin: User, team: Team) -> RuleSet:
    """A copy of the active set where 海淀 software companies go to a new key-account team."""
    copy = rule_set_copy(actor=crm_admin, source=active, name="2027 草案")
    key_accounts: Team = TeamFactory(name="大客户部")
    territory(
        copy,
        "海淀软件",
        division_codes=[HAIDIAN],
        industries=[industry()],
        teams=[key_accounts],
        priority=10,
    )
    return copy


def _simulate(client: Client, **data: Any) -> Any:
    return client.post(reverse("territory_simulate"), data)


def test_pasted_lines_are_resolved_side_by_side_with_differences_marked(
    client: Client, crm_admin: User, draft: RuleSet
) -> None:
    # Not only the seeded rows: transactional tests elsewhere empty the industry table.
    industry("manufacturing", "制造业")
    login(client, crm_admin)
    lines = "\n".join(
        [
            "名称\t地址\t行业\t规模\t等级",
            "北京海淀软件甲公司\t北京市海淀区中关村大街1号\t软件\t20-99\tB",
            "上海浦东乙公司,上海市浦东新区世纪大道100号,制造业,medium,a",
            "没有地址的丙公司",
            "\t北京市海淀区\t软件",
            "丁公司,北京市,不存在的行业,巨大,Z",
            "戊公司,北京,软件,small,B,多余",
        ]
    )
    response = _simulate(client, lines=lines, rule_set=draft.pk)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [row.input.name for row in rows] == [
        "北京海淀软件甲公司",
        "上海浦东乙公司",
        "没有地址的丙公司",
    ]
    first, second, third = rows
    assert first.active.territory_label == "华北 → 海淀区"
    assert first.other.territory_label == "海淀软件" and first.other_teams == ["大客户部"]
    assert first.differs and not second.differs
    assert second.active_teams == ["华东销售部"] and second.input.value_tier == "A"
    assert third.active.territory_id is None
    assert third.input.value_tier == "C" and any("按 C 处理" in n for n in third.input.notes)
    assert response.context["changed"] == 1
    body = response.content.decode()
    assert "table-warning" in body and "有变化" in body
    errors = response.context["errors"]
    assert "第 5 行：缺少名称。" in errors
    assert any(e.startswith("第 6 行：未知的行业“不存在的行业”") for e in errors)
    assert any(e.startswith("第 6 行：未知的规模“巨大”") for e in errors)
    assert any(e.startswith("第 6 行：未知的价值等级“Z”") for e in errors)
    assert any(e.startswith("第 7 行：有 6 列") for e in errors)


def test_an_uploaded_csv_with_chinese_headers_in_gb18030(
    client: Client, crm_admin: User, draft: RuleSet
) -> None:
    login(client, crm_admin)
    content = "地址,名称,行业\n北京市海淀区中关村,北京海淀软件甲公司,软件\n,上海乙公司,\n".encode(
        "gb18030"
    )
    upload = SimpleUploadedFile("客户.csv", content, content_type="text/csv")
    response = _simulate(client, upload=upload, rule_set=draft.pk)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [row.input.name for row in rows] == ["北京海淀软件甲公司", "上海乙公司"]
    assert rows[0].other.territory_label == "海淀软件"
    # A file without a name column, and a spreadsheet that is not CSV.
    upload = SimpleUploadedFile("x.csv", b"foo,bar\n1,2\n", content_type="text/csv")
    response = _simulate(client, upload=upload)
    assert any("必须有“名称”" in e for e in response.context["errors"])
    upload = SimpleUploadedFile("x.xlsx", b"PK\x03\x04", content_type="application/zip")
    response = _simulate(client, upload=upload)
    assert response.status_code == 400
    assert "请上传 .csv 文件" in response.content.decode()


def test_existing_customers_are_picked_by_id_or_name(
    client: Client, crm_admin: User, draft: RuleSet
) -> None:
    software = industry()
    one = customer_in(HAIDIAN, name="北京中关村软件一号有限公司", industry=software)
    two = customer_in(PUDONG, name="上海浦东物流二号有限公司")
    login(client, crm_admin)
    response = _simulate(
        client, customers=f"{one.pk}，浦东物流, 999999, 不存在的名字", rule_set=draft.pk
    )
    rows = response.context["rows"]
    assert [row.input.customer for row in rows] == [one, two]
    assert rows[0].differs and not rows[1].differs
    assert "没有编号为 999999 的客户。" in response.context["errors"]
    assert "没有名称包含“不存在的名字”的客户。" in response.context["errors"]


def test_bad_input_is_explained_and_never_a_500(
    client: Client, crm_admin: User, active: RuleSet
) -> None:
    login(client, crm_admin)
    response = _simulate(client)
    assert response.status_code == 400
    assert "请粘贴几行客户" in response.content.decode()
    many = "\n".join(f"公司{n}" for n in range(MAX_SIMULATED_ROWS + 2))
    response = _simulate(client, lines=many)
    assert response.status_code == 400
    assert f"每次最多 {MAX_SIMULATED_ROWS} 行" in response.content.decode()
    response = _simulate(client, lines="好公司", rule_set="not-a-number")
    assert response.status_code == 400
    upload = SimpleUploadedFile("bad.csv", b"\xff\xfe\x00\x81\x30", content_type="text/csv")
    response = _simulate(client, upload=upload)
    assert response.status_code in (200, 400)


def test_simulation_writes_nothing_and_is_for_administrators(
    client: Client, personas: dict[str, User], draft: RuleSet
) -> None:
    before = (Customer.objects.count(), OwnershipEvent.objects.count(), Territory.objects.count())
    login(client, personas["admin"])
    assert client.get(reverse("territory_simulate")).status_code == 200
    _simulate(client, lines="北京海淀软件甲公司,北京市海淀区,软件", rule_set=draft.pk)
    for persona in ("rep", "manager", "committee"):
        client.logout()
        login(client, personas[persona])
        assert client.get(reverse("territory_simulate")).status_code == 403
        assert _simulate(client, lines="x").status_code == 403
    after = (Customer.objects.count(), OwnershipEvent.objects.count(), Territory.objects.count())
    assert after == before


def test_the_draft_is_preselected_from_the_rule_set_page(
    client: Client, crm_admin: User, draft: RuleSet
) -> None:
    login(client, crm_admin)
    form = client.get(reverse("territory_simulate")).context["form"]
    assert form.initial["rule_set"] == draft.pk
    form = client.get(reverse("territory_simulate"), {"rule_set": draft.pk}).context["form"]
    assert form.initial["rule_set"] == draft.pk


def test_a_manager_of_a_sub_team_sees_the_parent_teams_territory_only_if_assigned(
    client: Client, team: Team, active: RuleSet
) -> None:
    sub: Team = TeamFactory(name="华东一组", parent=team)
    lead = UserFactory(username="sublead", role=Role.MANAGER, team=sub)
    sub.manager = lead
    sub.save(update_fields=["manager"])
    login(client, lead)
    assert client.get(reverse("territory_mine")).context["rows"] == []
    finer = rule_set_copy(actor=lead, source=active, name="更细的版本")
    east = Territory.objects.get(rule_set=finer, name="华东")
    territory(finer, "浦东", parent=east, division_codes=[PUDONG], teams=[sub])
    rule_set_activate(actor=lead, rule_set=finer)
    rows = client.get(reverse("territory_mine")).context["rows"]
    assert [row.name for row in rows] == ["浦东"]
