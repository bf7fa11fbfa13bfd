"""A parsed name as stored with its customer (``Customer.name_parts``).

Every duplicate check ranks up to 40 stored customers, and parsing each one's name again was
a quarter of a registration's Python time at a million customers. The parts are stored when
the identity keys are (crm.services._apply_identity) and read back here. They carry the
version of the parser that made them: any change to the parsing code, its data or the
libraries it uses gives another version, and parts of another version are ignored (the name
is parsed again), so a stored name never answers differently from a fresh parse.
"""

from __future__ import annotations

import dataclasses
import hashlib
from importlib.metadata import version
from pathlib import Path
from typing import Any

from crm.identity.normalize import ParsedName, parse_company_name

_PACKAGE = Path(__file__).resolve().parent
# What parse_company_name's answer and the stored form depend on: the parser, the region
# tables it reads, this module, and the pinyin and traditional → simplified libraries. Not
# the matcher or the phone and credit-code helpers: a change there leaves every stored name
# as it was (crm.services.customer_name_parts_refresh re-stamps names after a change here).
_SOURCES = sorted(
    [
        _PACKAGE / "normalize.py",
        _PACKAGE / "regions.py",
        _PACKAGE / "stored.py",
        *(_PACKAGE / "data").glob("*.json"),
    ],
    key=lambda path: path.name,
)


def _parser_version() -> str:
    digest = hashlib.sha256()
    for path in _SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for library in ("pypinyin", "opencc-python-reimplemented"):
        digest.update(f"{library}={version(library)}".encode())
    return digest.hexdigest()[:16]


PARSER_VERSION = _parser_version()
_FIELDS = tuple(f.name for f in dataclasses.fields(ParsedName) if f.name != "raw")


def name_parts(parsed: ParsedName) -> dict[str, Any]:
    """`parsed` as JSON for Customer.name_parts (the raw name is the customer's own)."""
    parts: dict[str, Any] = {name: getattr(parsed, name) for name in _FIELDS}
    parts["alternatives"] = [list(pair) for pair in parsed.alternatives]
    parts["version"] = PARSER_VERSION
    return parts


def parsed_name(display_name: str, parts: dict[str, Any] | None) -> ParsedName:
    """The customer's parsed name: from its stored parts when this parser made them."""
    if parts and parts.get("version") == PARSER_VERSION:
        try:
            values = {name: parts[name] for name in _FIELDS}
        except KeyError:
            return parse_company_name(display_name)
        values["alternatives"] = tuple(tuple(pair) for pair in values["alternatives"])
        return ParsedName(raw=display_name, **values)
    return parse_company_name(display_name)
