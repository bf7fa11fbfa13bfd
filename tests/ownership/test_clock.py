"""The one clock function: earliest rule wins, exemptions, restarts, levels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ownership.clock import (
    RULE_NO_FOLLOW_UP,
    RULE_REACH_50,
    RULE_REACH_100,
    PolicyValues,
    compute_clock,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


def policy(**overrides: object) -> PolicyValues:
    values: dict[str, object] = {
        "max_owned": 50,
        "count_won_in_cap": False,
        "max_claims_per_day": 5,
        "days_without_follow_up": 30,
        "days_to_reach_50": 60,
        "days_to_reach_100": 180,
        "won_exempt": True,
        "cooldown_days": 30,
        "warning_days": 7,
        "levels": {"days_without_follow_up": "global"},
    }
    values.update(overrides)
    return PolicyValues(**values)  # type: ignore[arg-type]


def clock(stage: int = 0, last: datetime | None = None, **overrides: object):
    return compute_clock(
        owner_id=1,
        stage=stage,
        clock_started_at=START,
        last_follow_up_at=last,
        policy=policy(**overrides),
    )


def test_no_follow_up_rule_comes_first_by_default() -> None:
    result = clock()
    assert result.returns_at == START + timedelta(days=30)
    assert result.rule == RULE_NO_FOLLOW_UP
    assert result.warn_from == START + timedelta(days=23)
    assert result.level == "global"


def test_follow_ups_push_the_no_follow_up_rule_but_not_the_stage_rules() -> None:
    result = clock(last=START + timedelta(days=50))
    assert result.rule == RULE_REACH_50
    assert result.returns_at == START + timedelta(days=60)


def test_reaching_50_leaves_the_100_rule() -> None:
    result = clock(stage=50, last=START + timedelta(days=170))
    assert result.rule == RULE_REACH_100
    assert result.returns_at == START + timedelta(days=180)


@pytest.mark.parametrize(("exempt", "expected"), [(True, None), (False, 30)])
def test_won_customers_are_exempt_when_the_policy_says_so(
    exempt: bool, expected: int | None
) -> None:
    result = clock(stage=100, won_exempt=exempt)
    if expected is None:
        assert result.exempt
    else:
        assert result.returns_at == START + timedelta(days=expected)


def test_pool_customers_have_no_clock() -> None:
    result = compute_clock(
        owner_id=None, stage=0, clock_started_at=None, last_follow_up_at=None, policy=policy()
    )
    assert result.exempt and result.rule == ""


def test_due_and_warning_window() -> None:
    result = clock()
    assert not result.in_warning_window(START + timedelta(days=22))
    assert result.in_warning_window(START + timedelta(days=24))
    assert result.is_due(START + timedelta(days=30))
    assert result.days_left(START + timedelta(days=29, hours=1)) == 0
