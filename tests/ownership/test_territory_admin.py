"""The territory admin: rule sets with their status and activation history, copy and
activation through the services (a confirmation page showing the check first), drafts the
only editable sets, the tree view, territory forms checked by the compiled rules, the overlap
report and territories' own pool policies."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from crm.models import Team, User
from ownership.models import (
    CustomerTerritory,
    PoolPolicy,
    RuleSet,
    RuleSetActivation,
    RuleSetStatus,
    Territory,
)
from ownership.territories.services import rule_set_activate
from tests.conftest import login
from tests.ownership.territory_helpers import (
    BEIJING,
    HAIDIAN,
    PUDONG,
    SHANGHAI,
    customer_in,
    industry,
    territory,
    two_region_rule_set,
)


@pytest.fixture
def admin_client(client: Client, crm_admin: User) -> Client:
    return login(client, crm_admin)


@pytest.fixture
def draft(team: Team, other_team: Team) -> RuleSet:
    return two_region_rule_set(east=team, north=other_team, name="2027 草案")


def _territory_post(rule_set: RuleSet, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "rule_set": str(rule_set.pk),
        "parent": "",
        "name": "新区域",
        "priority": "100",
        "division_codes": "",
        "out_of_territory": "",
    }
    data.update({k: v for k, v in fields.items() if v is not None})
    return data


def _errors(response: Any) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {name: [str(e) for e in errors] for name, errors in form.errors.items()}


# --- rule sets -----------------------------------------------------------------------------


def test_rule_sets_list_their_status_and_activation_history(
    admin_client: Client, draft: RuleSet, crm_admin: User
) -> None:
    rule_set_activate(actor=crm_admin, rule_set=draft)
    body = admin_client.get(reverse("admin:ownership_ruleset_changelist")).content.decode()
    assert "2027 草案" in body and "生效中" in body
    page = admin_client.get(reverse("admin:ownership_ruleset_change", args=[draft.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "启用记录" in body and "管理员" in body  # the activation, by whom
    assert "华北" in body and "海淀区" in body  # the tree on the rule set's page
    # An active set is read-only: no save button, and a POST changes nothing.
    assert 'name="_save"' not in body
    admin_client.post(
        reverse("admin:ownership_ruleset_change", args=[draft.pk]), {"name": "改名", "notes": ""}
    )
    draft.refresh_from_db()
    assert draft.name == "2027 草案"


def test_copy_as_a_new_draft_copies_the_tree(
    admin_client: Client, draft: RuleSet, crm_admin: User
) -> None:
    rule_set_activate(actor=crm_admin, rule_set=draft)
    response = admin_client.post(
        reverse("admin:ownership_ruleset_changelist"),
        {"action": "copy_as_draft", "_selected_action": [draft.pk], "index": 0},
        follow=True,
    )
    assert response.status_code == 200
    copy = RuleSet.objects.exclude(pk=draft.pk).get()
    assert copy.status == RuleSetStatus.DRAFT and copy.created_by == crm_admin
    assert "已将 2027 草案 复制为新草稿" in response.content.decode()
    names = sorted(Territory.objects.filter(rule_set=copy).values_list("name", flat=True))
    assert names == ["华东", "华北", "海淀区"]
    child = Territory.objects.get(rule_set=copy, name="海淀区")
    assert child.parent is not None and child.parent.rule_set == copy


def test_activation_shows_the_check_first_then_activates(
    admin_client: Client, draft: RuleSet, crm_admin: User
) -> None:
    customer = customer_in(HAIDIAN)
    url = reverse("admin:ownership_ruleset_activate", args=[draft.pk])
    page = admin_client.get(url)
    body = page.content.decode()
    assert page.status_code == 200
    assert "没有问题" in body and "没有未决重叠" in body and "确认启用该规则集" in body
    assert draft.status == RuleSetStatus.DRAFT and not RuleSetActivation.objects.exists()
    # The changelist action leads to the same confirmation page.
    response = admin_client.post(
        reverse("admin:ownership_ruleset_changelist"),
        {"action": "activate", "_selected_action": [draft.pk], "index": 0},
    )
    assert response.status_code == 302 and response["Location"] == url
    response = admin_client.post(url, follow=True)
    assert response.status_code == 200
    assert "现已生效" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.ACTIVE
    activation = RuleSetActivation.objects.get()
    assert activation.activated_by == crm_admin and activation.customers_resolved >= 1
    record = CustomerTerritory.objects.get(customer=customer)
    assert record.territory is not None and record.territory.name == "海淀区"


def test_activation_refused_lists_problems_and_overlaps_in_chinese(
    admin_client: Client, draft: RuleSet, team: Team, other_team: Team
) -> None:
    # A second top-level territory over 上海 with the same priority as 华东: undecided.
    territory(draft, "上海重点", division_codes=[SHANGHAI], teams=[other_team])
    for n in range(4):
        customer_in(PUDONG, name=f"上海浦东重叠{'甲乙丙丁'[n]}号科技有限公司")
    # A territory without criteria.
    territory(draft, "空区域", teams=[team])
    url = reverse("admin:ownership_ruleset_activate", args=[draft.pk])
    body = admin_client.get(url).content.decode()
    assert "确认启用该规则集" not in body
    assert "没有划分条件" in body and "空区域" in body
    assert "华东" in body and "上海重点" in body
    assert "给其中一个区域设置更小的优先级数字" in body
    response = admin_client.post(url)  # posted anyway (an old tab): refused, no 500
    assert response.status_code == 200
    body = response.content.decode()
    assert "拒绝启用：存在 1 个问题和" in body
    assert "没有划分条件" in body
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.DRAFT
    assert not RuleSetActivation.objects.exists()


def test_the_overlap_report_shows_examples_and_a_hint(
    admin_client: Client, draft: RuleSet, other_team: Team
) -> None:
    territory(draft, "上海重点", division_codes=[SHANGHAI], teams=[other_team], value_tiers=["A"])
    names = [f"上海浦东重叠{'甲乙丙丁'[n]}号科技有限公司" for n in range(4)]
    for name in names:
        customer_in(PUDONG, name=name, value_tier="A")
    customer_in(PUDONG, name="上海浦东普通客户有限公司", value_tier="C")
    response = admin_client.get(reverse("admin:ownership_ruleset_overlaps", args=[draft.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "有 1 对区域可能匹配相同的客户" in body
    assert sum(name in body for name in names) == 3  # three examples at most
    assert "上海浦东普通客户有限公司" not in body  # tier C: not in 上海重点
    assert "价值等级：A" in body
    assert "优先级数字" in body
    # Decided by a priority: the report is clean.
    Territory.objects.filter(rule_set=draft, name="上海重点").update(priority=10)
    body = admin_client.get(
        reverse("admin:ownership_ruleset_overlaps", args=[draft.pk])
    ).content.decode()
    assert "没有未决重叠" in body


def test_reps_and_managers_never_reach_the_territory_admin(
    client: Client, personas: dict[str, User], draft: RuleSet
) -> None:
    urls = [
        reverse("admin:ownership_ruleset_changelist"),
        reverse("admin:ownership_ruleset_activate", args=[draft.pk]),
        reverse("admin:ownership_ruleset_overlaps", args=[draft.pk]),
        reverse("admin:ownership_territory_changelist"),
    ]
    for persona in ("rep", "manager", "committee"):
        client.logout()
        login(client, personas[persona])
        for url in urls:
            assert client.get(url).status_code in (302, 403), (persona, url)
            client.post(url, {"name": "x"})
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.DRAFT and draft.name == "2027 草案"


# --- territories ---------------------------------------------------------------------------


def test_the_tree_view_is_indented_ordered_and_filtered_by_rule_set(
    admin_client: Client,
    draft: RuleSet,
    team: Team,
    other_team: Team,
    django_assert_max_num_queries: Any,
) -> None:
    other = two_region_rule_set(east=team, north=other_team, name="另一草案")
    url = reverse("admin:ownership_territory_changelist")
    with django_assert_max_num_queries(20):
        response = admin_client.get(url, {"rule_set__id__exact": draft.pk})
    body = response.content.decode()
    rows = [t.name for t in response.context["cl"].result_list]
    assert rows == [
        "华东",
        "华北",
        "海淀区",
    ]  # roots by priority and name; a child after its parent
    assert "padding-left:1.5em" in body and "110108 海淀区" in body
    assert "添加下级区域" in body
    everything = [t.rule_set_id for t in admin_client.get(url).context["cl"].result_list]
    assert sorted(everything) == sorted([draft.pk] * 3 + [other.pk] * 3)


def test_division_codes_are_accepted_in_every_form_and_stored_short(
    admin_client: Client, draft: RuleSet, team: Team
) -> None:
    response = admin_client.post(
        reverse("admin:ownership_territory_add"),
        _territory_post(
            draft,
            name="京沪",
            division_codes="110000，310115、 4401",
            teams=[team.pk],
            priority="5",
        ),
    )
    assert response.status_code == 302, _errors(response)
    created = Territory.objects.get(rule_set=draft, name="京沪")
    assert created.division_codes == ["11", "310115", "4401"]
    page = admin_client.get(reverse("admin:ownership_territory_change", args=[created.pk]))
    assert 'value="11, 310115, 4401"' in page.content.decode()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"division_codes": "999999"}, "division_codes", "未知的行政区划代码：999999"),
        ({"division_codes": "北京, 1234567"}, "division_codes", "不是行政区划代码：北京、1234567"),
        ({"division_codes": ""}, "__all__", "没有划分条件"),
        ({"division_codes": "11", "teams": []}, "teams", "没有负责团队"),
    ],
)
def test_a_new_territory_is_checked_by_the_rules(
    admin_client: Client,
    draft: RuleSet,
    team: Team,
    fields: dict[str, Any],
    field: str,
    message: str,
) -> None:
    data = _territory_post(draft, teams=[team.pk])
    data.update(fields)
    response = admin_client.post(reverse("admin:ownership_territory_add"), data)
    assert response.status_code == 200
    errors = _errors(response)
    assert any(message in e for e in errors.get(field, [])), errors
    assert not Territory.objects.filter(name="新区域").exists()


def test_a_child_may_only_narrow_its_parent(admin_client: Client, draft: RuleSet) -> None:
    software, food = industry(), industry("food", "食品")
    north = Territory.objects.get(rule_set=draft, name="华北")
    north.industries.set([software])
    data = _territory_post(draft, name="朝阳食品", parent=str(north.pk), industries=[food.pk])
    data["division_codes"] = "310115"  # 浦东 is not in 北京
    response = admin_client.post(reverse("admin:ownership_territory_add"), data)
    errors = _errors(response)
    assert any("不在上级区域 华北 的范围内" in e for e in errors["division_codes"]), errors
    assert any("超出了上级区域的范围" in e for e in errors["industries"]), errors
    data.update(division_codes="110105", industries=[software.pk])
    response = admin_client.post(reverse("admin:ownership_territory_add"), data)
    assert response.status_code == 302, _errors(response)


def test_a_parent_cycle_is_refused_on_the_parent_field(
    admin_client: Client, draft: RuleSet
) -> None:
    north = Territory.objects.get(rule_set=draft, name="华北")
    haidian = Territory.objects.get(rule_set=draft, name="海淀区")
    data = _territory_post(
        draft,
        name="华北",
        parent=str(haidian.pk),
        division_codes=BEIJING,
        teams=list(north.teams.values_list("pk", flat=True)),
    )
    response = admin_client.post(reverse("admin:ownership_territory_change", args=[north.pk]), data)
    assert response.status_code == 200
    assert any("循环" in e for e in _errors(response)["parent"])
    north.refresh_from_db()
    assert north.parent is None


def test_a_parent_from_another_rule_set_is_refused(
    admin_client: Client, draft: RuleSet, team: Team, other_team: Team
) -> None:
    other = two_region_rule_set(east=team, north=other_team, name="另一草案")
    foreign = Territory.objects.get(rule_set=other, name="华北")
    data = _territory_post(draft, parent=str(foreign.pk), division_codes=HAIDIAN)
    response = admin_client.post(
        reverse("admin:ownership_territory_add") + f"?rule_set={draft.pk}", data
    )
    assert response.status_code == 200
    assert "parent" in _errors(response)


def test_narrowing_a_parent_warns_about_the_children_it_breaks(
    admin_client: Client, draft: RuleSet
) -> None:
    north = Territory.objects.get(rule_set=draft, name="华北")
    data = _territory_post(
        draft,
        name="华北",
        division_codes="110105",  # 朝阳 only: 海淀区 below now lies outside
        teams=list(north.teams.values_list("pk", flat=True)),
    )
    response = admin_client.post(
        reverse("admin:ownership_territory_change", args=[north.pk]), data, follow=True
    )
    assert response.status_code == 200
    assert "其他区域中还有 1 个问题" in response.content.decode()


def test_territories_of_an_active_set_are_read_only(
    admin_client: Client, draft: RuleSet, crm_admin: User
) -> None:
    rule_set_activate(actor=crm_admin, rule_set=draft)
    north = Territory.objects.get(rule_set=draft, name="华北")
    url = reverse("admin:ownership_territory_change", args=[north.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    response = admin_client.post(url, _territory_post(draft, name="改名", division_codes="11"))
    assert response.status_code == 403
    delete = admin_client.post(
        reverse("admin:ownership_territory_delete", args=[north.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    north.refresh_from_db()
    assert north.name == "华北"
    # Adding a territory to it is refused too (only drafts are offered).
    response = admin_client.post(
        reverse("admin:ownership_territory_add"), _territory_post(draft, division_codes="11")
    )
    assert response.status_code == 200 and "rule_set" in _errors(response)
    assert not Territory.objects.filter(name="新区域").exists()


# --- territories' own pool policies ----------------------------------------------------------


def test_a_pool_policy_is_for_a_team_or_a_territory(
    admin_client: Client, draft: RuleSet, team: Team, crm_admin: User, global_pool_policy: Any
) -> None:
    rule_set_activate(actor=crm_admin, rule_set=draft)
    haidian = Territory.objects.get(rule_set=draft, name="海淀区")
    values = {
        "max_owned": "40",
        "max_claims_per_day": "5",
        "days_without_follow_up": "20",
        "days_to_reach_50": "60",
        "days_to_reach_100": "180",
        "won_exempt": "on",
        "cooldown_days": "30",
        "warning_days": "7",
    }
    url = reverse("admin:ownership_poolpolicy_add")
    response = admin_client.post(url, {**values, "team": team.pk, "territory": haidian.pk})
    assert response.status_code == 200
    assert any("不能同时属于两者" in e for e in _errors(response)["territory"])
    response = admin_client.post(url, {**values, "territory": haidian.pk})
    assert response.status_code == 302
    assert PoolPolicy.objects.get(territory=haidian).days_without_follow_up == 20
    # The territory field searches territories (not retired ones) as you type.
    found = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "ownership",
            "model_name": "poolpolicy",
            "field_name": "territory",
            "term": "海淀",
        },
    ).json()
    assert [r["id"] for r in found["results"]] == [str(haidian.pk)]


def test_a_large_base_is_activated_in_the_background_with_progress(
    admin_client: Client,
    draft: RuleSet,
    crm_admin: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.TERRITORY_BACKGROUND_ACTIVATION_FROM = 1
    settings.CELERY_TASK_ALWAYS_EAGER = True
    customer = customer_in(HAIDIAN)
    url = reverse("admin:ownership_ruleset_activate", args=[draft.pk])
    progress_url = reverse("admin:ownership_ruleset_activation", args=[draft.pk])
    assert "没有正在进行的激活" in admin_client.get(progress_url).content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(url)
    assert response.status_code == 302 and response["Location"] == progress_url
    # Queued: nothing activated yet, and the page says how far it got and refreshes itself.
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.DRAFT
    queued = admin_client.get(progress_url).content.decode()
    assert "正在计算客户所属区域" in queued and 'http-equiv="refresh"' in queued
    for callback in callbacks:  # the worker runs the task
        callback()
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.ACTIVE
    done = admin_client.get(progress_url).content.decode()
    assert "现已生效" in done and 'http-equiv="refresh"' not in done
    assert CustomerTerritory.objects.get(customer=customer).territory is not None
    assert RuleSetActivation.objects.get().activated_by == crm_admin


def test_a_background_activation_is_refused_at_once_when_the_check_fails(
    admin_client: Client, draft: RuleSet, settings: Any, other_team: Team
) -> None:
    settings.TERRITORY_BACKGROUND_ACTIVATION_FROM = 1
    clash = Territory.objects.create(rule_set=draft, name="北京重复", division_codes=["11"])
    clash.teams.set([other_team])
    response = admin_client.post(reverse("admin:ownership_ruleset_activate", args=[draft.pk]))
    assert response.status_code == 200
    assert "重叠" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == RuleSetStatus.DRAFT
