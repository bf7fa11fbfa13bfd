"""compare / rank: hard and soft tiers with their reasons."""

from __future__ import annotations

import pytest

from crm.identity.matcher import IdentityKeys, Match, compare, keys_for, rank


def _match(probe: str, candidate: str, **probe_keys: str) -> Match | None:
    return compare(keys_for(probe, **probe_keys), keys_for(candidate))


def _tier(probe: str, candidate: str) -> str | None:
    match = _match(probe, candidate)
    return match.tier if match else None


def test_keys_for_normalises_everything() -> None:
    keys = keys_for(
        "北京字节跳动科技有限公司",
        credit_code=" 91350100m000100y43 ",
        phones=["+86 177 5787 1703", "010-12345678", "garbage", ""],
        email="boss@bytedance.com",
    )
    assert isinstance(keys, IdentityKeys)
    assert keys.credit_code == "91350100M000100Y43"
    assert keys.phones == ("+8617757871703", "+861012345678")
    assert keys.mobiles == frozenset({"+8617757871703"})
    assert keys.landlines == frozenset({"+861012345678"})
    assert keys.email_domain == "bytedance.com"
    assert keys.name.name_key == "字节跳动科技"


def test_keys_for_ignores_invalid_codes_and_accepts_a_single_phone() -> None:
    keys = keys_for("x", credit_code="91350100M000100Y44", phones="8615097297926")
    assert keys.credit_code == ""
    assert keys.phones == ("+8615097297926",)


def test_region_falls_back_to_the_credit_code() -> None:
    keys = keys_for("字节跳动科技有限公司", credit_code="91350100M000100Y43")
    assert keys.region_code == "3501"  # 福州
    assert keys.region_label == "福州"


def test_same_credit_code_is_hard_even_when_renamed() -> None:
    match = compare(
        keys_for("厦门瑞达锦物流有限公司", "91350206TWHGBDP76G"),
        keys_for("厦门厦富飞医药集团有限公司", "91350206TWHGBDP76G"),
    )
    assert match is not None and match.tier == "hard" and match.score == 1.0
    assert match.reason_texts() == ["统一社会信用代码相同"]


def test_same_mobile_is_hard() -> None:
    match = compare(
        keys_for("龙旋", phones="199-1907-0336"),
        keys_for("杭州龙旋生物科技有限公司", phones="19919070336"),
    )
    assert match is not None and match.tier == "hard"
    assert "手机号码相同" in match.reason_texts()


def test_same_landline_alone_is_only_soft() -> None:
    match = compare(
        keys_for("甲公司", phones="010-12345678"), keys_for("乙公司", phones="01012345678")
    )
    assert match is not None and match.tier == "soft"
    assert match.reason_texts() == ["座机号码相同"]


def test_same_company_mail_domain_is_soft_and_free_mail_is_nothing() -> None:
    match = compare(
        keys_for("甲公司", email="a@haojia.cn"), keys_for("乙公司", email="b@haojia.cn")
    )
    assert match is not None and match.tier == "soft"
    assert (
        compare(keys_for("甲公司", email="a@qq.com"), keys_for("乙公司", email="b@qq.com")) is None
    )


@pytest.mark.parametrize(
    "probe",
    [
        "北京字节跳动科技有限公司",
        "字节跳动科技(北京)有限公司",
        "字节跳动（北京）科技有限公司",
        "字节跳动科技",
        "字節跳動科技有限公司",
        "北京市 字节跳动 科技有限公司。",
        "字节跳动科技股份有限公司",
        "北京市海淀区字节跳动科技有限公司",  # a district inside the region
    ],
)
def test_the_same_name_written_differently_is_hard(probe: str) -> None:
    match = _match(probe, "北京字节跳动科技有限公司")
    assert match is not None and match.tier == "hard"
    assert "名称相同（忽略地区与公司类型）" in match.reason_texts()


def test_province_and_city_are_compatible() -> None:
    assert _tier("江苏菊光实业有限公司", "菊光实业(苏州)有限公司") == "hard"
    assert _tier("江苏省苏州市菊光实业有限公司", "苏州菊光实业有限公司") == "hard"


def test_another_explicit_region_is_soft_with_the_reason() -> None:
    match = _match("上海字节跳动科技有限公司", "北京字节跳动科技有限公司")
    assert match is not None and match.tier == "soft"
    assert "地区不同：上海 / 北京" in match.reason_texts()
    match = _match("浙江菊光实业有限公司", "菊光实业(苏州)有限公司")
    assert match is not None and match.tier == "soft"


def test_branch_is_not_its_head_office() -> None:
    match = _match("北京字节跳动科技有限公司上海分公司", "北京字节跳动科技有限公司")
    assert match is not None and match.tier == "soft"
    assert "分公司与总公司" in match.reason_texts()
    same = _match("北京字节跳动科技有限公司上海分公司", "字节跳动科技(北京)有限公司上海市分公司")
    assert same is not None and same.tier == "hard"
    other = _match("北京字节跳动科技有限公司上海分公司", "北京字节跳动科技有限公司深圳分公司")
    assert other is not None and other.tier == "soft"
    assert "分公司不同：上海分公司 / 深圳分公司" in other.reason_texts()


def test_another_industry_word_is_soft() -> None:
    match = _match("字节跳动传媒有限公司", "北京字节跳动科技有限公司")
    assert match is not None and match.tier == "soft"
    assert match.reason_texts() == ["字号相同", "行业不同：传媒 / 科技"]


def test_different_credit_codes_never_make_a_name_match_hard() -> None:
    match = compare(
        keys_for("昊嘉科技有限公司", "91350100M000100Y43"),
        keys_for("昊嘉科技有限公司", "91350206TWHGBDP76G"),
    )
    assert match is not None and match.tier == "soft"
    assert "统一社会信用代码不同" in match.reason_texts()


@pytest.mark.parametrize(
    ("probe", "candidate", "reason"),
    [
        ("深圳浩佳科技有限公司", "深圳昊嘉科技有限公司", "拼音相同"),  # homophone
        ("深圳智品科技有限公司", "深圳致品科技有限公司", "拼音相同"),
        ("深圳市宏达电气有限公司", "深圳市洪达电气有限公司", "拼音相同"),
        ("广州辰创机械有限公司", "广州承创机械有限公司", "读音相近"),  # chen / cheng
        ("深圳图润提光科技有限公司", "深圳图润提先科技有限公司", "名称相似"),  # typo
        ("图润提光科技有限公司", "深圳图润光科技有限公司", "名称相似"),  # dropped char
        ("深圳昊嘉科技有限公司", "深圳嘉昊科技有限公司", "字号用字相同，顺序不同"),
        ("Haojia Technology Co., Ltd.", "深圳昊嘉科技有限公司", "拼音相同"),
        ("Shenzhen Hao Jia Ke Ji You Xian Gong Si", "深圳昊嘉科技有限公司", "拼音相同"),
        ("Haojai Technology Co., Ltd.", "深圳昊嘉科技有限公司", "拼音相似"),  # swapped
        ("金华锦达科技有限公司", "上海金华锦达科技有限公司", "名称相同（地名可能是字号的一部分）"),
    ],
)
def test_look_alikes_are_soft(probe: str, candidate: str, reason: str) -> None:
    match = _match(probe, candidate)
    assert match is not None, "expected a soft match"
    assert match.tier == "soft"
    assert any(text.startswith(reason) for text in match.reason_texts())
    assert 0.0 <= match.score <= 1.0


@pytest.mark.parametrize(
    ("probe", "candidate"),
    [
        ("北京华为科技有限公司", "北京联想科技有限公司"),  # share only 北京 科技 有限公司
        ("华为信息技术有限公司", "联想信息技术有限公司"),
        ("上海宏达贸易有限公司", "上海恒通贸易有限公司"),
        ("科技有限公司", "北京科技有限公司"),
        ("有限公司", "有限公司"),
        ("深圳图润提光科技有限公司", "深圳图润提先传媒有限公司"),  # typo + other industry
        ("上海图润提光科技有限公司", "深圳图润提先科技有限公司"),  # typo + other region
        ("Haojia Technology Co., Ltd.", "深圳明达科技有限公司"),
    ],
)
def test_unrelated_names_do_not_match(probe: str, candidate: str) -> None:
    assert _match(probe, candidate) is None


def test_similar_names_with_different_credit_codes_do_not_match() -> None:
    probe = keys_for("深圳智品科技有限公司", "91350100M000100Y43")
    candidate = keys_for("深圳致品科技有限公司", "91350206TWHGBDP76G")
    assert compare(probe, candidate) is None


def test_rank_orders_hard_first_then_by_score_and_limits() -> None:
    probe = keys_for("北京字节跳动科技有限公司", phones="13912345678")
    candidates = [
        ("media", keys_for("字节跳动传媒有限公司")),
        ("unrelated", keys_for("北京联想科技有限公司")),
        ("same", keys_for("字节跳动科技(北京)有限公司")),
        ("branch", keys_for("北京字节跳动科技有限公司上海分公司")),
        ("phone", keys_for("另一家公司", phones="+86 139 1234 5678")),
    ]
    ranked = rank(probe, candidates)
    assert [ref for ref, _m in ranked] == ["phone", "same", "branch", "media"]
    assert [m.tier for _r, m in ranked] == ["hard", "hard", "soft", "soft"]
    assert len(rank(probe, candidates, limit=2)) == 2


def test_reasons_are_lazy_translations() -> None:
    match = _match("北京字节跳动科技有限公司", "字节跳动科技(北京)有限公司")
    assert match is not None
    reason = match.reasons[0]
    assert not isinstance(reason, str)  # a lazy proxy, translated when rendered
    assert str(reason) == "名称相同（忽略地区与公司类型）"


def test_stored_keys_take_the_parts_as_the_column_s_json_text_too() -> None:
    import json

    from crm.identity.matcher import keys_for, stored_keys
    from crm.identity.stored import name_parts

    parsed = keys_for("厦门智博物流有限公司").name
    parts = name_parts(parsed)
    from_dict = stored_keys("厦门智博物流有限公司", parts, phones=["+8613800138000"])
    from_text = stored_keys(
        "厦门智博物流有限公司", json.dumps(parts, ensure_ascii=False), phones=["+8613800138000"]
    )
    assert from_text == from_dict
    assert from_text.name == parsed
