"""Phone numbers as identity keys: E.164 with China as the default region."""

from __future__ import annotations

import functools
import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

__all__ = ["clear_caches", "is_mobile", "normalize_phone"]

DEFAULT_REGION = "CN"
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})

# E.164 numbers this module produced, with whether each is a mobile. A number is normalised,
# then normalised again as a key and asked whether it is a mobile (three parses of a few
# hundred microseconds each); the E.164 form is its own normal form whatever the default
# region, so the later two are answered from here.
_KNOWN_LIMIT = 65536
_known: dict[str, bool] = {}


@functools.lru_cache(maxsize=65536)
def _parse(text: str, region: str) -> tuple[str, bool] | None:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.number_type(number) in _MOBILE_TYPES


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """The number in E.164 (``+8617757871703``), or None when it is not a valid number.

    Accepts spaces, dashes, brackets, full-width digits, a leading ``+86``, ``0086`` or bare
    ``86`` before a mobile number, and landlines with their area code (``010-12345678``).
    """
    if raw in _known:
        return raw
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        return None
    parsed = _parse(text, region)
    if parsed is None:
        return None
    e164, mobile = parsed
    if len(_known) >= _KNOWN_LIMIT:
        _known.clear()
    _known[e164] = mobile
    return e164


@functools.lru_cache(maxsize=65536)
def _is_mobile(e164: str) -> bool:
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE_TYPES


def is_mobile(e164: str) -> bool:
    """Whether an E.164 number is a mobile number (landlines and service numbers are not)."""
    known = _known.get(e164)
    return _is_mobile(e164) if known is None else known


def clear_caches() -> None:
    """Forget every number seen (benchmarks measure cold parsing)."""
    _known.clear()
    _parse.cache_clear()
    _is_mobile.cache_clear()
