"""The vendored division table, region chains, compatibility and parse_address."""

from __future__ import annotations

import pytest

from crm.identity.regions import (
    AddressDivision,
    division_by_code,
    latin_region,
    match_region_chain,
    parse_address,
    regions_compatible,
)


def test_table_has_every_province_and_city() -> None:
    assert division_by_code("32") is not None
    provinces = [division_by_code(f"{code}") for code in ("11", "12", "31", "50", "65", "81")]
    assert all(provinces)
    suzhou = division_by_code("3205")
    assert suzhou is not None
    assert (suzhou.name, suzhou.short, suzhou.level) == ("苏州市", "苏州", 2)
    assert division_by_code("110108") is not None  # 海淀区
    assert division_by_code("999999") is None


@pytest.mark.parametrize(
    ("code", "short"),
    [
        ("15", "内蒙古"),
        ("45", "广西"),
        ("64", "宁夏"),
        ("65", "新疆"),
        ("81", "香港"),
        ("2224", "延边"),
        ("5328", "西双版纳"),
        ("2327", "大兴安岭"),
        ("6540", "伊犁"),
    ],
)
def test_short_names_of_autonomous_divisions(code: str, short: str) -> None:
    division = division_by_code(code)
    assert division is not None and division.short == short


@pytest.mark.parametrize(
    ("text", "chain"),
    [
        ("江苏省苏州市菊光", ["江苏", "苏州"]),
        ("江苏苏州菊光", ["江苏", "苏州"]),
        ("苏州市菊光", ["苏州"]),
        ("北京市海淀区菊光", ["北京", "海淀"]),
        ("北京海淀菊光", ["北京", "海淀"]),  # short county names after their parent
        ("海淀菊光", []),  # ... but not alone
        ("浦东新区菊光", ["浦东"]),  # a unique full county name may open a chain
        ("鼓楼区菊光", []),  # four 鼓楼区: ambiguous
        ("江苏杭州", ["江苏"]),  # 杭州 is not in 江苏
        ("菊光", []),
    ],
)
def test_region_chain(text: str, chain: list[str]) -> None:
    match = match_region_chain(text)
    assert ([d.short for d in match.divisions] if match else []) == chain


def test_compatibility_is_containment() -> None:
    assert regions_compatible("32", "3205")  # 江苏 / 苏州
    assert regions_compatible("3205", "320508")  # 苏州 / 姑苏
    assert regions_compatible("", "3205")
    assert regions_compatible("3205", "3205")
    assert not regions_compatible("3205", "3301")  # 苏州 / 杭州
    assert not regions_compatible("32", "33")


@pytest.mark.parametrize(
    ("word", "short"),
    [("beijing", "北京"), ("Shanghai", "上海"), ("shenzhen", "深圳"), ("suzhou", "苏州"),
     ("hong kong", "香港"), ("shaanxi", "陕西"), ("shanxi", "山西"), ("xian", "西安")],
)  # fmt: skip
def test_latin_region(word: str, short: str) -> None:
    division = latin_region(word)
    assert division is not None and division.short == short


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("北京市海淀区中关村大街1号", AddressDivision("北京市", "北京市", "海淀区", "110108")),
        ("江苏省苏州市姑苏区人民路1号", AddressDivision("江苏省", "苏州市", "姑苏区", "320508")),
        ("苏州市工业园区星湖街328号", AddressDivision("江苏省", "苏州市", "", "3205")),
        ("广东深圳南山区科技园", AddressDivision("广东省", "深圳市", "南山区", "440305")),
        ("浙江省义乌市稠城街道", AddressDivision("浙江省", "金华市", "义乌市", "330782")),
        ("上海浦东新区张江路", AddressDivision("上海市", "上海市", "浦东新区", "310115")),
        ("江蘇省蘇州市", AddressDivision("江苏省", "苏州市", "", "3205")),
        ("软件园二期观日路8号", AddressDivision()),
        ("", AddressDivision()),
    ],
)
def test_parse_address(address: str, expected: AddressDivision) -> None:
    assert parse_address(address) == expected
