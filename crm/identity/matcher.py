"""Comparing two customers' identity keys (查重).

Two tiers:

* **hard** — the same legal entity without doubt; a registration is blocked. Same unified
  social credit code; or the same mobile number; or the same ``name_key`` (trade name +
  industry) in compatible regions (missing on either side, or one inside the other: 江苏 / 苏州)
  with the same branch (both none, or the same one) and no conflicting credit codes.
* **soft** — a look-alike the rep must confirm as "a different company": the same name in
  another region or as a branch / head office, the same trade name with another industry word,
  typos, homophones (same pinyin), names written in pinyin or English, reordered characters,
  a shared landline or company e-mail domain. These never block.

Names sharing only common words (科技, 有限公司, 信息技术, a region) never match: every name rule
looks at the trade names (字号), not at the whole string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from rapidfuzz.distance import OSA, Levenshtein
from rapidfuzz.fuzz import ratio

from crm.identity.credit import credit_code_division, email_domain, validate_credit_code
from crm.identity.normalize import ParsedName, parse_company_name, to_pinyin
from crm.identity.phones import is_mobile, normalize_phone
from crm.identity.regions import division_by_code, regions_compatible
from crm.identity.stored import parsed_name

__all__ = [
    "SOFT_THRESHOLD",
    "IdentityKeys",
    "Match",
    "compare",
    "keys_for",
    "rank",
    "stored_keys",
]

K = TypeVar("K")
Reason = str | Promise

# Lowest score a soft match is reported with. Every soft rule already requires similar trade
# names; this only cuts the weakest combinations (e.g. a distant typo in another region).
SOFT_THRESHOLD = 0.6

_SCORE_CREDIT = 1.0
_SCORE_MOBILE = 0.98
_SCORE_NAME = 0.96


@dataclass(frozen=True, slots=True)
class IdentityKeys:
    """Everything the duplicate check compares for one customer."""

    name: ParsedName
    credit_code: str = ""
    phones: tuple[str, ...] = ()  # E.164
    email_domain: str = ""

    @property
    def mobiles(self) -> frozenset[str]:
        return frozenset(p for p in self.phones if is_mobile(p))

    @property
    def landlines(self) -> frozenset[str]:
        return frozenset(p for p in self.phones if not is_mobile(p))

    @property
    def region_code(self) -> str:
        """The name's region; without one, the registration division of the credit code."""
        if self.name.region_code:
            return self.name.region_code
        division = division_by_code(credit_code_division(self.credit_code))
        return division.code if division else ""

    @property
    def region_label(self) -> str:
        if self.name.region:
            return self.name.region
        division = division_by_code(self.region_code) if self.region_code else None
        return division.short if division else ""


@dataclass(slots=True)
class Match:
    """The answer of ``compare``: tier, score in [0, 1] and the reasons (translatable)."""

    tier: Literal["hard", "soft"]
    score: float
    reasons: list[Reason] = field(default_factory=list)

    @property
    def is_hard(self) -> bool:
        return self.tier == "hard"

    def reason_texts(self) -> list[str]:
        return [str(r) for r in self.reasons]


def _valid_code(credit_code: str) -> str:
    """The credit code in its stored form, or "" when it is missing or invalid."""
    if not credit_code or not credit_code.strip():
        return ""
    try:
        return validate_credit_code(credit_code)
    except ValueError:
        return ""


def keys_for(
    name: str,
    credit_code: str = "",
    phones: Iterable[str] | str = (),
    email: str = "",
) -> IdentityKeys:
    """Identity keys of a customer. Invalid credit codes and unparseable phones are ignored
    (validate them in the form first to tell the user)."""
    raw_phones = [phones] if isinstance(phones, str) else list(phones)
    normalized = (normalize_phone(p) for p in raw_phones if p and p.strip())
    return IdentityKeys(
        name=parse_company_name(name or ""),
        credit_code=_valid_code(credit_code),
        phones=tuple(dict.fromkeys(p for p in normalized if p)),
        email_domain=(email_domain(email) or "") if email else "",
    )


def stored_keys(
    display_name: str,
    name_parts: dict[str, Any] | str | None,
    *,
    credit_code: str = "",
    phones: Iterable[str] = (),
    email_domain: str = "",
) -> IdentityKeys:
    """Identity keys of a stored customer from its stored keys: what keys_for gives for its
    fields, without parsing the name again (crm.identity.stored) or the E.164 phones. The
    parts may be the column's JSON text, as a plain cursor returns it (Django has the driver
    leave jsonb undecoded, for JSONField to decode)."""
    parts = json.loads(name_parts) if isinstance(name_parts, str) else name_parts
    return IdentityKeys(
        name=parsed_name(display_name, parts),
        credit_code=_valid_code(credit_code),
        phones=tuple(dict.fromkeys(p for p in phones if p)),
        email_domain=email_domain,
    )


# --------------------------------------------------------------------------------------------
# name comparison
# --------------------------------------------------------------------------------------------


def _similar_text(score: float) -> Reason:
    return format_lazy(_("similar names {score}"), score=f"{score:.2f}")


def _industries_agree(a: ParsedName, b: ParsedName) -> bool:
    return not a.industry or not b.industry or a.industry == b.industry


def _trade_typo(a: str, b: str) -> bool:
    """One slip (substitution, insertion, deletion; two in long names) between trade names of
    three or more characters, or one character added to / dropped from a two-character one."""
    if max(len(a), len(b)) < 3 or min(len(a), len(b)) < 2:
        return False
    allowed = 1 if max(len(a), len(b)) < 8 else 2
    return Levenshtein.distance(a, b) <= allowed


def _short_trade_slip(a: ParsedName, b: ParsedName) -> bool:
    """Two-character trade names that differ in one character only. Alone this is weak, so it
    counts only with the same explicit region and the same explicit industry on both sides."""
    ta, tb = a.trade_name, b.trade_name
    return (
        len(ta) == len(tb) == 2
        and (ta[0] == tb[0]) != (ta[1] == tb[1])
        and bool(a.region_code)
        and a.region_code == b.region_code
        and bool(a.industry)
        and a.industry == b.industry
    )


def _name_rules(
    a: ParsedName, b: ParsedName, *, only_same_trade: bool
) -> tuple[float, list[Reason]] | None:
    """Soft similarity of two names whose name_keys differ, or None.

    ``only_same_trade``: the records are known to differ in another way (explicit regions or
    credit codes); then a merely similar trade name is a different company and only the same
    trade name is worth showing.
    """
    if not (a.has_identity and b.has_identity):
        return None
    ta, tb = a.trade_name, b.trade_name
    agree = _industries_agree(a, b)
    if ta == tb:
        if agree:
            return 0.9, [_("same trade name (one side lacks the industry word)")]
        return 0.75, [
            _("same trade name"),
            format_lazy(_("different industries: {a} / {b}"), a=a.industry, b=b.industry),
        ]
    alt_a = {key for key, _region in a.alternatives}
    alt_b = {key for key, _region in b.alternatives}
    if b.name_key in alt_a or a.name_key in alt_b or alt_a & alt_b:
        return 0.85, [_("same name (the place name may be part of the trade name)")]
    if a.is_latin or b.is_latin:
        return _latin_rules(a, b, only_same_trade=only_same_trade)
    if only_same_trade:
        return None
    core_score = ratio(a.name_key, b.name_key) / 100.0
    # the whole core sounds the same, or differs by one slip, even where the slip moved the
    # border between trade name and industry word (云帆网落科技 / 云帆网络科技)
    if a.pinyin_key == b.pinyin_key or (agree and a.trade_pinyin == b.trade_pinyin):
        return 0.8, [_("same pinyin"), format_lazy(_("reading: {p}"), p=a.pinyin_key)]
    if not agree:
        if min(len(a.name_key), len(b.name_key)) >= 5 and (
            Levenshtein.distance(a.name_key, b.name_key) <= 1
        ):
            return 0.6 + 0.3 * core_score, [_similar_text(core_score)]
        return None
    if _trade_typo(ta, tb):
        return 0.6 + 0.3 * core_score, [_similar_text(core_score)]
    if a.sound_key == b.sound_key:
        return 0.75, [
            _("similar sound"),
            format_lazy(_("trade-name readings: {a} / {b}"), a=a.trade_pinyin, b=b.trade_pinyin),
        ]
    if _short_trade_slip(a, b):
        return 0.62, [_similar_text(core_score)]
    if len(ta) == len(tb) and sorted(ta) == sorted(tb):
        return 0.7, [_("same trade-name characters in another order"), _similar_text(core_score)]
    shorter, longer = sorted((ta, tb), key=len)
    if len(shorter) >= 3 and len(longer) - len(shorter) <= 2 and shorter in longer:
        return 0.7, [_("one trade name contains the other"), _similar_text(core_score)]
    return None


def _pinyin_readings(name: ParsedName) -> set[str]:
    """The pinyin keys a name may be written as: as parsed, its other readings and, for a
    Chinese name, with its region in front (Xiamen Zhibo Wuliu = 厦门 + 智博物流)."""
    keys = {name.pinyin_key, *(to_pinyin(key) for key, _region in name.alternatives)}
    if name.region and not name.is_latin:
        keys.add(to_pinyin(name.region) + name.pinyin_key)
    return keys


def _latin_rules(
    a: ParsedName, b: ParsedName, *, only_same_trade: bool
) -> tuple[float, list[Reason]] | None:
    """An English / pinyin name against another name: compare pinyin. The whole pinyin key is
    compared too, since pinyin industry words may be split differently (xin neng yuan)."""
    keys_a, keys_b = _pinyin_readings(a), _pinyin_readings(b)
    if any(len(key) >= 6 for key in keys_a & keys_b):
        return 0.85, [_("same pinyin"), _("English or pinyin name")]
    pa, pb = a.trade_pinyin, b.trade_pinyin
    if len(pa) < 4 or len(pb) < 4:
        return None
    if pa == pb and _industries_agree(a, b):
        return 0.85, [_("same pinyin"), _("English or pinyin name")]
    if only_same_trade or not _industries_agree(a, b):
        return None
    # one slip (two in long names); a swap of two letters counts as one (haojai / haojia)
    slips = OSA.distance(pa, pb)
    if min(len(pa), len(pb)) >= 5 and slips <= (1 if max(len(pa), len(pb)) < 9 else 2):
        similar = OSA.normalized_similarity(pa, pb)
        return 0.55 + 0.35 * similar, [
            format_lazy(_("similar pinyin {score}"), score=f"{similar:.2f}"),
            _("English or pinyin name"),
        ]
    return None


def _region_reason(probe: IdentityKeys, cand: IdentityKeys) -> Reason:
    return format_lazy(
        _("different regions: {a} / {b}"), a=probe.region_label or "?", b=cand.region_label or "?"
    )


def _branch_reason(a: ParsedName, b: ParsedName) -> Reason:
    if a.branch and b.branch:
        return format_lazy(_("different branches: {a} / {b}"), a=a.branch, b=b.branch)
    return _("branch office and head office")


def compare(probe: IdentityKeys, candidate: IdentityKeys) -> Match | None:
    """How ``probe`` matches ``candidate``: a hard or soft Match with reasons, or None."""
    hard: list[tuple[float, Reason]] = []
    soft: list[tuple[float, Reason]] = []
    notes: list[Reason] = []

    codes_differ = bool(probe.credit_code and candidate.credit_code) and (
        probe.credit_code != candidate.credit_code
    )
    if probe.credit_code and probe.credit_code == candidate.credit_code:
        hard.append((_SCORE_CREDIT, _("same unified social credit code")))
    # Telling mobiles from landlines parses the numbers: only when both sides have some.
    if probe.phones and candidate.phones:
        if probe.mobiles & candidate.mobiles:
            hard.append((_SCORE_MOBILE, _("same mobile number")))
        if probe.landlines & candidate.landlines:
            soft.append((0.7, _("same landline number")))
    if probe.email_domain and probe.email_domain == candidate.email_domain:
        soft.append((0.65, _("same company e-mail domain")))

    a, b = probe.name, candidate.name
    region_ok = regions_compatible(probe.region_code, candidate.region_code)
    branch_ok = a.branch == b.branch
    name_related = False
    if a.has_identity and b.has_identity and a.name_key == b.name_key:
        name_related = True
        if region_ok and branch_ok and not codes_differ:
            hard.append((_SCORE_NAME, _("same name (ignoring region and legal form)")))
        else:
            soft.append((0.85, _("same name (ignoring region and legal form)")))
    else:
        rules = _name_rules(a, b, only_same_trade=codes_differ or not region_ok)
        if rules is not None:
            score, reasons = rules
            score -= (0.0 if region_ok else 0.1) + (0.0 if branch_ok else 0.05)
            if score >= SOFT_THRESHOLD:
                name_related = True
                soft.extend((score, r) for r in reasons)
    if name_related:
        if codes_differ:
            notes.append(_("different unified social credit codes"))
        if not region_ok:
            notes.append(_region_reason(probe, candidate))
        if not branch_ok:
            notes.append(_branch_reason(a, b))

    if hard:
        reasons = [r for _s, r in hard] + [r for _s, r in soft] + notes
        return Match(tier="hard", score=max(s for s, _r in hard), reasons=reasons)
    if soft:
        score = round(min(max(s for s, _r in soft), 0.95), 3)
        return Match(tier="soft", score=score, reasons=[r for _s, r in soft] + notes)
    return None


def rank(
    probe: IdentityKeys, candidates: Iterable[tuple[K, IdentityKeys]], limit: int = 10
) -> list[tuple[K, Match]]:
    """The candidates that match ``probe``: hard matches first, then by score, at most
    ``limit``."""
    found: list[tuple[K, Match]] = []
    for key, keys in candidates:
        match = compare(probe, keys)
        if match is not None:
            found.append((key, match))
    found.sort(key=lambda item: (not item[1].is_hard, -item[1].score))
    return found[:limit]
