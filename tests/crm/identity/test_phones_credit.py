"""Phone numbers (E.164), unified social credit codes and e-mail domains."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from crm.identity import phones
from crm.identity.credit import (
    credit_code_check_char,
    credit_code_division,
    email_domain,
    validate_credit_code,
)
from crm.identity.phones import is_mobile, normalize_phone

# The shared folder sits next to the repository (as in CI).
DEV_BASE = Path(__file__).resolve().parents[4] / "shared" / "data" / "identity-dev" / "base.csv"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+86 177 5787 1703", "+8617757871703"),
        ("8615097297926", "+8615097297926"),
        ("199-1907-0336", "+8619919070336"),
        ("（+86）19906330498", "+8619906330498"),
        ("0086 139 1234 5678", "+8613912345678"),
        ("１３９１２３４５６７８", "+8613912345678"),
        ("010-12345678", "+861012345678"),
        ("0755 8601 3388", "+8675586013388"),
        ("+1 650 253 0000", "+16502530000"),
    ],
)
def test_normalize_phone(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["", "   ", "12345", "not a phone", "138001380001234"])
def test_unparseable_phones(raw: str) -> None:
    assert normalize_phone(raw) is None


def test_is_mobile() -> None:
    assert is_mobile("+8617757871703")
    assert not is_mobile("+861012345678")  # Beijing landline
    assert not is_mobile("+864008108888")  # service number
    assert not is_mobile("garbage")


@pytest.mark.parametrize(
    "raw", ["177 5787 1703", "010-12345678", "4008108888", "+1 650 253 0000", "0086 13800138000"]
)
def test_a_normalised_number_is_its_own_normal_form_and_knows_its_kind(raw: str) -> None:
    """normalize_phone remembers what it produced; the remembered answers are the parser's."""
    phones.clear_caches()
    e164 = normalize_phone(raw)
    assert e164 is not None
    assert normalize_phone(e164) == e164 == normalize_phone(e164, "US")
    remembered = is_mobile(e164)
    phones.clear_caches()
    assert remembered == is_mobile(e164)  # now parsed afresh
    assert normalize_phone(e164) == e164


@pytest.mark.parametrize(
    ("code", "clean"),
    [
        ("91350100M000100Y43", "91350100M000100Y43"),
        ("91350206TWHGBDP76G", "91350206TWHGBDP76G"),
        (" 91350206twhgbdp76g ", "91350206TWHGBDP76G"),
        ("9135 0206 TWHG BDP7 6G", "91350206TWHGBDP76G"),
        ("９１３５０１００Ｍ０００１００Ｙ４３", "91350100M000100Y43"),  # full width
    ],
)
def test_valid_credit_codes(code: str, clean: str) -> None:
    assert validate_credit_code(code) == clean


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91350206TWHGBDP76H", "校验位"),  # wrong check character
        ("91350206TWHGBDP76", "应为 18 位"),
        ("", "应为 18 位"),
        ("91350206TWHGBDP7OG", "非法字符"),  # the letter O is not used
        ("91A50206TWHGBDP76G", "非法字符"),  # positions 3-8 are a division code
    ],
)
def test_invalid_credit_codes(code: str, message: str) -> None:
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(ValueError, match=message):
        validate_credit_code(code)


def test_check_character_and_division() -> None:
    assert credit_code_check_char("91350100M000100Y4") == "3"
    assert credit_code_division("91350100M000100Y43") == "350100"


@pytest.mark.skipif(not DEV_BASE.exists(), reason="shared dev data not present")
def test_every_dev_credit_code_is_valid() -> None:
    with DEV_BASE.open(encoding="utf-8") as fh:
        codes = [row["credit_code"] for row in csv.DictReader(fh) if row["credit_code"]]
    assert len(codes) > 100
    for code in codes:
        assert validate_credit_code(code) == code


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("zhang.san@bytedance.com", "bytedance.com"),
        ("Li@Example.COM.CN", "example.com.cn"),
        ("wang@qq.com", None),
        ("wang@vip.163.com", None),
        ("x@gmail.com", None),
        ("x@foxmail.com", None),
        ("not-an-email", None),
        ("@bytedance.com", None),
        ("", None),
    ],
)
def test_email_domain(email: str, domain: str | None) -> None:
    assert email_domain(email) == domain
