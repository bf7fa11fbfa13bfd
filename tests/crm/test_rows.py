"""Instances from crm.rows are the instances the ORM builds: every column converted the same
way, related objects cached as select_related caches them, nulls followed as nulls."""

from __future__ import annotations

import pytest
from django.db.models import Model
from django.utils import timezone

from crm.models import Customer, User
from crm.rows import RowLoader
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _columns(instance: Model) -> dict[str, object]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_customers_with_owner_and_team_match_the_orm(rep: User) -> None:
    owned = CustomerFactory.create(display_name="厦门智博物流有限公司", owner=rep)
    pooled = CustomerFactory.create(display_name="成都云帆网络科技有限公司", owner=None)
    loader = RowLoader(Customer, ["owner", "owner__team"])
    ids = [owned.pk, pooled.pk]

    loaded = loader.in_bulk(ids)
    expected = Customer.objects.select_related("owner", "owner__team").in_bulk(ids)

    assert set(loaded) == set(ids)
    for pk in ids:
        assert _columns(loaded[pk]) == _columns(expected[pk])
        assert loaded[pk]._state.adding is False
        assert loaded[pk]._state.db == "default"
    # The JSON column is decoded as JSONField decodes it, not left as text.
    assert isinstance(loaded[owned.pk].name_parts, dict)
    assert loaded[owned.pk].name_parts == expected[owned.pk].name_parts
    assert Customer.owner.is_cached(loaded[owned.pk])  # type: ignore[attr-defined]
    assert _columns(loaded[owned.pk].owner) == _columns(rep)
    assert loaded[owned.pk].owner.team == rep.team
    assert Customer.owner.is_cached(loaded[pooled.pk])  # type: ignore[attr-defined]
    assert loaded[pooled.pk].owner is None


def test_no_query_follows_for_the_related_objects(
    rep: User, django_assert_num_queries: object
) -> None:
    customer = CustomerFactory.create(owner=rep)
    loader = RowLoader(Customer, ["owner", "owner__team"])
    with django_assert_num_queries(1):  # type: ignore[operator]
        loaded = loader.get(customer.pk)
        assert loaded is not None
        assert str(loaded.owner.team) == str(rep.team)


def test_missing_rows_are_left_out(rep: User) -> None:
    loader = RowLoader(User)
    assert loader.get(-1) is None
    assert loader.in_bulk([]) == {}
    assert list(loader.in_bulk([rep.pk, -1])) == [rep.pk]


def test_only_foreign_keys_can_be_followed() -> None:
    with pytest.raises(ValueError, match="not a foreign key"):
        RowLoader(Customer, ["display_name"]).get(1)


def test_a_condition_restricts_and_extra_columns_become_attributes(rep: User) -> None:
    mine = CustomerFactory.create(owner=rep)
    pooled = CustomerFactory.create(owner=None)
    loader = RowLoader(Customer, extra={"doubled": "SELECT t0.id * 2"})
    where = ("t0.owner_id = %s", [rep.pk])

    assert list(loader.in_bulk([mine.pk, pooled.pk], where=where)) == [mine.pk]
    assert loader.get(pooled.pk, where=where) is None
    loaded = loader.get(mine.pk)
    assert loaded is not None
    assert loaded.doubled == mine.pk * 2  # type: ignore[attr-defined]


def test_filter_reads_the_rows_meeting_a_condition_in_order(rep: User) -> None:
    first = CustomerFactory.create(owner=rep, display_name="甲方科技有限公司")
    second = CustomerFactory.create(owner=rep, display_name="乙方科技有限公司")
    CustomerFactory.create(owner=None)
    loader = RowLoader(Customer, ["owner"])

    found = loader.filter(("t0.owner_id = %s", [rep.pk]), order_by="t0.id DESC")

    assert [c.pk for c in found] == [second.pk, first.pk]
    assert all(c.owner == rep for c in found)


def _stored(model: type[Model], pk: int) -> dict[str, object]:
    return _columns(model._default_manager.get(pk=pk))


def test_insert_stores_what_save_stores(rep: User) -> None:
    from allocation.models import Registration
    from crm.rows import insert
    from crm.services import _apply_identity

    by_save = Customer(display_name="厦门智博物流有限公司", address="厦门市思明区\t1号", owner=rep)
    _apply_identity(by_save, [])
    by_save.save()
    by_insert = Customer(
        display_name="厦门智博物流有限公司", address="厦门市思明区\t1号", owner=rep
    )
    _apply_identity(by_insert, [])
    by_insert.name_key += "二"  # the unique name key: another company
    by_save.name_key += "一"
    Customer.objects.filter(pk=by_save.pk).update(name_key=by_save.name_key)
    insert(by_insert)

    assert by_insert.pk is not None and by_insert._state.adding is False
    saved, inserted = _stored(Customer, by_save.pk), _stored(Customer, by_insert.pk)
    for name in ("id", "created_at", "updated_at", "name_key"):
        saved.pop(name), inserted.pop(name)
    assert inserted == saved
    assert _columns(by_insert) == {
        **_stored(Customer, by_insert.pk),
        # auto_now fields were set on the instance as save sets them
        "created_at": by_insert.created_at,
        "updated_at": by_insert.updated_at,
    }

    registration = Registration(
        rep=rep, customer=by_insert, submitted_at=timezone.now(), soft_matches_shown=[{"名": 1}]
    )
    insert(registration)
    assert _stored(Registration, registration.pk)["soft_matches_shown"] == [{"名": 1}]


def test_insert_refuses_unsaved_related_objects_as_save_does(rep: User) -> None:
    from allocation.models import Registration
    from crm.rows import insert

    with pytest.raises(ValueError, match="unsaved related object"):
        insert(Registration(rep=rep, customer=Customer(display_name="未保存公司")))
