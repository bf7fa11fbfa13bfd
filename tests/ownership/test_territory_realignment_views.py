"""The realignment pages: a preview that moves nothing, a decision per group, a confirmation,
and an application that moves exactly what the preview listed (or nothing when it changed)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from crm.models import Customer, Role, Team, User
from ownership.models import (
    CustomerTerritory,
    EventKind,
    OwnershipEvent,
    Realignment,
    RuleSet,
)
from ownership.territories.services import realignment_preview, rule_set_activate
from tests.conftest import login
from tests.factories import TeamFactory, UserFactory
from tests.ownership.territory_helpers import (
    BEIJING,
    HAIDIAN,
    PUDONG,
    SHANGHAI,
    customer_in,
    two_region_rule_set,
)


@pytest.fixture
def north_rep(other_team: Team) -> User:
    return UserFactory(username="northrep", display_name="赵北", role=Role.REP, team=other_team)


@pytest.fixture
def world(
    rep: User, second_rep: User, north_rep: User, team: Team, other_team: Team, crm_admin: User
) -> dict[str, Any]:
    """The east team (rep, second_rep) and the north team (north_rep) under an active rule
    set; some customers lie outside their owner's team, others inside."""
    rule_set = two_region_rule_set(east=team, north=other_team)
    third = TeamFactory(name="西南销售部")
    third_rep = UserFactory(username="southwest", role=Role.REP, team=third)
    customers = {
        "east_in_beijing_1": customer_in(HAIDIAN, owner=rep, name="北京海淀一号科技有限公司"),
        "east_in_beijing_2": customer_in(
            BEIJING, owner=second_rep, name="北京朝阳二号科技有限公司"
        ),
        "east_at_home": customer_in(SHANGHAI, owner=rep, name="上海黄浦本地贸易有限公司"),
        "north_in_shanghai": customer_in(PUDONG, owner=north_rep, name="上海浦东三号物流有限公司"),
        "north_at_home": customer_in(HAIDIAN, owner=north_rep, name="北京海淀本地咨询有限公司"),
        "third_in_shanghai": customer_in(
            SHANGHAI, owner=third_rep, name="上海黄浦四号医药有限公司"
        ),
        "pool_in_beijing": customer_in(BEIJING, name="北京公海五号食品有限公司"),
    }
    rule_set_activate(actor=crm_admin, rule_set=rule_set)
    return {"rule_set": rule_set, "customers": customers, "third": third, "third_rep": third_rep}


def _snapshot() -> tuple[int, list[tuple[int, int | None]], int, int]:
    return (
        OwnershipEvent.objects.count(),
        list(Customer.objects.order_by("pk").values_list("pk", "owner_id")),
        CustomerTerritory.objects.filter(realignment_exception=True).count(),
        Realignment.objects.count(),
    )


def test_the_preview_and_its_download_move_nothing(
    client: Client, crm_admin: User, world: dict[str, Any]
) -> None:
    before = _snapshot()
    login(client, crm_admin)
    response = client.get(reverse("realignment_preview"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "华东销售部 → 华北销售部" in body
    assert "北京海淀一号科技有限公司" in body and "上海黄浦本地贸易有限公司" not in body
    assert response.context["preview"].total == 4
    export = client.get(reverse("realignment_export"))
    assert export.status_code == 200
    text = export.content.decode("utf-8")
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(lines) == 1 + 4
    assert {line[1] for line in lines[1:]} == {
        "北京海淀一号科技有限公司",
        "北京朝阳二号科技有限公司",
        "上海浦东三号物流有限公司",
        "上海黄浦四号医药有限公司",
    }
    # The confirmation step does not move anything either.
    preview = response.context["preview"]
    client.post(reverse("realignment_confirm"), _decisions(preview, {}))
    assert _snapshot() == before


def _decisions(preview: Any, chosen: dict[str, tuple[str, User | None]]) -> dict[str, str]:
    """The POST of the preview form: `chosen` maps a group key to (choice, rep)."""
    data = {"fingerprint": preview.fingerprint}
    for index, group in enumerate(preview.groups):
        data[f"g{index}-key"] = group.key
        choice, rep = chosen.get(group.key, ("", None))
        if choice:
            data[f"g{index}-choice"] = choice
        if rep is not None:
            data[f"g{index}-rep"] = str(rep.pk)
    return data


def test_what_is_applied_is_exactly_what_the_preview_showed(
    client: Client,
    crm_admin: User,
    world: dict[str, Any],
    team: Team,
    other_team: Team,
    north_rep: User,
) -> None:
    login(client, crm_admin)
    preview = client.get(reverse("realignment_preview")).context["preview"]
    east_to_north = f"{team.pk}:{other_team.pk}"
    north_to_east = f"{other_team.pk}:{team.pk}"
    third_to_east = f"{world['third'].pk}:{team.pk}"
    assert {g.key for g in preview.groups} == {east_to_north, north_to_east, third_to_east}
    shown = {g.key: sorted(c.pk for c in g.customers) for g in preview.groups}
    owners = {c.pk: c.owner_id for g in preview.groups for c in g.customers}
    events_before = OwnershipEvent.objects.count()
    untouched = [
        c.pk
        for key, c in world["customers"].items()
        if c.pk not in owners  # at home, or in the pool
    ]
    untouched_events = {
        pk: OwnershipEvent.objects.filter(customer_id=pk).count() for pk in untouched
    }

    data = _decisions(
        preview,
        {
            east_to_north: ("allocate", north_rep),
            north_to_east: ("pool", None),
            third_to_east: ("keep", None),
        },
    )
    confirm = client.post(reverse("realignment_confirm"), data)
    assert confirm.status_code == 200
    assert confirm.context["counts"] == {"allocate": 2, "pool": 1, "keep": 1}
    assert "赵北" in confirm.content.decode()
    assert OwnershipEvent.objects.count() == events_before  # still nothing moved

    response = client.post(reverse("realignment_apply"), {**data, "confirmed": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("realignment_preview")
    assert "已应用重新划分：1 个留在原负责人名下（例外），1 个退回公海，2 个已分配。" in (
        response.content.decode()
    )
    record = Realignment.objects.get()
    assert record.counts == {"allocate": 2, "pool": 1, "keep": 1}
    assert record.rule_set == world["rule_set"]
    assert {entry["group"]: sorted(entry["customers"]) for entry in record.decisions} == shown

    # One ledger event per moved customer, caused by this realignment; none for the kept.
    new_events = list(OwnershipEvent.objects.filter(pk__gt=0).order_by("pk")[events_before:])
    assert sorted(e.customer_id for e in new_events) == sorted(
        shown[east_to_north] + shown[north_to_east]
    )
    for event in new_events:
        assert event.cause == record
        assert event.actor == crm_admin
        assert event.from_owner_id == owners[event.customer_id]
        assert "2026 版" in event.reason
        if event.customer_id in shown[east_to_north]:
            assert (event.kind, event.to_owner) == (EventKind.TRANSFERRED, north_rep)
        else:
            assert (event.kind, event.to_owner) == (EventKind.RECYCLED, None)
    kept = shown[third_to_east][0]
    assert Customer.objects.get(pk=kept).owner == world["third_rep"]
    assert CustomerTerritory.objects.get(customer_id=kept).realignment_exception
    for pk, count in untouched_events.items():
        assert OwnershipEvent.objects.filter(customer_id=pk).count() == count
    # Nothing is left to realign: the kept customer is an exception now.
    assert realignment_preview().total == 0


def test_a_preview_that_changed_meanwhile_is_refused_and_shown_again(
    client: Client, crm_admin: User, world: dict[str, Any], rep: User, north_rep: User
) -> None:
    login(client, crm_admin)
    preview = client.get(reverse("realignment_preview")).context["preview"]
    data = _decisions(preview, {g.key: ("pool", None) for g in preview.groups})
    confirm = client.post(reverse("realignment_confirm"), data)
    assert confirm.status_code == 200
    # Someone registers another Beijing customer for the east team before the confirmation.
    newcomer = customer_in(HAIDIAN, owner=rep, name="北京海淀新来六号科技有限公司")
    before = _snapshot()
    response = client.post(reverse("realignment_apply"), {**data, "confirmed": "yes"})
    assert response.status_code == 409
    body = response.content.decode()
    assert "没有移动任何客户" in body
    assert newcomer.display_name in body  # the new preview
    assert response.context["preview"].total == preview.total + 1
    assert _snapshot() == before
    # The confirmation page refuses a stale preview the same way.
    response = client.post(reverse("realignment_confirm"), data)
    assert response.status_code == 409 and _snapshot() == before


def test_every_group_needs_a_decision_and_an_allocation_a_rep_of_the_team(
    client: Client, crm_admin: User, world: dict[str, Any], rep: User, team: Team
) -> None:
    login(client, crm_admin)
    preview = client.get(reverse("realignment_preview")).context["preview"]
    before = _snapshot()
    first = preview.groups[0]
    data = _decisions(preview, {first.key: ("pool", None)})
    response = client.post(reverse("realignment_apply"), {**data, "confirmed": "yes"})
    assert response.status_code == 400
    assert "请为每一组选择处理方式" in response.content.decode()
    # A rep of the owner's own team is not a rep of the responsible team.
    east_to_north = next(g for g in preview.groups if g.key.startswith(f"{team.pk}:"))
    chosen = {g.key: ("pool", None) for g in preview.groups}
    chosen[east_to_north.key] = ("allocate", rep)
    response = client.post(
        reverse("realignment_apply"), {**_decisions(preview, chosen), "confirmed": "yes"}
    )
    assert response.status_code == 400
    chosen[east_to_north.key] = ("allocate", None)
    response = client.post(
        reverse("realignment_apply"), {**_decisions(preview, chosen), "confirmed": "yes"}
    )
    assert response.status_code == 400
    assert "请选择接收这些客户的销售" in response.content.decode()
    assert _snapshot() == before


def test_realignment_pages_are_for_administrators(
    client: Client, personas: dict[str, User], world: dict[str, Any]
) -> None:
    before = _snapshot()
    for persona in ("rep", "manager", "committee"):
        client.logout()
        login(client, personas[persona])
        for name in ("realignment_preview", "realignment_export", "realignment_exceptions"):
            assert client.get(reverse(name)).status_code == 403, (persona, name)
        for name in ("realignment_confirm", "realignment_apply", "realignment_exception_clear"):
            assert client.post(reverse(name), {"confirmed": "yes"}).status_code == 403
    assert _snapshot() == before


def test_exceptions_are_listed_and_cleared(
    client: Client,
    crm_admin: User,
    world: dict[str, Any],
    django_assert_max_num_queries: Any,
) -> None:
    login(client, crm_admin)
    preview = client.get(reverse("realignment_preview")).context["preview"]
    data = _decisions(preview, {g.key: ("keep", None) for g in preview.groups})
    assert (
        client.post(reverse("realignment_apply"), {**data, "confirmed": "yes"}).status_code == 302
    )
    assert realignment_preview().total == 0
    with django_assert_max_num_queries(10):
        response = client.get(reverse("realignment_exceptions"))
    body = response.content.decode()
    kept = [c for g in preview.groups for c in g.customers]
    assert len(kept) == 4 and all(c.display_name in body for c in kept)
    assert "重新划分" in body
    # Searching narrows the list.
    body = client.get(reverse("realignment_exceptions"), {"q": "浦东三号"}).content.decode()
    assert "上海浦东三号物流有限公司" in body and "北京海淀一号科技有限公司" not in body
    # One row's button clears that row only, even with other rows ticked.
    one, two, *_rest = kept
    response = client.post(
        reverse("realignment_exception_clear"),
        {"customer": str(one.pk), "selected": [str(two.pk)], "next": "?q=x"},
    )
    assert response.status_code == 302 and response["Location"].endswith("?q=x")
    assert not CustomerTerritory.objects.get(customer=one).realignment_exception
    assert CustomerTerritory.objects.get(customer=two).realignment_exception
    assert realignment_preview().total == 1
    # Ticked rows are cleared together; nothing chosen is a clear message.
    response = client.post(
        reverse("realignment_exception_clear"), {"selected": [str(c.pk) for c in kept[1:]]}
    )
    assert CustomerTerritory.objects.filter(realignment_exception=True).count() == 0
    response = client.post(reverse("realignment_exception_clear"), {"selected": ["x"]}, follow=True)
    assert "请选择要清除的例外" in response.content.decode()
    assert realignment_preview().total == 4


def test_the_preview_without_an_active_rule_set(client: Client, crm_admin: User) -> None:
    assert not RuleSet.objects.exists()
    login(client, crm_admin)
    response = client.get(reverse("realignment_preview"))
    assert response.status_code == 200
    assert "没有生效的区域规则" in response.content.decode()
    response = client.post(reverse("realignment_apply"), {"fingerprint": "", "confirmed": "yes"})
    assert response.status_code == 400
