"""The ownership clock (保护期 / 回收): one function computes, from a policy and a customer's
facts, when the customer returns to the pool and which rule causes it. The customer page,
the rep's list and the periodic review all call `compute_clock`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.utils.translation import gettext_lazy as _

RULE_NO_FOLLOW_UP = "no_follow_up"
RULE_REACH_50 = "reach_50"
RULE_REACH_100 = "reach_100"

RULE_LABELS = {
    RULE_NO_FOLLOW_UP: _("no follow-up for %(days)d days"),
    RULE_REACH_50: _("not at 50%% within %(days)d days"),
    RULE_REACH_100: _("not won within %(days)d days"),
}


@dataclass(frozen=True)
class PolicyValues:
    """The clock's parameters with the level each came from ("global", "team: 华东销售部")."""

    max_owned: int
    count_won_in_cap: bool
    max_claims_per_day: int
    days_without_follow_up: int
    days_to_reach_50: int
    days_to_reach_100: int
    won_exempt: bool
    cooldown_days: int
    warning_days: int
    levels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_policy(cls, policy: Any, level: str) -> PolicyValues:
        names = [
            "max_owned",
            "count_won_in_cap",
            "max_claims_per_day",
            "days_without_follow_up",
            "days_to_reach_50",
            "days_to_reach_100",
            "won_exempt",
            "cooldown_days",
            "warning_days",
        ]
        return cls(
            **{name: getattr(policy, name) for name in names},
            levels=dict.fromkeys(names, level),
        )


# What a territory's own policy overrides: the clock, not the rep's caps.
TERRITORY_FIELDS = (
    "days_without_follow_up",
    "days_to_reach_50",
    "days_to_reach_100",
    "won_exempt",
    "cooldown_days",
    "warning_days",
)


def with_territory(base: PolicyValues, policy: Any | None, level: str) -> PolicyValues:
    """`base` (the owner's team or the global default) with a territory's clock parameters."""
    if policy is None:
        return base
    return replace(
        base,
        **{name: getattr(policy, name) for name in TERRITORY_FIELDS},
        levels={**base.levels, **dict.fromkeys(TERRITORY_FIELDS, level)},
    )


@dataclass(frozen=True)
class Clock:
    returns_at: datetime | None  # None: exempt (won) or not owned
    rule: str = ""
    days: int = 0
    warn_from: datetime | None = None
    level: str = ""

    @property
    def exempt(self) -> bool:
        return self.returns_at is None

    @property
    def rule_label(self) -> str:
        if not self.rule:
            return ""
        return str(RULE_LABELS[self.rule]) % {"days": self.days}

    def days_left(self, now: datetime) -> int | None:
        if self.returns_at is None:
            return None
        return max(0, (self.returns_at - now).days)

    def is_due(self, now: datetime) -> bool:
        return self.returns_at is not None and self.returns_at <= now

    def in_warning_window(self, now: datetime) -> bool:
        return (
            self.returns_at is not None
            and self.warn_from is not None
            and self.warn_from <= now < self.returns_at
        )


def compute_clock(
    *,
    owner_id: int | None,
    stage: int,
    clock_started_at: datetime | None,
    last_follow_up_at: datetime | None,
    policy: PolicyValues,
) -> Clock:
    """When an owned customer returns to the pool, and why. The earliest rule wins.

    - no follow-up: the last follow-up (or the clock start, if later) + the allowed days;
    - below 50%: clock start + days to reach 50%;
    - below 100%: clock start + days to reach 100%.
    Won customers are exempt when the policy says so. Follow-ups that do not move the stage
    only reset the first rule: a token call never buys more time to reach 50% or 100%.
    """
    if owner_id is None or clock_started_at is None:
        return Clock(returns_at=None)
    if stage >= 100 and policy.won_exempt:
        return Clock(returns_at=None)
    last_contact = max(clock_started_at, last_follow_up_at or clock_started_at)
    candidates: list[tuple[datetime, str, int]] = [
        (
            last_contact + timedelta(days=policy.days_without_follow_up),
            RULE_NO_FOLLOW_UP,
            policy.days_without_follow_up,
        )
    ]
    if stage < 50:
        candidates.append(
            (
                clock_started_at + timedelta(days=policy.days_to_reach_50),
                RULE_REACH_50,
                policy.days_to_reach_50,
            )
        )
    if stage < 100:
        candidates.append(
            (
                clock_started_at + timedelta(days=policy.days_to_reach_100),
                RULE_REACH_100,
                policy.days_to_reach_100,
            )
        )
    returns_at, rule, days = min(candidates, key=lambda item: item[0])
    level_field = {
        RULE_NO_FOLLOW_UP: "days_without_follow_up",
        RULE_REACH_50: "days_to_reach_50",
        RULE_REACH_100: "days_to_reach_100",
    }[rule]
    return Clock(
        returns_at=returns_at,
        rule=rule,
        days=days,
        warn_from=returns_at - timedelta(days=policy.warning_days),
        level=policy.levels.get(level_field, ""),
    )
