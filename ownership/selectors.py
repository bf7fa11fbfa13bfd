"""Reads of the ownership app: effective policies, clocks, the ledger, time travel."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from crm import prepared
from crm.models import Customer, Team, User
from crm.rows import RowLoader
from crm.selectors import visible_customers_sql
from ownership.clock import Clock, PolicyValues, compute_clock
from ownership.models import CustomerTerritory, EventKind, OwnershipEvent, PoolPolicy

if TYPE_CHECKING:
    from ownership.territories.rules import Resolution


def global_policy() -> PoolPolicy:
    policy = PoolPolicy.objects.filter(team__isnull=True, territory__isnull=True).first()
    if policy is None:
        # The migration creates it; a deleted default comes back with the model's defaults.
        policy, _created = PoolPolicy.objects.get_or_create(team=None, territory=None)
    return policy


# The nearest policy up the team tree in one round trip (every registration and claim asks):
# the team's lineage by a recursive query (CYCLE stops at a team seen before, as the walk
# did), the policies of that lineage and the global default, nearest first.
_EFFECTIVE_POLICY_SQL = """
WITH RECURSIVE lineage (id, parent_id, name, depth) AS (
    SELECT id, parent_id, name, 0 FROM {team} WHERE id = %s
    UNION ALL
    SELECT t.id, t.parent_id, t.name, l.depth + 1
    FROM {team} t JOIN lineage l ON t.id = l.parent_id
) CYCLE id SET is_cycle USING path
SELECT p.team_id, l.name, {values}
FROM {policy} p LEFT JOIN lineage l ON l.id = p.team_id AND NOT l.is_cycle
WHERE p.territory_id IS NULL AND (p.team_id IS NULL OR l.id IS NOT NULL)
ORDER BY l.depth NULLS LAST
LIMIT 1
"""
# The policy's columns the clock and the caps read (PolicyValues without its levels).
_VALUE_COLUMNS = tuple(f.name for f in fields(PolicyValues) if f.name != "levels")


def effective_policy_of_team_id(team_id: int | None) -> PolicyValues:
    """The nearest policy up the tree from team `team_id`, else the global default: one
    query (the walk of `effective_policy` took one per level plus the default), read by a
    plain cursor (building model instances cost more than the query)."""
    if team_id is not None:
        sql = _EFFECTIVE_POLICY_SQL.format(
            team=Team._meta.db_table,
            policy=PoolPolicy._meta.db_table,
            values=", ".join(f"p.{name}" for name in _VALUE_COLUMNS),
        )
        with connection.cursor() as cursor:
            prepared.execute(cursor, sql, [team_id])
            row = cursor.fetchone()
        if row is not None:
            policy_team_id, team_name, *values = row
            policy = SimpleNamespace(**dict(zip(_VALUE_COLUMNS, values, strict=True)))
            if policy_team_id is not None:
                return PolicyValues.from_policy(policy, _("team %(team)s") % {"team": team_name})
            return PolicyValues.from_policy(policy, _("global default"))
    return PolicyValues.from_policy(global_policy(), _("global default"))


def effective_policy(team: Team | None) -> PolicyValues:
    """The nearest policy up the team tree, else the global default."""
    return effective_policy_of_team_id(team.pk if team is not None else None)


def policy_for_owner(owner: User | None) -> PolicyValues:
    # The team id is on the user row: the team itself need not be loaded.
    return effective_policy_of_team_id(owner.team_id if owner is not None else None)


def with_customer_territory(base: PolicyValues, customer: Customer) -> PolicyValues:
    """`base` with the clock parameters of the customer's territory, when that territory
    (or one above it) has its own pool policy."""
    from ownership.territories.selectors import TerritoryPolicies, stored_territory_id

    territories = TerritoryPolicies.load()
    if not territories.policies:
        return base
    return territories.apply(base, stored_territory_id(customer))


def policy_for_customer(customer: Customer) -> PolicyValues:
    """The owner's team policy (or the global default) with the customer's territory's."""
    return with_customer_territory(
        policy_for_owner(customer.owner if customer.owner_id else None), customer
    )


def clock_for(customer: Customer, policy: PolicyValues | None = None) -> Clock:
    if customer.owner_id is None:
        return Clock(returns_at=None)
    if policy is None:
        policy = policy_for_customer(customer)
    return compute_clock(
        owner_id=customer.owner_id,
        stage=customer.stage,
        clock_started_at=customer.clock_started_at,
        last_follow_up_at=customer.last_follow_up_at,
        policy=policy,
    )


# The ownership page's customer: with its owner, the owner's team and, for the clock, the
# id of its stored territory (as ownership.territories.selectors.with_stored_territory).
_ownership_customers: RowLoader[Customer] = RowLoader(
    Customer,
    ["owner", "owner__team"],
    extra={
        "territory_id": f"SELECT territory_id FROM {CustomerTerritory._meta.db_table} "
        "WHERE customer_id = t0.id"
    },
)


def customer_for_ownership(user: User, pk: int) -> Customer:
    """`crm.selectors.customer_for` (the same scope, 404 outside it) for the ownership page:
    with what the page shows of the customer (owner and owner's team) and, for the clock,
    the id of its stored territory, all in one query. The page follows every registration:
    the query is composed once (the scope once per kind of user, crm.selectors)."""
    scope = visible_customers_sql(user)
    where = None if scope is None else (f"t0.id IN ({scope[0]})", scope[1])
    customer = _ownership_customers.get(pk, where=where)
    if customer is None:
        raise Http404
    return customer


@dataclass(frozen=True)
class OwnershipExplanation:
    clock: Clock
    # What the territory rules in force say about the customer (None: no rule set active).
    territory: Resolution | None


def ownership_explanation(customer: Customer) -> OwnershipExplanation:
    """The customer's clock and territory, both under the rule set in force (asked once)."""
    from ownership.territories.selectors import facts_of, rule_set_pinned

    with rule_set_pinned() as compiled:
        clock = clock_for(customer)
        territory = compiled.resolve(facts_of(customer)) if compiled is not None else None
    return OwnershipExplanation(clock=clock, territory=territory)


def ledger_for(customer: Customer) -> QuerySet[OwnershipEvent]:
    return (
        OwnershipEvent.objects.filter(customer=customer)
        .select_related("from_owner", "to_owner", "actor", "cause_type")
        .order_by("sequence")
    )


_EVENT_PEOPLE = ("from_owner", "to_owner", "actor")
# Every ownership page shows the ledger: read by a statement composed once (crm.rows).
_events: RowLoader[OwnershipEvent] = RowLoader(OwnershipEvent)


def timeline_for(customer: Customer, *, known: Iterable[User | None] = ()) -> list[OwnershipEvent]:
    """The customer's ledger in order, each event with the people it names (from, to, acting
    user) attached: those in `known` (already loaded, such as the owner) as they are, the
    others fetched in one query. A just registered customer's one event names only its
    owner: one plain query, without joining the user table three times."""
    events = _events.filter(("t0.customer_id = %s", [customer.pk]), order_by="t0.sequence")
    people = {user.pk: user for user in known if user is not None}
    missing = {
        pk
        for event in events
        for pk in (event.from_owner_id, event.to_owner_id, event.actor_id)
        if pk is not None and pk not in people
    }
    if missing:
        people.update(User.objects.in_bulk(missing))
    for event in events:
        for name in _EVENT_PEOPLE:
            person = people.get(getattr(event, f"{name}_id"))
            if person is not None:
                setattr(event, name, person)
    return events


def owner_at(customer: Customer, moment: datetime) -> tuple[User | None, OwnershipEvent | None]:
    """Who owned the customer at `moment` (time travel over the ledger)."""
    event = (
        OwnershipEvent.objects.filter(customer=customer, occurred_at__lte=moment)
        .select_related("to_owner")
        .order_by("-sequence")
        .first()
    )
    return (event.to_owner if event else None), event


def registration_event(customer: Customer) -> OwnershipEvent | None:
    return (
        OwnershipEvent.objects.filter(customer=customer, kind=EventKind.REGISTERED)
        .select_related("to_owner")
        .order_by("sequence")
        .first()
    )


@dataclass(frozen=True)
class OwnedCustomer:
    customer: Customer
    clock: Clock
    days_left: int | None
    warning: bool


def owned_by_urgency(user: User, now: datetime) -> list[OwnedCustomer]:
    """A rep's customers, soonest return to the pool first (won/exempt ones last).

    A constant number of queries whatever the count: the customers (with their territory),
    the rep's effective policy and the territories' own policies. A rep's
    holding cap bounds the list, so sorting in Python by the one clock function is cheap.
    """
    from ownership.territories.selectors import (
        TerritoryPolicies,
        stored_territory_id,
        with_stored_territory,
    )

    policy = policy_for_owner(user)
    territories = TerritoryPolicies.load()
    customers = with_stored_territory(
        Customer.objects.filter(owner=user, merged_into__isnull=True).select_related("industry")
    )
    rows = []
    for customer in customers:
        clock = compute_clock(
            owner_id=customer.owner_id,
            stage=customer.stage,
            clock_started_at=customer.clock_started_at,
            last_follow_up_at=customer.last_follow_up_at,
            policy=territories.apply(policy, stored_territory_id(customer)),
        )
        rows.append(
            OwnedCustomer(
                customer=customer,
                clock=clock,
                days_left=clock.days_left(now),
                warning=clock.in_warning_window(now) or clock.is_due(now),
            )
        )
    far_future = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda row: (row.clock.returns_at or far_future, row.customer.pk))
    return rows


def shared_with(customer: Customer) -> QuerySet[User]:
    from crm.models import CustomerUserObjectPermission

    return User.objects.filter(
        pk__in=CustomerUserObjectPermission.objects.filter(
            content_object=customer, permission__codename="view_shared_customer"
        ).values("user_id")
    ).order_by("display_name", "username")


def share_candidates(owner: User) -> QuerySet[User]:
    """Colleagues an owner may share with: active people of the owner's team."""
    if owner.team_id is None:
        return User.objects.none()
    return (
        User.objects.filter(team_id=owner.team_id, is_active=True)
        .exclude(pk=owner.pk)
        .order_by("display_name", "username")
    )


def effective_policies(
    team_ids: list[int | None] | set[int | None],
) -> dict[int | None, PolicyValues]:
    """`effective_policy` of many teams at once (key None: a user without a team).

    Two queries whatever the count (every team and every policy: both small tables), for
    pages that show the holding cap of a whole team's reps side by side.
    """
    teams = {team.pk: team for team in Team.objects.only("pk", "name", "parent_id")}
    rows = {row.team_id: row for row in PoolPolicy.objects.filter(territory__isnull=True)}
    default_row = rows.get(None) or global_policy()
    default = PolicyValues.from_policy(default_row, _("global default"))
    result: dict[int | None, PolicyValues] = {None: default}
    for team_id in set(team_ids):
        node = teams.get(team_id) if team_id is not None else None
        seen: set[int] = set()
        found = default
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            if node.pk in rows:
                level = _("team %(team)s") % {"team": node.name}
                found = PolicyValues.from_policy(rows[node.pk], level)
                break
            node = teams.get(node.parent_id) if node.parent_id is not None else None
        result[team_id] = found
    return result
