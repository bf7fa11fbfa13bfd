"""A customer's parsed name, stored with it and read back instead of parsing again."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.identity.normalize import parse_company_name
from crm.identity.stored import PARSER_VERSION, name_parts, parsed_name
from tests.crm.identity.test_properties import _BRACKETS, _INDUSTRIES, _LEGAL, _REGIONS

_NAME_CHARS = st.sampled_from(
    [*"宏达鑫源恒信华泰嘉禾瑞祥博雅锦程星辰云帆金华厦门分公司办事处科技有限（）() ·AaBb&.,-"]
)


@st.composite
def company_names(draw: st.DrawFn) -> str:
    """Chinese names with region, industry, legal form and branch in varied shapes, English
    and pinyin names, and arbitrary text."""
    shape = draw(st.integers(0, 3))
    trade = draw(st.text(alphabet=_NAME_CHARS, min_size=1, max_size=8))
    if shape == 0:
        return draw(st.text(max_size=30))
    if shape == 1:
        return f"{trade} Technology Co., Ltd."
    region = draw(st.sampled_from(_REGIONS))
    industry = draw(st.sampled_from(_INDUSTRIES))
    legal = draw(st.sampled_from(_LEGAL))
    if shape == 2:
        return f"{region}{trade}{industry}{legal}"
    left, right = draw(st.sampled_from(_BRACKETS))
    branch = draw(st.sampled_from(["", "北京分公司", "海淀分店", "上海办事处"]))
    return f"{trade}{industry}{left}{region}{right}{legal}{branch}"


@given(name=company_names())
@settings(max_examples=500)
def test_stored_parts_read_back_as_the_parse(name: str) -> None:
    parsed = parse_company_name(name)
    # Through JSON, as PostgreSQL gives them back.
    stored = json.loads(json.dumps(name_parts(parsed), ensure_ascii=False))
    assert parsed_name(name, stored) == parsed


def test_parts_of_another_parser_version_or_incomplete_are_parsed_again() -> None:
    name = "北京字节跳动科技有限公司"
    parsed = parse_company_name(name)
    wrong = {
        **name_parts(parse_company_name("上海云帆信息技术有限公司")),
        "version": "an older one",
    }
    assert parsed_name(name, wrong) == parsed
    incomplete = name_parts(parsed)
    del incomplete["trade_name"]
    assert parsed_name(name, incomplete) == parsed
    assert parsed_name(name, None) == parsed
    assert parsed_name(name, {}) == parsed


def test_the_version_follows_the_parser() -> None:
    assert len(PARSER_VERSION) == 16
    assert name_parts(parse_company_name("云帆科技"))["version"] == PARSER_VERSION


@pytest.mark.django_db
def test_a_new_customer_stores_its_parsed_name(rep: object) -> None:
    from crm.duplicates import customer_keys, find_duplicates, probe_keys
    from crm.models import Customer
    from crm.services import customer_create

    customer = customer_create(actor=None, display_name="字节跳动科技（北京）有限公司")
    stored = Customer.objects.prefetch_related("phones").get(pk=customer.pk)
    assert stored.name_parts == json.loads(
        json.dumps(name_parts(parse_company_name(stored.display_name)), ensure_ascii=False)
    )
    assert customer_keys(stored).name == parse_company_name(stored.display_name)
    # Stale parts (another version of the parser) are never believed.
    Customer.objects.filter(pk=customer.pk).update(
        name_parts={
            **name_parts(parse_company_name("上海云帆信息技术有限公司")),
            "version": "an older one",
        }
    )
    (match,) = find_duplicates(probe_keys(name="北京字节跳动科技有限公司"))
    assert match.customer.pk == customer.pk and match.is_hard


@pytest.mark.django_db
def test_stale_parsed_names_are_stored_again_once(rep: object) -> None:
    from io import StringIO

    from django.core.management import call_command

    from crm.models import Customer
    from crm.services import customer_create, customer_name_parts_refresh
    from crm.tasks import refresh_name_parts

    names = ["上海云帆信息技术有限公司", "北京宏达贸易有限公司", "深圳星辰网络科技有限公司"]
    customers = [customer_create(actor=None, display_name=name) for name in names]
    current = customers[0]
    Customer.objects.filter(pk=customers[1].pk).update(
        name_parts={**customers[1].name_parts, "version": "an older one", "trade_name": "错"}
    )
    Customer.objects.filter(pk=customers[2].pk).update(name_parts=None)
    untouched = Customer.objects.get(pk=current.pk).name_parts

    assert customer_name_parts_refresh(batch_size=1) == 2  # batches walk the whole table
    for customer in Customer.objects.filter(pk__in=[c.pk for c in customers]):
        assert customer.name_parts == json.loads(
            json.dumps(name_parts(parse_company_name(customer.display_name)))
        )
    assert Customer.objects.get(pk=current.pk).name_parts == untouched
    assert refresh_name_parts() == 0  # idempotent: nothing left to do
    out = StringIO()
    call_command("refresh_name_parts", stdout=out)
    assert "0" in out.getvalue()


@pytest.mark.django_db
def test_a_name_renamed_meanwhile_keeps_the_parts_its_rename_stored(
    rep: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh parses the names it read; a name changed before its batch is written was
    stored with its own parts by that change, and the refresh leaves it alone."""
    from crm import services
    from crm.models import Customer

    customer = services.customer_create(actor=None, display_name="杭州锦程软件有限公司")
    Customer.objects.filter(pk=customer.pk).update(name_parts=None)
    renamed_parts = name_parts(parse_company_name("杭州锦程网络有限公司"))

    def parse_while_someone_renames(name: str) -> object:
        Customer.objects.filter(pk=customer.pk).update(
            display_name="杭州锦程网络有限公司", name_parts=renamed_parts
        )
        return parse_company_name(name)

    monkeypatch.setattr(services, "parse_company_name", parse_while_someone_renames)
    assert services.customer_name_parts_refresh() == 0
    assert Customer.objects.get(pk=customer.pk).name_parts == json.loads(json.dumps(renamed_parts))
