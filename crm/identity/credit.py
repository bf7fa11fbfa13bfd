"""Unified social credit codes (统一社会信用代码, GB 32100-2015) and e-mail domains."""

from __future__ import annotations

import re
import unicodedata

from django.utils.translation import gettext as _

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "FREE_MAIL_DOMAINS",
    "credit_code_check_char",
    "credit_code_division",
    "email_domain",
    "validate_credit_code",
]

# GB 32100-2015: digits and upper-case letters without I, O, S, V, Z.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(CREDIT_CODE_ALPHABET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3**i mod 31
_SHAPE = re.compile(r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$")


def credit_code_check_char(first17: str) -> str:
    """The check character for the first 17 characters of a credit code."""
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, _WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(code: str) -> str:
    """The code upper-cased and without spaces, or ValueError (a translated message)."""
    text = unicodedata.normalize("NFKC", code or "")
    text = re.sub(r"[\s\-]", "", text).upper()
    if len(text) != 18:
        raise ValueError(
            _("A unified social credit code has 18 characters, not %(count)d.")
            % {"count": len(text)}
        )
    if not _SHAPE.match(text):
        raise ValueError(
            _(
                "The unified social credit code contains invalid characters (I, O, S, V and Z "
                "are never used; characters 3–8 are a division code)."
            )
        )
    if credit_code_check_char(text[:17]) != text[17]:
        raise ValueError(
            _("The check character (the last one) of this credit code is wrong: check for a typo.")
        )
    return text


def credit_code_division(code: str) -> str:
    """The 6-digit registration division code inside a (validated) credit code."""
    return code[2:8] if len(code) == 18 else ""


FREE_MAIL_DOMAINS = frozenset(
    [
        "qq.com",
        "vip.qq.com",
        "foxmail.com",
        "163.com",
        "vip.163.com",
        "126.com",
        "vip.126.com",
        "yeah.net",
        "188.com",
        "netease.com",
        "sina.com",
        "sina.cn",
        "vip.sina.com",
        "sohu.com",
        "vip.sohu.com",
        "139.com",
        "wo.cn",
        "189.cn",
        "aliyun.com",
        "21cn.com",
        "tom.com",
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "live.cn",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "yahoo.com",
        "yahoo.com.cn",
        "yahoo.cn",
        "ymail.com",
        "aol.com",
        "protonmail.com",
        "proton.me",
        "mail.com",
        "gmx.com",
        "gmx.net",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "2980.com",
    ]
)
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def email_domain(email: str) -> str | None:
    """The company domain of an e-mail address; None for free-mail providers or non-addresses."""
    text = unicodedata.normalize("NFKC", email or "").strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local:
        return None
    domain = domain.strip().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if not _DOMAIN.match(domain) or domain in FREE_MAIL_DOMAINS:
        return None
    return domain
