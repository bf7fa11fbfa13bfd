"""Permission-scoped reads of the people and customer domain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import EmptyResultSet, PermissionDenied
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404

from crm.models import (
    Contact,
    Customer,
    CustomerUserObjectPermission,
    EmploymentState,
    FollowUp,
    Role,
    Team,
    User,
)
from crm.models import PossibleDuplicate as PossibleDuplicateRecord

if TYPE_CHECKING:
    from crm.filters import CustomerFilter

# One recursive query, so a manager's scope stays a single SQL subquery however deep the tree.
_SUBTREE_SQL = """
    WITH RECURSIVE subtree(id) AS (
        SELECT id FROM crm_team WHERE {root}
        UNION
        SELECT t.id FROM crm_team t JOIN subtree s ON t.parent_id = s.id
    )
    SELECT id FROM subtree
"""


def teams_under(team: Team) -> QuerySet[Team]:
    """The team and every team nested below it."""
    return Team.objects.filter(id__in=RawSQL(_SUBTREE_SQL.format(root="id = %s"), (team.pk,)))


def teams_managed_by(user: User) -> QuerySet[Team]:
    """Teams the user manages, with every team nested below them."""
    return Team.objects.filter(
        id__in=RawSQL(_SUBTREE_SQL.format(root="manager_id = %s"), (user.pk,))
    )


def team_members_for(user: User) -> QuerySet[User]:
    """People a user may see on the team page: a manager sees the teams they manage."""
    base = User.objects.select_related("team").order_by("team__name", "display_name", "username")
    if user.is_crm_admin:
        return base
    if user.is_manager:
        return base.filter(team__in=teams_managed_by(user))
    return base.none()


def active_reps(team: Team) -> QuerySet[User]:
    return User.objects.filter(
        team__in=teams_under(team), role=Role.REP, is_active=True, state=EmploymentState.ACTIVE
    )


# --- Customers ---------------------------------------------------------------------------

# `?sort=` values of the customer list and the columns they order by (anything else: default).
CUSTOMER_SORTS: dict[str, str] = {
    "name": "display_name",
    "created": "created_at",
    "stage": "stage",
    "tier": "value_tier",
    "last_follow_up": "last_follow_up_at",
}
CUSTOMER_DEFAULT_SORT = "-created"


# Object permissions (django-guardian, direct foreign-key table) that let a user read a
# customer outside their role scope: an owner's share, a committee case, a handover preview.
READ_GRANTS = ("view_shared_customer", "view_case_customer", "preview_handover_customer")


def granted_customer_ids(user: User) -> QuerySet[CustomerUserObjectPermission, Any]:
    """A subquery (never a Python list) of customer ids the user holds a read grant on."""
    return CustomerUserObjectPermission.objects.filter(
        user=user, permission__codename__in=READ_GRANTS
    ).values("content_object_id")


def customers_visible_to(user: User) -> QuerySet[Customer]:
    """The one scope of customer reads: which customers a user may see at all.

    Role scope — reps: their own; managers: those owned by members of the teams they manage
    (the whole subtree) and the pool; admins: all; committee members: none — plus the
    customers the user holds a read grant on. One SQL query either way. Merged records stay
    visible here (their page explains the merge); lists leave them out.
    """
    base = Customer.objects.all()
    if not user.is_active:
        return base.none()
    if user.is_crm_admin:
        return base
    granted = Q(pk__in=granted_customer_ids(user))
    if user.is_manager:
        return base.filter(
            Q(owner__team__in=teams_managed_by(user)) | Q(owner__isnull=True) | granted
        )
    if user.is_rep:
        return base.filter(Q(owner=user) | granted)
    return base.filter(granted)


# A user id no user has: it marks where a user's id goes in the compiled scope below.
_SCOPE_STAND_IN = -1_000_000_007
# The scope's SQL for each kind of user: the statement, its parameters with the stand-in
# where the user's id goes; None: every customer; ("", ()): none.
_scope_sql: dict[tuple[bool, bool, bool, bool], tuple[str, tuple[Any, ...]] | None] = {}


def _scope_kind(user: User) -> tuple[bool, bool, bool, bool]:
    """What customers_visible_to branches on (the rest of its query is the user's id)."""
    return (user.is_active, user.is_crm_admin, user.is_manager, user.is_rep)


def visible_customers_sql(user: User) -> tuple[str, list[Any]] | None:
    """customers_visible_to(user) as ``SELECT id …`` SQL with its parameters, None when the
    user may see every customer.

    The same query, compiled once per kind of user rather than on every request: the ORM
    builds it for a stand-in with the user's role, and the user's id takes the stand-in's
    place in the parameters (crm.rows loads by it, e.g. the ownership page's customer).
    """
    kind = _scope_kind(user)
    if kind not in _scope_sql:
        active, admin, manager, rep = kind
        role = Role.ADMIN if admin else Role.MANAGER if manager else Role.REP if rep else ""
        stand_in = User(pk=_SCOPE_STAND_IN, is_active=active, role=role or Role.COMMITTEE)
        assert _scope_kind(stand_in) == kind, kind
        queryset = customers_visible_to(stand_in)
        if not queryset.query.where:
            _scope_sql[kind] = None
        else:
            try:
                sql, params = queryset.order_by().values("pk").query.sql_with_params()
            except EmptyResultSet:
                sql, params = "", ()
            _scope_sql[kind] = (sql, tuple(params))
    compiled = _scope_sql[kind]
    if compiled is None:
        return None
    sql, params = compiled
    if not sql:
        return "SELECT NULL::bigint WHERE false", []
    return sql, [user.pk if param == _SCOPE_STAND_IN else param for param in params]


def customers_changeable_by(user: User) -> QuerySet[Customer]:
    """Customers a user may edit, add contacts to and log follow-ups on.

    Reps: their own; managers: their teams' (not the pool: claiming goes through allocation);
    admins: all. Merged records are read-only.
    """
    base = Customer.objects.filter(merged_into__isnull=True)
    if user.is_crm_admin:
        return base
    if user.is_manager:
        return base.filter(owner__team__in=teams_managed_by(user))
    if user.is_rep:
        return base.filter(owner=user)
    return base.none()


def customer_for(user: User, pk: int) -> Customer:
    """A customer the user may see, or Http404 (never a hint that someone else's exists)."""
    queryset = customers_visible_to(user).select_related(
        "owner", "owner__team", "industry", "created_by", "merged_into"
    )
    return get_object_or_404(queryset, pk=pk)


def customer_for_change(user: User, pk: int) -> Customer:
    """A customer the user may change: 404 when invisible, 403 when only visible."""
    customer = customer_for(user, pk)
    if not can_change_customer(user, customer):
        raise PermissionDenied
    return customer


def can_change_customer(user: User, customer: Customer) -> bool:
    return customers_changeable_by(user).filter(pk=customer.pk).exists()


def customer_owner_choices(user: User) -> QuerySet[User]:
    """Owners a user may filter the customer list by: reps and managers in their scope."""
    people = User.objects.filter(role__in=[Role.REP, Role.MANAGER]).select_related("team")
    if user.is_crm_admin:
        return people.order_by("display_name", "username")
    if user.is_manager:
        return people.filter(team__in=teams_managed_by(user)).order_by("display_name", "username")
    return people.none()


def customer_list(
    user: User, params: Mapping[str, Any]
) -> tuple[CustomerFilter, QuerySet[Customer], str]:
    """The customer list for `user` filtered by `params` (GET) and sorted by `?sort=`.

    Returns the bound FilterSet (for the form), the queryset (owner, team and industry joined:
    one query per page whatever the rows) and the sort actually applied.
    """
    from crm.filters import CustomerFilter  # the filters import this module's choices

    scoped = customers_visible_to(user).filter(merged_into__isnull=True)
    filterset = CustomerFilter(params, queryset=scoped, user=user)
    queryset = filterset.qs if filterset.is_valid() else scoped.none()
    sort = params.get("sort") or CUSTOMER_DEFAULT_SORT
    column = CUSTOMER_SORTS.get(sort.removeprefix("-"))
    if column is None:
        sort = CUSTOMER_DEFAULT_SORT
        column = CUSTOMER_SORTS[sort.removeprefix("-")]
    order = F(column).desc(nulls_last=True) if sort.startswith("-") else F(column).asc()
    queryset = queryset.select_related("owner", "owner__team", "industry").order_by(order, "-id")
    return filterset, queryset, sort


def customer_timeline(customer: Customer) -> QuerySet[FollowUp]:
    """The customer's follow-ups, newest first."""
    return customer.follow_ups.select_related("by").order_by("-happened_at", "-id")


def customer_contacts(customer: Customer) -> QuerySet[Contact]:
    return customer.contacts.order_by("name", "id")


def customer_open_duplicates(customer: Customer) -> list[PossibleDuplicateRecord]:
    """Unresolved possible-duplicate pairs the customer is part of, either side."""
    return list(
        PossibleDuplicateRecord.objects.filter(
            Q(customer=customer) | Q(candidate=customer), resolved_at__isnull=True
        )
        .select_related("customer__owner__team", "candidate__owner__team", "confirmed_distinct_by")
        .order_by("-score", "id")
    )


def visible_customer_ids(user: User, ids: Iterable[int]) -> set[int]:
    """Which of `ids` the user may see (to decide how much of a match to show)."""
    wanted = list(ids)
    if not wanted:
        return set()
    return set(customers_visible_to(user).filter(pk__in=wanted).values_list("pk", flat=True))
