"""Property tests: normalisation is idempotent and the name key ignores everything that does
not identify a company (width, brackets, spacing, script, region, legal form)."""

from __future__ import annotations

import opencc
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pypinyin.constants import PHRASES_DICT

from crm.identity.matcher import compare, keys_for
from crm.identity.normalize import (
    _T2S_TRIGGERS,
    _pinyin_of,
    _to_simplified,
    normalize_text,
    parse_company_name,
    to_pinyin,
)
from crm.identity.regions import match_region_chain

_S2T = opencc.OpenCC("s2t")
_T2S = opencc.OpenCC("t2s")

# Characters typical of trade names (字号), kept to those that survive simplified →
# traditional → simplified unchanged, and free of legal-form characters.
_TRADE_CHARS = [
    c
    for c in "宏达鑫源恒信华泰嘉禾瑞祥博雅锦程星辰云帆腾跃蓝海金穗光明永盛富康安德隆兴旺佳美同创"
    "新力远航天成正东方飞龙凤凯旋鸿运辉煌润丰和谐卓越聚合汇通远景誉诚智慧万豪"
    if _T2S.convert(_S2T.convert(c)) == c
]
_INDUSTRIES = [
    "科技", "信息技术", "软件", "网络科技", "电子", "贸易", "物流", "医药", "文化传媒",
    "新材料", "食品", "机械", "实业", "能源", "生物科技", "教育科技", "建设工程", "",
]  # fmt: skip
_LEGAL = ["有限公司", "有限责任公司", "股份有限公司", "集团有限公司", "集团", ""]
_REGIONS = [
    "北京", "北京市", "上海", "苏州", "苏州市", "江苏省苏州市", "江苏苏州", "杭州市",
    "广东省深圳市", "深圳", "重庆市", "成都",
]  # fmt: skip
_BRACKETS = [("(", ")"), ("（", "）"), ("【", "】"), ("[", "]"), ("〔", "〕")]

trade_names = st.text(alphabet=st.sampled_from(_TRADE_CHARS), min_size=2, max_size=5)


def _has_no_leading_place(trade: str) -> bool:
    return match_region_chain(trade + "科技") is None


@given(st.text(max_size=40))
@settings(max_examples=400)
def test_normalize_text_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@given(
    st.text(alphabet=st.sampled_from(_TRADE_CHARS + list("（）() 　·。,ABCａｂｃ123")), max_size=30)
)
def test_normalize_text_is_idempotent_on_name_like_text(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert " " not in once


@given(
    trade=trade_names,
    industry=st.sampled_from(_INDUSTRIES),
    legal=st.sampled_from(_LEGAL),
    region=st.sampled_from(_REGIONS),
    brackets=st.sampled_from(_BRACKETS),
    spaces=st.lists(st.integers(min_value=0, max_value=30), max_size=4),
)
def test_name_key_ignores_form(
    trade: str,
    industry: str,
    legal: str,
    region: str,
    brackets: tuple[str, str],
    spaces: list[int],
) -> None:
    assume(_has_no_leading_place(trade))
    plain = f"{trade}{industry}"
    key = parse_company_name(plain).name_key
    assume(parse_company_name(plain).has_identity)
    assert key == plain

    opening, closing = brackets
    spaced = f"{region}{trade}{industry}{legal}"
    for pos in spaces:
        spaced = spaced[:pos] + " " + spaced[pos:]
    variants = [
        f"{region}{trade}{industry}{legal}",  # leading region
        f"{trade}{industry}{opening}{region}{closing}{legal}",  # bracketed region
        f"{trade}{opening}{region}{closing}{industry}{legal}",  # bracket inside the name
        f"{trade}{industry}{legal}",  # region dropped
        f"{trade}{industry}",  # legal form dropped
        f"{region}{trade}{industry}",
        _S2T.convert(f"{region}{trade}{industry}{legal}"),  # traditional characters
        spaced,  # spaces anywhere
        f"　{region} {trade}　{industry} {legal}。",  # full-width space, trailing junk
    ]
    for variant in variants:
        assert parse_company_name(variant).name_key == key, variant


@given(
    trade=st.text(alphabet=st.sampled_from(list("ABCDEFXYZ0123")), min_size=2, max_size=4),
    tail=trade_names,
    industry=st.sampled_from(_INDUSTRIES),
)
def test_name_key_ignores_character_width(trade: str, tail: str, industry: str) -> None:
    name = f"{trade}{tail}{industry}有限公司"
    wide = name.translate({ord(c): ord(c) + 0xFEE0 for c in "ABCDEFXYZ0123"})
    assert parse_company_name(wide).name_key == parse_company_name(name).name_key


@given(
    first=trade_names,
    second=trade_names,
    industry=st.sampled_from(_INDUSTRIES),
    region=st.sampled_from(_REGIONS),
    legal=st.sampled_from(_LEGAL),
)
def test_a_different_trade_name_never_gives_the_same_key(
    first: str, second: str, industry: str, region: str, legal: str
) -> None:
    assume(first != second)
    assume(_has_no_leading_place(first) and _has_no_leading_place(second))
    a = parse_company_name(f"{region}{first}{industry}{legal}")
    b = parse_company_name(f"{second}{industry}(北京){legal}")
    assert a.name_key != b.name_key


@given(st.text(max_size=60))
@settings(max_examples=300)
def test_any_text_parses_and_matches_itself(text: str) -> None:
    parsed = parse_company_name(text)
    assert parsed.name_key == parsed.trade_name + parsed.industry
    keys = keys_for(text)
    match = compare(keys, keys)
    if parsed.has_identity:
        assert match is not None and match.tier == "hard"


# The shortcuts in normalize (skip OpenCC when nothing can change, read pinyin character by
# character when no phrase is present) must answer exactly as the libraries do.
_PHRASE_WORDS = sorted(PHRASES_DICT)
_T2S.convert("")  # loads its dictionaries
_CONVERTIBLE = sorted(
    {ch for _long, _short, table in _T2S._dict_chain_data[0] for word in table for ch in word}
)
_mixed_text = st.lists(
    st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
        st.sampled_from(_TRADE_CHARS + list("（）() ·&-.ABCabc123")),
        st.sampled_from(_PHRASE_WORDS),
        st.sampled_from(_CONVERTIBLE),
    ),
    max_size=8,
).map("".join)


@given(_mixed_text)
@settings(max_examples=600)
def test_pinyin_shortcut_reads_as_pypinyin_does(text: str) -> None:
    assert to_pinyin.__wrapped__(text) == _pinyin_of(text)


@given(_mixed_text)
@settings(max_examples=600)
def test_simplification_shortcut_converts_as_opencc_does(text: str) -> None:
    assert _to_simplified(text) == _T2S.convert(text)


def test_the_shortcuts_are_taken_for_plain_simplified_names() -> None:
    assert _T2S_TRIGGERS is not None  # the library still exposes its dictionaries
    changing, _words = _T2S_TRIGGERS
    assert changing.isdisjoint("星澜软件科技有限公司")
    assert "瀾" in changing and "軟" in changing
    assert to_pinyin("重庆银行") == _pinyin_of("重庆银行")  # a phrase: pypinyin reads it whole
