"""Identity resolution (查重) for Chinese company names: pure functions, no database.

- ``normalize``: ``normalize_text``, ``parse_company_name`` → ``ParsedName`` (region, trade
  name, industry, legal form, branch; ``name_key``, ``pinyin_key``, ``search_key``).
- ``regions``: the vendored table of administrative divisions, ``parse_address``.
- ``phones``: ``normalize_phone`` (E.164), ``is_mobile``.
- ``credit``: ``validate_credit_code`` (GB 32100-2015), ``email_domain``.
- ``matcher``: ``keys_for`` → ``IdentityKeys``, ``compare`` → ``Match`` (hard / soft with
  reasons), ``rank``.
"""

from crm.identity.credit import email_domain, validate_credit_code
from crm.identity.matcher import IdentityKeys, Match, compare, keys_for, rank
from crm.identity.normalize import (
    ParsedName,
    is_too_short_for_fuzzy,
    normalize_text,
    parse_company_name,
)
from crm.identity.phones import is_mobile, normalize_phone
from crm.identity.regions import AddressDivision, parse_address

__all__ = [
    "AddressDivision",
    "IdentityKeys",
    "Match",
    "ParsedName",
    "compare",
    "email_domain",
    "is_mobile",
    "is_too_short_for_fuzzy",
    "keys_for",
    "normalize_phone",
    "normalize_text",
    "parse_address",
    "parse_company_name",
    "rank",
    "validate_credit_code",
]
