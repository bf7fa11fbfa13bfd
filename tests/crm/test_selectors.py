"""The customer scope compiled once per kind of user (visible_customers_sql) is the very
query customers_visible_to builds, for every persona, and answers the same."""

from __future__ import annotations

import pytest
from django.db import connection

from crm.models import Customer, User
from crm.selectors import customers_visible_to, visible_customers_sql
from ownership import services as ownership
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def _ids(user: User) -> set[int]:
    scope = visible_customers_sql(user)
    if scope is None:
        return set(Customer.objects.values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(scope[0], scope[1])
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def customers(rep: User, second_rep: User, other_team: object) -> dict[str, Customer]:
    outsider = UserFactory(username="outsider", role="rep", team=other_team)
    found = {
        "mine": CustomerFactory.create(owner=rep),
        "colleague": CustomerFactory.create(owner=second_rep),
        "pool": CustomerFactory.create(owner=None),
        "other_team": CustomerFactory.create(owner=outsider),
        "shared": CustomerFactory.create(owner=second_rep),
    }
    ownership.customer_share(actor=second_rep, customer=found["shared"], colleague=rep)
    return found


def test_every_persona_sees_what_the_orm_scope_shows(
    personas: dict[str, User], customers: dict[str, Customer]
) -> None:
    inactive = UserFactory(username="gone", role="rep", is_active=False)
    for name, user in [*personas.items(), ("inactive", inactive)]:
        expected = set(customers_visible_to(user).values_list("pk", flat=True))
        assert _ids(user) == expected, name
    assert _ids(personas["rep"]) == {customers["mine"].pk, customers["shared"].pk}
    assert _ids(inactive) == set()


def test_the_compiled_scope_is_the_orm_query_for_the_user(personas: dict[str, User]) -> None:
    for name, user in personas.items():
        queryset = customers_visible_to(user)
        scope = visible_customers_sql(user)
        if not queryset.query.where:
            assert scope is None, name
            continue
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
        assert scope == (sql, list(params)), name


def test_two_reps_get_their_own_ids_from_one_compiled_query(
    rep: User, second_rep: User, customers: dict[str, Customer]
) -> None:
    assert _ids(rep) != _ids(second_rep)
    assert customers["colleague"].pk in _ids(second_rep)
    assert customers["colleague"].pk not in _ids(rep)
