"""normalize_text and parse_company_name: text clean-up, regions, legal forms, branches."""

from __future__ import annotations

import pytest

from crm.identity.normalize import (
    ParsedName,
    is_too_short_for_fuzzy,
    normalize_text,
    parse_company_name,
    sound_key,
    to_pinyin,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("字节跳动（北京）科技有限公司", "字节跳动(北京)科技有限公司"),
        ("ＡＢＣ１２３科技", "abc123科技"),  # full width → half width, lower case
        ("杭州市 泰光富 能源集团有限公司。", "杭州市泰光富能源集团有限公司"),
        ("广州市\u3000品提和嘉\t信息技术有限公司  ", "广州市品提和嘉信息技术有限公司"),
        ("深圳圖潤提光生物科技有限責任公司", "深圳图润提光生物科技有限责任公司"),
        ("【北京】字节·跳动〔科技〕", "(北京)字节跳动(科技)"),
        ("字节跳动[北京]科技", "字节跳动(北京)科技"),
        ("A&B Co., Ltd.", "abcoltd"),
        ("昊嘉科技()有限公司", "昊嘉科技有限公司"),  # empty brackets dropped
        ("昊嘉科技(有限公司", "昊嘉科技有限公司"),  # unmatched bracket dropped
        ("昊嘉((北京))科技", "昊嘉(北京)科技"),  # nested brackets flattened
        ("", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def _parts(name: str) -> tuple[str, str, str, str, str]:
    p = parse_company_name(name)
    return p.region, p.trade_name, p.industry, p.legal_form, p.branch


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("北京字节跳动科技有限公司", ("北京", "字节跳动", "科技", "有限公司", "")),
        ("北京市字节跳动科技有限公司", ("北京", "字节跳动", "科技", "有限公司", "")),
        ("字节跳动科技(北京)有限公司", ("北京", "字节跳动", "科技", "有限公司", "")),
        ("字节跳动（北京）科技有限公司", ("北京", "字节跳动", "科技", "有限公司", "")),
        ("浦华教育科技（天津）有限公司", ("天津", "浦华", "教育科技", "有限公司", "")),
        ("江苏省苏州市菊光实业有限公司", ("苏州", "菊光", "实业", "有限公司", "")),
        ("江苏苏州菊光实业有限公司", ("苏州", "菊光", "实业", "有限公司", "")),
        ("苏州菊光实业", ("苏州", "菊光", "实业", "", "")),
        ("菊光实业(江苏省苏州市)有限公司", ("苏州", "菊光", "实业", "有限公司", "")),
        ("北京市海淀区字节跳动网络技术有限公司", ("海淀", "字节跳动", "网络技术", "有限公司", "")),
        ("广西壮族自治区南宁市绿源农业科技有限公司", ("南宁", "绿源", "农业科技", "有限公司", "")),
        ("昆山(江苏)宏达电子有限公司", ("江苏", "昆山宏达", "电子", "有限公司", "")),
        ("字节跳动科技", ("", "字节跳动", "科技", "", "")),
        ("华为", ("", "华为", "", "", "")),
    ],
)
def test_region_trade_industry_legal(name: str, parts: tuple[str, ...]) -> None:
    assert _parts(name) == parts


def test_province_of_the_region() -> None:
    parsed = parse_company_name("苏州菊光实业有限公司")
    assert (parsed.region, parsed.province, parsed.region_code) == ("苏州", "江苏", "3205")
    assert parse_company_name("北京字节跳动科技有限公司").province == "北京"
    assert parse_company_name("字节跳动科技有限公司").province == ""


@pytest.mark.parametrize(
    ("name", "legal"),
    [
        ("菊光实业有限公司", "有限公司"),
        ("菊光实业有限责任公司", "有限责任公司"),
        ("菊光实业股份有限公司", "股份有限公司"),
        ("菊光实业集团有限公司", "集团有限公司"),
        ("菊光实业集团股份有限公司", "集团股份有限公司"),
        ("菊光实业集团", "集团"),
        ("菊光投资合伙企业（有限合伙）", "合伙企业(有限合伙)"),
        ("菊光会计师事务所（特殊普通合伙）", "(特殊普通合伙)"),
        ("菊光实业", ""),
    ],
)
def test_legal_forms(name: str, legal: str) -> None:
    parsed = parse_company_name(name)
    assert parsed.legal_form == legal
    assert parsed.trade_name.startswith("菊光")


def test_legal_form_does_not_change_the_key() -> None:
    keys = {
        parse_company_name(f"青岛凯优食品{legal}").name_key
        for legal in ("", "有限公司", "股份有限公司", "有限责任公司", "集团有限公司", "集团")
    }
    assert keys == {"凯优食品"}


@pytest.mark.parametrize(
    ("name", "branch"),
    [
        ("西安雅达软件集团有限公司厦门分公司", "厦门分公司"),
        ("西安雅达软件集团有限公司厦门市分公司", "厦门分公司"),
        ("西安雅达软件集团有限公司福建省厦门市分公司", "厦门分公司"),
        ("北京泰瑞网络有限公司第一分公司", "第一分公司"),
        ("雅达软件厦门分公司", "厦门分公司"),
        ("雅达软件有限公司上海办事处", "上海办事处"),
        ("招商银行股份有限公司北京分行", "北京分行"),
        ("雅达软件有限公司浦东营业部", "浦东营业部"),
        ("雅达软件有限公司", ""),
    ],
)
def test_branches(name: str, branch: str) -> None:
    assert parse_company_name(name).branch == branch


def test_branch_keeps_the_head_office_key_and_region() -> None:
    head = parse_company_name("西安雅达软件集团有限公司")
    branch = parse_company_name("西安雅达软件集团有限公司厦门分公司")
    assert branch.name_key == head.name_key == "雅达软件"
    assert branch.region == head.region == "西安"  # the branch city is not the company region


@pytest.mark.parametrize(
    ("name", "region", "trade", "industry", "legal"),
    [
        ("Haojia Technology Co., Ltd.", "", "haojia", "科技", "有限公司"),
        ("HAOJIA TECHNOLOGY CO.,LTD", "", "haojia", "科技", "有限公司"),
        ("Shenzhen Haojia Bio-Tech Co., Ltd.", "深圳", "haojia", "生物科技", "有限公司"),
        (
            "Haojia Information Technology (Shanghai) Limited",
            "上海",
            "haojia",
            "信息技术",
            "有限公司",
        ),
        ("Hao Jia New Materials Co., Ltd.", "", "haojia", "新材料", "有限公司"),
        ("Haojia Environmental Technology Co Ltd", "", "haojia", "环保科技", "有限公司"),
        ("Beijing Haojia Trading Group Co., Ltd.", "北京", "haojia", "贸易", "集团有限公司"),
        ("Xi'an Yada Software Inc.", "西安", "yada", "软件", "公司"),
        ("Suzhou Juguang Shiye Youxian Gongsi", "苏州", "juguang", "实业", "有限公司"),
        ("JuguangShiye (Suzhou) Co Ltd", "苏州", "juguangshiye", "", "有限公司"),
        ("Hong Kong Haojia Pharmaceutical Limited", "香港", "haojia", "医药", "有限公司"),
    ],
)
def test_english_and_pinyin_names(
    name: str, region: str, trade: str, industry: str, legal: str
) -> None:
    parsed = parse_company_name(name)
    assert parsed.is_latin
    assert (parsed.region, parsed.trade_name, parsed.industry, parsed.legal_form) == (
        region,
        trade,
        industry,
        legal,
    )


def test_english_name_pinyin_key_equals_the_chinese_one() -> None:
    english = parse_company_name("Haojia Technology Co., Ltd.")
    chinese = parse_company_name("深圳昊嘉科技有限公司")
    assert not chinese.is_latin
    assert english.pinyin_key == chinese.pinyin_key == "haojiakeji"
    assert english.trade_pinyin == chinese.trade_pinyin == "haojia"


def test_english_branch() -> None:
    parsed = parse_company_name("Haojia Technology Co., Ltd. Beijing Branch")
    assert (parsed.trade_name, parsed.branch) == ("haojia", "北京分公司")


def test_place_name_that_may_be_a_trade_name_gives_an_alternative_reading() -> None:
    parsed = parse_company_name("金华锦达科技有限公司")  # 金华 is a city, or part of the name
    assert (parsed.region, parsed.name_key) == ("金华", "锦达科技")
    assert ("金华锦达科技", "") in parsed.alternatives
    # written with its suffix it is unambiguous
    assert parse_company_name("金华市锦达科技有限公司").alternatives == ()


def test_a_place_name_is_kept_when_nothing_distinctive_would_remain() -> None:
    assert parse_company_name("金华科技有限公司").trade_name == "金华"
    assert parse_company_name("上海金山软件有限公司").name_key == "金山软件"


def test_place_name_between_trade_name_and_industry() -> None:
    parsed = parse_company_name("字节跳动北京科技有限公司")
    assert (parsed.region, parsed.name_key) == ("北京", "字节跳动科技")
    assert ("字节跳动北京科技", "") in parsed.alternatives
    # not when it contradicts the region already found
    assert parse_company_name("上海菊光苏州实业有限公司").trade_name == "菊光苏州"


def test_bracketed_region_wins_over_an_incompatible_leading_place_name() -> None:
    parsed = parse_company_name("金华锦达科技(上海)有限公司")
    assert (parsed.region, parsed.trade_name) == ("上海", "金华锦达")


def test_keys() -> None:
    parsed = parse_company_name("北京字节跳动科技有限公司")
    assert isinstance(parsed, ParsedName)
    assert parsed.name_key == "字节跳动科技"
    assert parsed.pinyin_key == "zijietiaodongkeji"
    assert parsed.search_key == "字节跳动"
    assert parsed.core == "字节跳动科技"
    assert parsed.has_identity
    assert not parse_company_name("科技有限公司").has_identity
    assert not parse_company_name("信息技术有限公司").has_identity
    assert not parse_company_name("有限公司").has_identity


def test_a_city_name_as_the_whole_trade_name() -> None:
    # 上海医药, 南京医药: the place name is all the trade name there is
    for name in ("上海医药集团股份有限公司", "上海市医药有限公司", "上海医药"):
        parsed = parse_company_name(name)
        assert (parsed.region, parsed.trade_name, parsed.industry) == ("", "上海", "医药")


def test_parsed_name_is_frozen() -> None:
    parsed = parse_company_name("北京字节跳动科技有限公司")
    with pytest.raises(AttributeError):
        parsed.name_key = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "too_short"),
    [
        ("科技", True),
        ("有限公司", True),
        ("北京科技", True),
        ("宏", True),
        ("宏科技", True),
        ("信息技术", True),
        ("abc", True),
        ("字节", False),
        ("字节跳动", False),
        ("haojia", False),
    ],
)
def test_is_too_short_for_fuzzy(key: str, too_short: bool) -> None:
    assert is_too_short_for_fuzzy(key) is too_short


def test_pinyin_helpers() -> None:
    assert to_pinyin("绿地") == "ludi"  # ü written u
    assert sound_key("智品") == sound_key("致品")
    assert sound_key("承纳") == sound_key("城纳")  # cheng / cheng
    assert sound_key("辰创") == sound_key("承创")  # chen / cheng: -n / -ng merged
    assert sound_key("华为") != sound_key("联想")
