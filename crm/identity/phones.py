"""Phone numbers as identity keys: E.164 with China as the default region."""

from __future__ import annotations

import functools
import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

__all__ = ["is_mobile", "normalize_phone"]

DEFAULT_REGION = "CN"
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


@functools.lru_cache(maxsize=65536)
def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """The number in E.164 (``+8617757871703``), or None when it is not a valid number.

    Accepts spaces, dashes, brackets, full-width digits, a leading ``+86``, ``0086`` or bare
    ``86`` before a mobile number, and landlines with their area code (``010-12345678``).
    """
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=65536)
def is_mobile(e164: str) -> bool:
    """Whether an E.164 number is a mobile number (landlines and service numbers are not)."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE_TYPES
