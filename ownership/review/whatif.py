""" "What if" for administrators: how many customers per team would tomorrow's review recycle
or warn under other global policy values — computed by the same candidate query and the
same `compute_clock` as the review, writing nothing — and the write that applies them."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Team, User
from ownership.models import PoolPolicy
from ownership.review.policies import POLICY_FIELDS, PolicyBook
from ownership.review.run import candidate_pages, clock_of
from ownership.selectors import global_policy
from ownership.services import OwnershipError

logger = logging.getLogger(__name__)

WHAT_IF_PAGE = 5000


@dataclass
class TeamImpact:
    team: Team | None
    recycled_now: int = 0
    warned_now: int = 0
    recycled_trial: int = 0
    warned_trial: int = 0

    @property
    def recycled_change(self) -> int:
        return self.recycled_trial - self.recycled_now

    @property
    def warned_change(self) -> int:
        return self.warned_trial - self.warned_now


@dataclass
class WhatIfResult:
    as_of: datetime
    teams: list[TeamImpact]
    total: TeamImpact


def what_if(*, values: dict[str, Any], as_of: datetime | None = None) -> WhatIfResult:
    """Customers per team that would be recycled / in their warning window at `as_of`
    (default: this time tomorrow) under the current policies and under the trial global
    values. Warnings count every customer in its window, warned before or not."""
    as_of = as_of or timezone.now() + timedelta(days=1)
    current = PolicyBook.load()
    trial = current.with_global({name: values[name] for name in POLICY_FIELDS if name in values})
    impacts: dict[int | None, TeamImpact] = defaultdict(lambda: TeamImpact(team=None))
    for rows in candidate_pages(current, as_of, WHAT_IF_PAGE, trial):
        for row in rows:
            impact = impacts[current.team_of(row[1])]
            now_clock = clock_of(row, current)
            trial_clock = clock_of(row, trial)
            impact.recycled_now += now_clock.is_due(as_of)
            impact.warned_now += now_clock.in_warning_window(as_of)
            impact.recycled_trial += trial_clock.is_due(as_of)
            impact.warned_trial += trial_clock.in_warning_window(as_of)
    teams = Team.objects.in_bulk([team_id for team_id in impacts if team_id is not None])
    total = TeamImpact(team=None)
    rows_out = []
    for team_id, impact in impacts.items():
        impact.team = teams.get(team_id) if team_id is not None else None
        for name in ("recycled_now", "warned_now", "recycled_trial", "warned_trial"):
            setattr(total, name, getattr(total, name) + getattr(impact, name))
        if impact.recycled_now or impact.warned_now or impact.recycled_trial or impact.warned_trial:
            rows_out.append(impact)
    rows_out.sort(key=lambda i: (i.team is None, i.team.name if i.team else ""))
    return WhatIfResult(as_of=as_of, teams=rows_out, total=total)


class PolicyInvalid(OwnershipError):
    def __init__(self, message: str, *, errors: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.errors = errors


@transaction.atomic
def global_policy_update(*, actor: User, values: dict[str, Any]) -> list[str]:
    """Apply new values to the global default pool policy; returns the changed fields."""
    if not actor.is_crm_admin:
        raise OwnershipError(_("Only administrators can change the pool policy."))
    policy = PoolPolicy.objects.select_for_update().get(pk=global_policy().pk)
    changed = [
        name for name in POLICY_FIELDS if name in values and getattr(policy, name) != values[name]
    ]
    if not changed:
        return []
    before = {name: getattr(policy, name) for name in changed}
    for name in changed:
        setattr(policy, name, values[name])
    try:
        policy.full_clean()
    except ValidationError as error:
        raise PolicyInvalid(
            _("These policy values are not allowed."), errors=error.message_dict
        ) from error
    policy.save(update_fields=[*changed, "updated_at"])
    logger.info(
        "global pool policy changed by %s: %s",
        actor.username,
        {name: (before[name], values[name]) for name in changed},
    )
    return changed
