"""The review pages (managers and administrators) and the policy what-if (administrators)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import Customer, Role, Team, User
from ownership.models import OwnershipEvent, PoolPolicy, ReviewRun
from ownership.review import review_run
from ownership.selectors import global_policy
from tests.conftest import login
from tests.factories import CustomerFactory, TeamFactory, UserFactory

DAY = timedelta(days=1)


def _owned(rep: User, started: int, followed_up: int | None = None, stage: int = 50) -> Customer:
    now = timezone.now()
    return CustomerFactory(
        owner=rep,
        clock_started_at=now - started * DAY,
        last_follow_up_at=now - followed_up * DAY if followed_up else None,
        stage=stage,
    )


@pytest.fixture
def outsider_manager(other_team: Team) -> User:
    manager = UserFactory(username="outmgr", role=Role.MANAGER, team=other_team)
    other_team.manager = manager
    other_team.save(update_fields=["manager"])
    return manager


@pytest.fixture
def finished_run(rep: User, other_team: Team, global_pool_policy: PoolPolicy) -> dict:
    lost = _owned(rep, started=40, followed_up=35)
    warned = _owned(rep, started=25)
    outsider_rep = UserFactory(username="outrep", team=other_team)
    foreign = _owned(outsider_rep, started=40, followed_up=35)
    run = review_run()
    return {"run": run, "lost": lost, "warned": warned, "foreign": foreign}


def test_a_manager_sees_runs_and_only_the_customers_of_their_teams(
    client: Client, manager: User, finished_run: dict, django_assert_max_num_queries: Any
) -> None:
    login(client, manager)
    with django_assert_max_num_queries(12):
        body = client.get(reverse("review_run_list")).content.decode()
    assert "归属巡检" in body and "(1)" in body  # the team's own figure in brackets
    url = reverse("review_run_detail", args=[finished_run["run"].pk])
    body = client.get(url).content.decode()
    assert finished_run["lost"].display_name in body
    assert finished_run["foreign"].display_name not in body
    body = client.get(url, {"action": "warned"}).content.decode()
    assert finished_run["warned"].display_name in body
    assert "过期转移申请的处理不属于本任务" in body
    body = client.get(reverse("review_outcomes")).content.decode()
    assert finished_run["lost"].display_name in body
    assert finished_run["foreign"].display_name not in body


def test_the_disputes_section_is_served_by_the_disputes_app(
    client: Client, crm_admin: User, finished_run: dict
) -> None:
    login(client, crm_admin)
    url = reverse("review_run_detail", args=[finished_run["run"].pk])
    body = client.get(url, {"action": "dispute_overdue"}).content.decode()
    assert response_ok(body)
    assert "尚未提供争议功能" not in body


def response_ok(body: str) -> bool:
    return "服务器出错" not in body and "<html" in body


def test_the_outsider_manager_sees_their_own_team_only(
    client: Client, outsider_manager: User, finished_run: dict
) -> None:
    login(client, outsider_manager)
    body = client.get(reverse("review_outcomes")).content.decode()
    assert finished_run["foreign"].display_name in body
    assert finished_run["lost"].display_name not in body


def test_reps_and_committee_members_are_refused(
    client: Client, rep: User, committee_member: User, finished_run: dict
) -> None:
    for user in (rep, committee_member):
        client.logout()
        login(client, user)
        assert client.get(reverse("review_run_list")).status_code == 403
        assert client.get(reverse("review_outcomes")).status_code == 403
        assert client.get(reverse("policy_what_if")).status_code == 403
        url = reverse("review_run_detail", args=[finished_run["run"].pk])
        assert client.get(url).status_code == 403


def test_an_unknown_run_is_a_404(client: Client, manager: User) -> None:
    login(client, manager)
    assert client.get(reverse("review_run_detail", args=[99999])).status_code == 404


def test_an_administrator_starts_a_dry_run_from_the_page(
    client: Client,
    crm_admin: User,
    rep: User,
    global_pool_policy: PoolPolicy,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    customer = _owned(rep, started=40, followed_up=35)
    login(client, crm_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("review_run_start"), {"mode": "dry_run"})
    assert response.status_code == 302
    run = ReviewRun.objects.get()
    assert run.dry_run and run.started_by == crm_admin and run.count("recycled") == 1
    customer.refresh_from_db()
    assert customer.owner == rep
    body = client.get(reverse("review_run_detail", args=[run.pk])).content.decode()
    assert "将被回收" in body and customer.display_name in body
    assert client.get(reverse("review_run_start")).status_code == 405


def test_managers_cannot_start_a_run(client: Client, manager: User) -> None:
    login(client, manager)
    assert client.post(reverse("review_run_start"), {"mode": "real"}).status_code == 403
    assert not ReviewRun.objects.exists()


# --- what if -------------------------------------------------------------------------------


@pytest.fixture
def teams_with_customers(rep: User, global_pool_policy: PoolPolicy) -> dict:
    south = TeamFactory(name="华南销售部")
    south_rep = UserFactory(username="southrep", team=south)
    return {
        # 21 days without follow-up: safe today (30), due tomorrow with 20.
        "east": [_owned(rep, started=21) for _ in range(2)],
        "south": [_owned(south_rep, started=21)],
        "south_team": south,
    }


def test_what_if_shows_the_effect_per_team_and_writes_nothing(
    client: Client, crm_admin: User, teams_with_customers: dict, team: Team
) -> None:
    login(client, crm_admin)
    policy = global_policy()
    body = client.get(reverse("policy_what_if")).content.decode()
    assert 'value="30"' in body  # prefilled from the global policy
    values = {
        name: getattr(policy, name)
        for name in (
            "max_owned",
            "max_claims_per_day",
            "days_to_reach_50",
            "days_to_reach_100",
            "cooldown_days",
            "warning_days",
        )
    }
    values.update(days_without_follow_up=20, won_exempt="on")
    events = OwnershipEvent.objects.count()
    response = client.get(reverse("policy_what_if"), values)
    assert response.status_code == 200
    result = response.context["result"]
    by_team = {impact.team: impact for impact in result.teams}
    assert by_team[team].recycled_now == 0 and by_team[team].recycled_trial == 2
    assert by_team[teams_with_customers["south_team"]].recycled_trial == 1
    assert result.total.recycled_trial == 3
    body = response.content.decode()
    assert "将这些取值应用到全局规则" in body and "华南销售部" in body
    policy.refresh_from_db()
    assert policy.days_without_follow_up == 30
    assert OwnershipEvent.objects.count() == events


def test_what_if_rejects_impossible_values_with_a_message(
    client: Client, crm_admin: User, global_pool_policy: PoolPolicy
) -> None:
    login(client, crm_admin)
    response = client.get(
        reverse("policy_what_if"),
        {"days_without_follow_up": 5, "warning_days": 7, "max_owned": "x"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "提前提醒的天数必须少于回收前允许不跟进的天数" in body
    assert "result" not in response.context or response.context["result"] is None


def _form_values(policy: PoolPolicy, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "max_owned": policy.max_owned,
        "max_claims_per_day": policy.max_claims_per_day,
        "days_without_follow_up": policy.days_without_follow_up,
        "days_to_reach_50": policy.days_to_reach_50,
        "days_to_reach_100": policy.days_to_reach_100,
        "won_exempt": "True",
        "count_won_in_cap": "False",
        "cooldown_days": policy.cooldown_days,
        "warning_days": policy.warning_days,
    }
    values.update(changes)
    return values


def test_applying_needs_a_confirmation_then_changes_the_global_policy(
    client: Client, crm_admin: User, teams_with_customers: dict
) -> None:
    login(client, crm_admin)
    policy = global_policy()
    url = reverse("policy_what_if_apply")
    response = client.post(url, _form_values(policy, days_without_follow_up=20))
    assert response.status_code == 200
    body = response.content.decode()
    assert "修改全局公海规则" in body and "confirmed" in body
    policy.refresh_from_db()
    assert policy.days_without_follow_up == 30
    response = client.post(
        url, {**_form_values(policy, days_without_follow_up=20), "confirmed": "yes"}
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.days_without_follow_up == 20 and policy.won_exempt is True
    assert "全局公海规则已更新" in client.get(response["Location"]).content.decode()


def test_applying_invalid_values_changes_nothing(
    client: Client, crm_admin: User, global_pool_policy: PoolPolicy
) -> None:
    login(client, crm_admin)
    response = client.post(
        reverse("policy_what_if_apply"),
        {**_form_values(global_pool_policy, days_to_reach_50=200), "confirmed": "yes"},
    )
    assert response.status_code == 400
    assert "达到 100% 的天数不能少于达到 50% 的天数" in response.content.decode()
    global_pool_policy.refresh_from_db()
    assert global_pool_policy.days_to_reach_50 == 60


def test_only_administrators_may_apply(
    client: Client, manager: User, global_pool_policy: PoolPolicy
) -> None:
    login(client, manager)
    response = client.post(
        reverse("policy_what_if_apply"),
        {**_form_values(global_pool_policy, max_owned=3), "confirmed": "yes"},
    )
    assert response.status_code == 403
    global_pool_policy.refresh_from_db()
    assert global_pool_policy.max_owned == 50
