"""Every effective pool policy at once, for set-based jobs (the review, the what-if page).

`ownership.selectors.effective_policy` walks the team tree with a query per level; a job
over a million customers needs the same answer for every team from two queries. The rule
is the same (nearest policy up the tree, else the global default) and a test pins that
both agree."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from crm.models import Team, User
from ownership.clock import PolicyValues
from ownership.models import PoolPolicy
from ownership.selectors import global_policy
from ownership.territories.selectors import TerritoryPolicies

POLICY_FIELDS = (
    "max_owned",
    "count_won_in_cap",
    "max_claims_per_day",
    "days_without_follow_up",
    "days_to_reach_50",
    "days_to_reach_100",
    "won_exempt",
    "cooldown_days",
    "warning_days",
)


@dataclass(frozen=True)
class Horizon:
    """The earliest moment any policy could warn about a customer, per rule, in days after
    the rule's start (period minus warning days; may be negative). A customer none of whose
    rules has reached its horizon can be neither due nor warned: the SQL pre-filter."""

    follow_up: int
    reach_50: int
    reach_100: int
    exempt_won: bool

    def candidates(self, as_of: datetime) -> Q:
        """Owned customers that may be due or in their warning window at `as_of` (a superset:
        the exact answer is `compute_clock`'s). Needs `last_contact` annotated."""
        rules = (
            Q(last_contact__lte=as_of - timedelta(days=self.follow_up))
            | Q(stage__lt=50, clock_started_at__lte=as_of - timedelta(days=self.reach_50))
            | Q(stage__lt=100, clock_started_at__lte=as_of - timedelta(days=self.reach_100))
        )
        if self.exempt_won:
            rules &= Q(stage__lt=100)
        return rules


@dataclass
class PolicyBook:
    """Effective policy values per team and per user, resolved in memory."""

    global_values: PolicyValues
    team_values: dict[int, PolicyValues] = field(default_factory=dict)
    user_team: dict[int, int | None] = field(default_factory=dict)
    all_values: list[PolicyValues] = field(default_factory=list)
    territories: TerritoryPolicies | None = None

    @classmethod
    def load(cls) -> PolicyBook:
        """Two queries for the policies and teams, one for the users' teams."""
        global_values = PolicyValues.from_policy(global_policy(), _("global default"))
        overrides = {
            policy.team_id: policy for policy in PoolPolicy.objects.filter(team__isnull=False)
        }
        teams = {team_id: (parent_id, name) for team_id, parent_id, name in
                 Team.objects.values_list("id", "parent_id", "name")}  # fmt: skip
        book = cls(global_values=global_values)
        for team_id in teams:
            node: int | None = team_id
            seen: set[int] = set()
            values = global_values
            while node is not None and node not in seen and node in teams:
                seen.add(node)
                if node in overrides:
                    values = PolicyValues.from_policy(
                        overrides[node], _("team %(team)s") % {"team": teams[node][1]}
                    )
                    break
                node = teams[node][0]
            book.team_values[team_id] = values
        book.user_team = dict(User.objects.values_list("id", "team_id"))
        book.territories = TerritoryPolicies.load()
        book.all_values = [global_values, *book.team_values.values()]
        book.all_values += book.territories.all_overrides(global_values)
        return book

    def with_global(self, values: dict[str, Any]) -> PolicyBook:
        """The same book with other global default values: teams that inherit the default
        get them, teams with their own policy (or an ancestor's) keep theirs."""
        trial_global = replace(self.global_values, **values)
        book = PolicyBook(
            global_values=trial_global, user_team=self.user_team, territories=self.territories
        )
        book.team_values = {
            team_id: trial_global if inherited is self.global_values else inherited
            for team_id, inherited in self.team_values.items()
        }
        book.all_values = [trial_global, *book.team_values.values()]
        if self.territories is not None:
            book.all_values += self.territories.all_overrides(trial_global)
        return book

    def for_customer(self, user_id: int, territory_id: int | None) -> PolicyValues:
        """The owner's policy with the customer's territory's own clock, if it has one."""
        base = self.for_user(user_id)
        if self.territories is None or territory_id is None:
            return base
        return self.territories.apply(base, territory_id)

    def for_team(self, team_id: int | None) -> PolicyValues:
        if team_id is None:
            return self.global_values
        return self.team_values.get(team_id, self.global_values)

    def team_of(self, user_id: int) -> int | None:
        if user_id not in self.user_team:
            # A user created after the book was loaded.
            self.user_team[user_id] = (
                User.objects.filter(pk=user_id).values_list("team_id", flat=True).first()
            )
        return self.user_team[user_id]

    def for_user(self, user_id: int) -> PolicyValues:
        return self.for_team(self.team_of(user_id))

    def horizon(self, *others: PolicyBook) -> Horizon:
        values = [v for book in (self, *others) for v in book.all_values]
        return Horizon(
            follow_up=min(v.days_without_follow_up - v.warning_days for v in values),
            reach_50=min(v.days_to_reach_50 - v.warning_days for v in values),
            reach_100=min(v.days_to_reach_100 - v.warning_days for v in values),
            exempt_won=all(v.won_exempt for v in values),
        )
