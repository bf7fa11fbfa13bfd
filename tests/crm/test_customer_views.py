"""Customer pages: who may see and change which customer, the list's filters, sorting,
pagination and query count, the edit / contact / follow-up forms, and the live duplicate
check that must not leak anything invariant 4 forbids."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm import customer_views, services
from crm.models import Customer, FollowUp, FunnelStage, Team, User, ValueTier
from tests.conftest import login
from tests.factories import CustomerFactory, UserFactory, credit_code_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider(other_team: Team) -> User:
    return UserFactory.create(username="outsider", display_name="外部销售", team=other_team)


@pytest.fixture
def own(rep: User) -> Customer:
    return CustomerFactory.create(display_name="杭州云杉数据有限公司", owner=rep)


@pytest.fixture
def teammates(second_rep: User) -> Customer:
    return CustomerFactory.create(
        display_name="苏州青柠网络科技有限公司",
        owner=second_rep,
        credit_code=credit_code_for(21, division="320500"),
        phone="13912345678",
        address="江苏省苏州市工业园区星湖街328号",
        notes="预算三百万",
    )


@pytest.fixture
def pool_customer(db: None) -> Customer:
    return CustomerFactory.create(display_name="宁波海曙远航贸易有限公司")


@pytest.fixture
def foreign(outsider: User) -> Customer:
    return CustomerFactory.create(display_name="天津滨海星火物流有限公司", owner=outsider)


def _detail(customer: Customer) -> str:
    return reverse("customer_detail", args=[customer.pk])


def _names(response) -> list[str]:
    return [c.display_name for c in response.context["page"].object_list]


# --- visibility and permissions ----------------------------------------------------------


CHANGE_URLS = ("customer_edit", "customer_contact_add", "customer_follow_up_add")


def test_rep_sees_only_their_own_customers(
    client: Client, rep: User, own: Customer, teammates: Customer, pool_customer: Customer
) -> None:
    login(client, rep)
    assert _names(client.get(reverse("customer_list"))) == [own.display_name]
    assert client.get(_detail(own)).status_code == 200


@pytest.mark.parametrize("name", ["customer_detail", *CHANGE_URLS])
def test_rep_gets_404_for_another_reps_customer(
    client: Client, rep: User, teammates: Customer, name: str
) -> None:
    login(client, rep)
    url = reverse(name, args=[teammates.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"display_name": "改掉", "name": "x", "summary": "x"}).status_code == (
        404 if name != "customer_detail" else 405
    )
    teammates.refresh_from_db()
    assert teammates.display_name == "苏州青柠网络科技有限公司"
    assert not teammates.contacts.exists()


def test_rep_gets_404_for_a_pool_customer(
    client: Client, rep: User, pool_customer: Customer
) -> None:
    login(client, rep)
    assert client.get(_detail(pool_customer)).status_code == 404


def test_manager_sees_the_teams_customers_and_the_pool_but_not_other_teams(
    client: Client,
    manager: User,
    own: Customer,
    teammates: Customer,
    pool_customer: Customer,
    foreign: Customer,
) -> None:
    login(client, manager)
    names = _names(client.get(reverse("customer_list")))
    assert sorted(names) == sorted(
        [own.display_name, teammates.display_name, pool_customer.display_name]
    )
    assert client.get(_detail(teammates)).status_code == 200
    assert client.get(_detail(pool_customer)).status_code == 200
    assert client.get(_detail(foreign)).status_code == 404


def test_manager_of_a_parent_team_sees_sub_team_customers(client: Client, db: None) -> None:
    boss = UserFactory.create(username="boss", role="manager")
    parent = Team.objects.create(name="销售总部", manager=boss)
    child = Team.objects.create(name="华南销售部", parent=parent)
    seller = UserFactory.create(username="seller", team=child)
    customer = CustomerFactory.create(display_name="深圳南山鲲鹏软件有限公司", owner=seller)
    login(client, boss)
    assert client.get(_detail(customer)).status_code == 200


@pytest.mark.parametrize("name", CHANGE_URLS)
def test_manager_may_change_the_teams_customers_but_not_the_pool(
    client: Client, manager: User, teammates: Customer, pool_customer: Customer, name: str
) -> None:
    login(client, manager)
    assert client.get(reverse(name, args=[teammates.pk])).status_code == 200
    assert client.get(reverse(name, args=[pool_customer.pk])).status_code == 403


def test_detail_shows_change_buttons_only_to_those_who_may_change(
    client: Client, manager: User, teammates: Customer, pool_customer: Customer
) -> None:
    login(client, manager)
    assert (
        reverse("customer_edit", args=[teammates.pk])
        in client.get(_detail(teammates)).content.decode()
    )
    assert (
        reverse("customer_edit", args=[pool_customer.pk])
        not in client.get(_detail(pool_customer)).content.decode()
    )


def test_admin_sees_and_changes_everything(
    client: Client, crm_admin: User, teammates: Customer, foreign: Customer
) -> None:
    login(client, crm_admin)
    assert client.get(_detail(foreign)).status_code == 200
    assert client.get(reverse("customer_edit", args=[foreign.pk])).status_code == 200


def test_committee_sees_no_customers_yet(
    client: Client, committee_member: User, teammates: Customer
) -> None:
    login(client, committee_member)
    assert _names(client.get(reverse("customer_list"))) == []
    assert client.get(_detail(teammates)).status_code == 404


@pytest.mark.parametrize(
    ("persona", "sees"), [("rep", True), ("manager", True), ("admin", True), ("committee", False)]
)
def test_navigation_links_the_customer_list(
    client: Client, personas: dict[str, User], persona: str, sees: bool
) -> None:
    login(client, personas[persona])
    body = client.get("/").content.decode()
    assert (f'href="{reverse("customer_list")}"' in body) is sees
    if sees:
        assert "客户" in body


def test_merged_customers_are_left_out_of_lists(client: Client, rep: User, own: Customer) -> None:
    survivor = CustomerFactory.create(display_name="合并后的客户", owner=rep)
    Customer.objects.filter(pk=own.pk).update(merged_into=survivor)
    login(client, rep)
    assert _names(client.get(reverse("customer_list"))) == ["合并后的客户"]
    # The merged record's own page still explains where it went, read-only.
    response = client.get(_detail(own))
    assert response.status_code == 200
    assert "合并后的客户" in response.content.decode()
    assert client.get(reverse("customer_edit", args=[own.pk])).status_code == 403


# --- list: filters, sort, pagination, query count ----------------------------------------


@pytest.fixture
def assorted(rep: User, second_rep: User) -> dict[str, Customer]:
    return {
        "suzhou": CustomerFactory.create(
            display_name="苏州青柠网络科技有限公司",
            owner=rep,
            address="江苏省苏州市工业园区星湖街328号",
            credit_code=credit_code_for(31, division="320500"),
            stage=FunnelStage.OPPORTUNITY,
            value_tier=ValueTier.A,
        ),
        "beijing": CustomerFactory.create(
            display_name="北京字节跳动科技有限公司",
            owner=rep,
            address="北京市海淀区中关村大街1号",
            stage=FunnelStage.RAW,
            value_tier=ValueTier.B,
            source="referral",
        ),
        "teammate": CustomerFactory.create(display_name="杭州云杉数据有限公司", owner=second_rep),
        "pool": CustomerFactory.create(display_name="宁波海曙远航贸易有限公司"),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"stage": "50"}, ["suzhou"]),
        ({"value_tier": "B"}, ["beijing"]),
        ({"source": "referral"}, ["beijing"]),
        ({"region": "32"}, ["suzhou"]),
        ({"region": "3205"}, ["suzhou"]),
        ({"region": "苏州"}, ["suzhou"]),
        ({"region": "北京"}, ["beijing"]),
        ({"q": "青柠"}, ["suzhou"]),
        ({"q": "字節跳動"}, ["beijing"]),  # traditional: through the normalised search key
        ({"q": credit_code_for(31, division="320500").lower()}, ["suzhou"]),
        ({"q": "不存在的公司"}, []),
    ],
)
def test_rep_list_filters(
    client: Client, rep: User, assorted: dict[str, Customer], params: dict, expected: list
) -> None:
    login(client, rep)
    response = client.get(reverse("customer_list"), params)
    assert response.status_code == 200
    assert sorted(_names(response)) == sorted(assorted[key].display_name for key in expected)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"ownership": "pool"}, ["pool"]),
        ({"ownership": "owned"}, ["suzhou", "beijing", "teammate"]),
    ],
)
def test_manager_list_filters_by_ownership(
    client: Client, manager: User, assorted: dict[str, Customer], params: dict, expected: list
) -> None:
    login(client, manager)
    response = client.get(reverse("customer_list"), params)
    assert sorted(_names(response)) == sorted(assorted[key].display_name for key in expected)


def test_manager_filters_by_owner_among_visible_reps(
    client: Client, manager: User, second_rep: User, outsider: User, assorted: dict
) -> None:
    login(client, manager)
    response = client.get(reverse("customer_list"), {"owner": second_rep.pk})
    assert _names(response) == ["杭州云杉数据有限公司"]
    # Someone outside the manager's teams is not a valid choice: the form says so, no leak.
    response = client.get(reverse("customer_list"), {"owner": outsider.pk})
    assert response.status_code == 200
    assert _names(response) == []
    assert "外部销售" not in response.content.decode()


def test_rep_has_no_owner_filter(client: Client, rep: User, assorted: dict) -> None:
    login(client, rep)
    body = client.get(reverse("customer_list")).content.decode()
    assert 'name="owner"' not in body
    assert 'name="ownership"' not in body


@pytest.mark.parametrize(
    ("sort", "first"),
    [("name", "beijing"), ("-stage", "suzhou"), ("tier", "suzhou"), ("-tier", "beijing")],
)
def test_list_sorts_by_whitelisted_columns(
    client: Client, rep: User, assorted: dict[str, Customer], sort: str, first: str
) -> None:
    login(client, rep)
    response = client.get(reverse("customer_list"), {"sort": sort})
    assert _names(response)[0] == assorted[first].display_name
    assert response.context["sort"] == sort


def test_unknown_sort_falls_back_to_newest_first(
    client: Client, rep: User, assorted: dict[str, Customer]
) -> None:
    login(client, rep)
    response = client.get(reverse("customer_list"), {"sort": "owner__password"})
    assert response.status_code == 200
    assert response.context["sort"] == "-created"


def test_sort_by_last_follow_up_puts_never_followed_last(client: Client, rep: User) -> None:
    never = CustomerFactory.create(owner=rep)
    old = CustomerFactory.create(owner=rep, last_follow_up_at=datetime(2024, 1, 1, tzinfo=UTC))
    recent = CustomerFactory.create(owner=rep, last_follow_up_at=datetime(2024, 6, 1, tzinfo=UTC))
    login(client, rep)
    response = client.get(reverse("customer_list"), {"sort": "-last_follow_up"})
    assert _names(response) == [recent.display_name, old.display_name, never.display_name]


def test_last_follow_up_is_shown_in_the_users_time_zone(client: Client, rep: User) -> None:
    CustomerFactory.create(owner=rep, last_follow_up_at=datetime(2024, 5, 1, 16, 30, tzinfo=UTC))
    login(client, rep)
    assert "2024-05-02 00:30" in client.get(reverse("customer_list")).content.decode()


def test_list_is_paginated_by_25_and_keeps_filters(client: Client, rep: User) -> None:
    for _i in range(30):
        CustomerFactory.create(owner=rep, value_tier=ValueTier.A)
    login(client, rep)
    first = client.get(reverse("customer_list"), {"value_tier": "A", "sort": "name"})
    assert len(_names(first)) == 25
    assert "value_tier=A&amp;sort=name&amp;page=2" in first.content.decode()
    second = client.get(reverse("customer_list"), {"value_tier": "A", "sort": "name", "page": "2"})
    assert len(_names(second)) == 5


# Session, user, count, page rows (owner, team, industry joined) and the filter form's
# industry choices; managers and admins add the owner choices. Never one per row.
LIST_QUERY_BOUND = 6


@pytest.mark.parametrize("count", [1, 10, 60])
@pytest.mark.parametrize("persona", ["rep", "manager", "admin"])
def test_list_runs_a_constant_number_of_queries(
    client: Client,
    personas: dict[str, User],
    django_assert_max_num_queries,
    persona: str,
    count: int,
) -> None:
    rep, second_rep = personas["rep"], personas["second_rep"]
    for i in range(count):
        CustomerFactory.create(owner=(rep, second_rep, None)[i % 3])
    login(client, personas[persona])
    with django_assert_max_num_queries(LIST_QUERY_BOUND):
        response = client.get(reverse("customer_list"), {"sort": "-last_follow_up"})
    assert response.status_code == 200


# --- edit --------------------------------------------------------------------------------


def _edit_data(customer: Customer, **changes: str) -> dict[str, str]:
    data = {
        "display_name": customer.display_name,
        "legal_name": customer.legal_name,
        "credit_code": customer.credit_code,
        "phone": customer.phone,
        "email": customer.email,
        "address": customer.address,
        "province": customer.province,
        "city": customer.city,
        "district": customer.district,
        "division_code": customer.division_code,
        "industry": str(customer.industry_id or ""),
        "size_band": customer.size_band,
        "value_tier": customer.value_tier,
        "lifecycle": customer.lifecycle,
        "source": customer.source,
        "notes": customer.notes,
    }
    data.update(changes)
    return data


def test_edit_saves_through_the_service(client: Client, rep: User, own: Customer) -> None:
    login(client, rep)
    url = reverse("customer_edit", args=[own.pk])
    page = client.get(url).content.decode()
    assert 'id="duplicate-check"' in page
    assert 'aria-live="polite"' in page
    assert f'hx-get="{reverse("customer_duplicate_check")}?exclude={own.pk}"' in page
    response = client.post(
        url, _edit_data(own, value_tier="A", address="江苏省苏州市工业园区星湖街328号")
    )
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.value_tier == "A"
    assert (own.province, own.city, own.division_code) == ("江苏省", "苏州市", "3205")


def test_edit_keeps_explicit_division_fields(client: Client, rep: User, own: Customer) -> None:
    login(client, rep)
    client.post(
        reverse("customer_edit", args=[own.pk]),
        _edit_data(
            own, address="某某路1号", province="浙江省", city="杭州市", division_code="3301"
        ),
    )
    own.refresh_from_db()
    assert (own.province, own.city, own.division_code) == ("浙江省", "杭州市", "3301")


def test_edit_shows_service_errors_on_fields(client: Client, rep: User, own: Customer) -> None:
    good = credit_code_for(41)
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    login(client, rep)
    response = client.post(
        reverse("customer_edit", args=[own.pk]),
        _edit_data(own, credit_code=bad, display_name="字" * 201),
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "校验位（最后一位）错误" in form.errors["credit_code"][0]
    assert "201" in form.errors["display_name"][0]
    own.refresh_from_db()
    assert own.display_name == "杭州云杉数据有限公司"


def test_edit_collision_names_the_existing_customer_and_nothing_more(
    client: Client, rep: User, own: Customer, teammates: Customer
) -> None:
    login(client, rep)
    response = client.post(
        reverse("customer_edit", args=[own.pk]),
        _edit_data(own, display_name="青柠网络科技(苏州)有限公司"),
    )
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert len(errors) == 1
    message = errors[0]
    assert "苏州青柠网络科技有限公司" in message
    assert "李娜" in message and "华东销售部" in message
    body = response.content.decode()
    for secret in (teammates.credit_code, "13912345678", "星湖街", "预算三百万"):
        assert secret not in message
        assert secret not in body
    own.refresh_from_db()
    assert own.display_name == "杭州云杉数据有限公司"


# --- contacts and follow-ups -------------------------------------------------------------


def test_add_contact(client: Client, rep: User, own: Customer) -> None:
    login(client, rep)
    url = reverse("customer_contact_add", args=[own.pk])
    response = client.post(url, {"name": "王经理", "title": "采购总监", "mobile": "010-62345678"})
    assert response.status_code == 200
    assert "不是手机号码" in response.context["form"].errors["mobile"][0]
    response = client.post(url, {"name": "王经理", "title": "采购总监", "mobile": "13800138000"})
    assert response.status_code == 302
    body = client.get(_detail(own)).content.decode()
    assert "王经理" in body and "+8613800138000" in body


def test_log_follow_up_in_the_users_time_zone(client: Client, rep: User, own: Customer) -> None:
    login(client, rep)
    url = reverse("customer_follow_up_add", args=[own.pk])
    page = client.get(url).content.decode()
    assert 'type="datetime-local"' in page
    response = client.post(
        url,
        {
            "kind": "visit",
            "happened_at": "2024-05-02T08:30",
            "summary": "上门拜访，确认需求",
            "next_step": "发报价",
            "stage_after": "25",
        },
    )
    assert response.status_code == 302
    follow_up = FollowUp.objects.get(customer=own)
    assert follow_up.happened_at == datetime(2024, 5, 2, 0, 30, tzinfo=UTC)
    assert follow_up.by == rep
    own.refresh_from_db()
    assert own.stage == 25
    body = client.get(_detail(own)).content.decode()
    assert "2024-05-02 08:30" in body and "上门拜访，确认需求" in body


def test_follow_up_timeline_is_newest_first(client: Client, rep: User, own: Customer) -> None:
    for day, text in ((1, "第一次"), (3, "第三次"), (2, "第二次")):
        services.follow_up_log(
            actor=rep,
            customer=own,
            kind="call",
            happened_at=datetime(2024, 5, day, 2, tzinfo=UTC),
            summary=text,
        )
    login(client, rep)
    body = client.get(_detail(own)).content.decode()
    assert body.index("第三次") < body.index("第二次") < body.index("第一次")


def test_moving_back_without_reason_shows_the_services_message(client: Client, rep: User) -> None:
    customer = CustomerFactory.create(owner=rep, stage=FunnelStage.MATCHED)
    login(client, rep)
    response = client.post(
        reverse("customer_follow_up_add", args=[customer.pk]),
        {
            "kind": "call",
            "happened_at": "2024-05-02T08:30",
            "summary": "需求变了",
            "stage_after": "25",
        },
    )
    assert response.status_code == 200
    assert "原因" in response.context["form"].errors["stage_reason"][0]
    assert not FollowUp.objects.exists()


def test_follow_up_with_bad_date_gets_a_chinese_message(
    client: Client, rep: User, own: Customer
) -> None:
    login(client, rep)
    response = client.post(
        reverse("customer_follow_up_add", args=[own.pk]),
        {"kind": "call", "happened_at": "明天", "summary": "x", "stage_after": "0"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["happened_at"]
    assert "输入" in response.context["form"].errors["happened_at"][0]


def test_detail_flags_possible_duplicates_without_leaking(
    client: Client, rep: User, teammates: Customer
) -> None:
    mine = CustomerFactory.create(
        display_name="苏州青柠网络传媒有限公司", owner=rep, allow_possible_duplicates=True
    )
    assert mine.needs_duplicate_review
    login(client, rep)
    body = client.get(_detail(mine)).content.decode()
    assert "可能重复" in body
    assert teammates.display_name in body and "李娜" in body
    assert _detail(teammates) not in body
    for secret in (teammates.credit_code, "13912345678", "星湖街", "预算三百万"):
        assert secret not in body


# --- live duplicate check ----------------------------------------------------------------


@pytest.fixture
def check_client(client: Client, rep: User) -> Iterator[Client]:
    cache.delete(customer_views.rate_limit_key(rep))
    yield login(client, rep)
    cache.delete(customer_views.rate_limit_key(rep))


def _check(client: Client, **params: str):
    return client.get(reverse("customer_duplicate_check"), params, HTTP_HX_REQUEST="true")


def test_check_shows_owner_and_team_but_nothing_else_of_someone_elses_customer(
    check_client: Client, teammates: Customer
) -> None:
    assert teammates.owner is not None
    services.contact_add(
        actor=teammates.owner, customer=teammates, name="赵六", mobile="13700001111"
    )
    for params in (
        {"display_name": "青柠网络科技（苏州）有限公司"},
        {"display_name": "x", "phone": "139 1234 5678"},
        {"credit_code": teammates.credit_code},
    ):
        response = _check(check_client, **params)
        assert response.status_code == 200
        body = response.content.decode()
        assert "已存在，不能重复录入" in body
        assert teammates.display_name in body
        assert "李娜" in body and "华东销售部" in body
        for secret in (
            teammates.credit_code,
            "13912345678",
            "139 1234 5678",
            "赵六",
            "13700001111",
            "星湖街",
            "预算三百万",
        ):
            assert secret not in body, secret
        assert _detail(teammates) not in body


def test_check_links_a_customer_the_user_may_see(check_client: Client, own: Customer) -> None:
    body = _check(check_client, display_name="云杉数据(杭州)有限公司").content.decode()
    assert _detail(own) in body


def test_check_soft_match_says_possible_duplicate(
    check_client: Client, teammates: Customer
) -> None:
    body = _check(check_client, display_name="苏州青柠网络传媒有限公司").content.decode()
    assert "可能重复" in body
    assert "不能重复录入" not in body


def test_check_shows_pool_customers_as_in_the_pool(
    check_client: Client, pool_customer: Customer
) -> None:
    body = _check(check_client, display_name="宁波海曙远航贸易有限公司").content.decode()
    assert "公海" in body


def test_check_excludes_the_customer_being_edited(check_client: Client, own: Customer) -> None:
    body = _check(check_client, display_name=own.display_name, exclude=str(own.pk))
    assert own.display_name not in body.content.decode()


def test_check_ignores_very_short_input_without_querying(check_client: Client) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = _check(check_client, display_name="字")
    assert response.status_code == 200
    assert response.content.decode().strip() == ""
    assert not [q for q in queries.captured_queries if "crm_customer" in q["sql"]]


def test_check_escapes_markup(check_client: Client, rep: User) -> None:
    CustomerFactory.create(display_name="<b>粗体</b>科技有限公司", owner=rep)
    body = _check(check_client, display_name="<b>粗体</b>科技有限公司").content.decode()
    assert "&lt;b&gt;粗体&lt;/b&gt;" in body
    assert "<b>粗体" not in body


def test_check_is_rate_limited_per_user(
    check_client: Client, client: Client, monkeypatch: pytest.MonkeyPatch, own: Customer
) -> None:
    monkeypatch.setattr(customer_views, "CHECK_RATE_LIMIT", 3)
    for _i in range(3):
        assert _check(check_client, display_name="云杉数据").status_code == 200
    response = _check(check_client, display_name="云杉数据")
    assert response.status_code == 429
    assert "查重过于频繁" in response.content.decode()
    assert own.display_name not in response.content.decode()


def test_check_explains_a_complete_but_invalid_credit_code(check_client: Client) -> None:
    good = credit_code_for(51)
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    assert "校验位（最后一位）错误" in _check(check_client, credit_code=bad).content.decode()
    assert "校验位" not in _check(check_client, credit_code=good[:10]).content.decode()
