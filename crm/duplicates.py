"""The duplicate check (查重) against the database: candidate retrieval in SQL, ranking in
Python (crm.identity.matcher). Exact keys use unique/btree indexes; similar Chinese trade
names the trigram GIN index on the normalised search key; one-character typos of short trade
names and English / pinyin names one slip away the array GIN indexes over the look-up keys of
crm.identity.lookup_keys. Never the raw name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from crm import prepared
from crm.identity.lookup_keys import MIN_DELETION_LENGTH, deletion_variants, typo_masks
from crm.identity.matcher import IdentityKeys, Match, keys_for, rank, stored_keys
from crm.identity.normalize import is_too_short_for_fuzzy, to_pinyin
from crm.models import Customer
from crm.rows import RowLoader

# At most this many customers are ranked per check, whatever the query.
MAX_CANDIDATES = 40
# Trigram candidates per index and query text; the matcher then decides what is a match.
FUZZY_CANDIDATES = 15
# Below pg_trgm's default 0.3: short Chinese names with one changed character fall under it.
TRIGRAM_THRESHOLD = 0.2
FOUR_CHARACTER_THRESHOLD = 0.25


@dataclass(frozen=True)
class DuplicateMatch:
    customer: Customer
    tier: str
    score: float
    reasons: list[str] = field(default_factory=list)

    @property
    def is_hard(self) -> bool:
        return self.tier == "hard"


def probe_keys(
    *, name: str, credit_code: str = "", phones: Iterable[str] = (), email: str = ""
) -> IdentityKeys:
    return keys_for(name, credit_code=credit_code, phones=list(phones), email=email)


def customer_keys(customer: Customer, phones: Sequence[str] | None = None) -> IdentityKeys:
    """Identity keys of a stored customer: its stored parsed name, credit code, phone numbers
    (stored in E.164: `phones`, else its prefetched phones) and e-mail domain."""
    if phones is None:
        phones = [phone.number for phone in customer.phones.all()]
    return stored_keys(
        customer.display_name,
        customer.name_parts,
        credit_code=customer.credit_code,
        phones=phones,
        email_domain=customer.email_domain,
    )


def _threshold(text: str) -> float | None:
    """Trigram similarity needed for a candidate, by query length; None: exact only.

    Short strings have few trigrams, so a low threshold matches a large share of the table
    (a two-character trade name shares a trigram with thousands of others) and the query
    must then rank all of them. Short keys therefore ask for more, the shortest for
    equality (which the trigram GIN index also serves).
    """
    latin = text.isascii()
    length = len(text) / 3 if latin else len(text)  # ~3 pinyin letters per character
    if length <= 2:
        return None
    if length <= 3:
        return 0.3
    if length <= 4 and not latin:
        # The GIN index keeps every row sharing threshold x (query trigrams) of the text's
        # trigrams. A four-character name has five, so at 0.2 one shared trigram would do:
        # every name starting with the same character is fetched, and rejected, since one
        # shared trigram never reaches 0.2 (at most 1/6). Asking for 0.25 makes it two, and
        # the check 100x cheaper at a million customers; only pairs two edits apart fall in
        # between, except a trade name inside one a character longer at both ends.
        return FOUR_CHARACTER_THRESHOLD
    return TRIGRAM_THRESHOLD


@dataclass(frozen=True)
class FuzzyProbe:
    """One fuzzy look-up of the duplicate check; the bulk import runs the same probes.

    kind "similar": `column % text` at `threshold`, best first; "equal": `column = text`;
    "typo": short trade names with one character changed and the same `industry` word;
    "spelling": pinyin one slip (substitution, insertion, deletion, swap) away. The last two
    compare `lookup_keys` with the stored ones in an array index (see LOOKUP_SQL).
    """

    kind: str
    column: str
    text: str
    threshold: float | None = None
    industry: str = ""

    @property
    def lookup_keys(self) -> list[str]:
        if self.kind == "typo":
            return typo_masks(self.text, self.industry)
        if self.kind == "spelling":
            return deletion_variants(self.text)
        return []


# The stored side of each array look-up: the indexed expressions of the customer table.
LOOKUP_SQL = {
    "typo": "crm_typo_masks(search_key, name_key)",
    "spelling": "crm_deletion_variants(pinyin_key)",
}


def _similar(column: str, text: str) -> FuzzyProbe:
    threshold = _threshold(text)
    if threshold is None:
        return FuzzyProbe("equal", column, text)
    return FuzzyProbe("similar", column, text, threshold)


def _spelling(text: str) -> FuzzyProbe:
    if len(text) < MIN_DELETION_LENGTH:
        return FuzzyProbe("equal", "pinyin_key", text)
    return FuzzyProbe("spelling", "pinyin_key", text)


def fuzzy_probes(keys: IdentityKeys) -> list[FuzzyProbe]:
    """The fuzzy look-ups for `keys`, in order (exact keys are looked up separately)."""
    name = keys.name
    probes: list[FuzzyProbe] = []
    if name.search_key and not is_too_short_for_fuzzy(name.search_key):
        probes.append(_similar("search_key", name.search_key))
        if 2 <= len(name.search_key) <= 4 and name.industry and not name.is_latin:
            # Trigrams rank one-character typos of short names badly (a changed middle
            # character leaves almost no shared trigram): ask for the exact shapes.
            probes.append(FuzzyProbe("typo", "search_key", name.search_key, industry=name.industry))
        if name.trade_pinyin:
            # Homophones of a Chinese name have the very same toneless pinyin: look it up
            # exactly. Latin (English or pinyin) names are spelt loosely: one slip away.
            if name.is_latin:
                probes.append(_spelling(name.trade_pinyin))
            else:
                probes.append(FuzzyProbe("equal", "pinyin_key", name.trade_pinyin))
    for key, _region in name.alternatives:
        # Another reading of the name (a leading place name that may be part of the trade
        # name): look its trade part up by sound too, as pinyin names are stored that way.
        trade = key.removesuffix(name.industry) if name.industry else key
        if trade and not is_too_short_for_fuzzy(key):
            probes.append(FuzzyProbe("equal", "pinyin_key", to_pinyin(trade)))
    return probes


def _probe_sql(
    probe: FuzzyProbe, *, exclude_count: int, max_id: int | None = None
) -> tuple[str, list[Any]] | None:
    """The SELECT of one probe (bounded to FUZZY_CANDIDATES beyond `exclude_count` rows to
    be dropped), or None when it has nothing to look up. A "similar" probe needs its
    threshold set first (set_limit)."""
    # The column is one of two fixed names, never user input.
    assert probe.column in {"search_key", "pinyin_key"}
    column = probe.column
    where = ["merged_into_id IS NULL"]
    params: list[Any] = []
    order = ""
    if probe.kind == "equal":
        where.append(f"{column} = %s")
        params.append(probe.text)
    elif probe.kind == "similar":
        where.append(f"{column} %% %s")
        params.append(probe.text)
        order = f"ORDER BY similarity({column}, %s) DESC"
    else:
        keys = probe.lookup_keys
        if not keys:
            return None
        # The keys go in as a sub-select so the planner cannot see them: it takes every key
        # for a common one and, under the LIMIT, would rather filter the whole table than
        # read the index. Unordered for the same reason (an ORDER BY starts parallel
        # workers); the few rows sharing a key are all worth ranking.
        where.append(f"{LOOKUP_SQL[probe.kind]} && (SELECT %s::text[])")
        params.append(keys)
    if max_id is not None:
        where.append("id <= %s")
        params.append(max_id)
    if order:
        params.append(probe.text)
    params.append(FUZZY_CANDIDATES + exclude_count)
    return f"SELECT id FROM crm_customer WHERE {' AND '.join(where)} {order} LIMIT %s", params


def probe_ids(probe: FuzzyProbe, *, exclude: set[int], max_id: int | None = None) -> list[int]:
    """Run one probe (bounded to FUZZY_CANDIDATES); `max_id` limits it to older rows."""
    query = _probe_sql(probe, exclude_count=len(exclude), max_id=max_id)
    if query is None:
        return []
    sql, params = query
    with connection.cursor() as cursor:
        if probe.kind == "similar":
            cursor.execute("SELECT set_limit(%s)", [probe.threshold])
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [row[0] for row in rows if row[0] not in exclude]


def candidate_ids(keys: IdentityKeys, *, exclude: Sequence[int] = ()) -> list[int]:
    """Ids of the customers worth comparing with `keys`, bounded by MAX_CANDIDATES: by credit
    code, phone and name key, then by each fuzzy probe, in that order.

    One round trip: every look-up is a branch of one UNION ALL (each planned on its own, with
    its own bound), tagged with its place in that order."""
    excluded = sorted(set(exclude))
    branches: list[tuple[str, list[Any]]] = []
    # The exact keys, newest customers first as the model orders them.
    if keys.credit_code:
        branches.append(
            (
                "SELECT id FROM crm_customer WHERE merged_into_id IS NULL AND credit_code = %s "
                "AND NOT id = ANY(%s) ORDER BY created_at DESC LIMIT 5",
                [keys.credit_code, excluded],
            )
        )
    if keys.phones:
        branches.append(
            (
                "SELECT customer_id AS id FROM crm_customerphone WHERE number = ANY(%s) AND active "
                "AND NOT customer_id = ANY(%s) LIMIT 10",
                [list(keys.phones), excluded],
            )
        )
    name = keys.name
    name_keys = sorted({name.name_key, *(alt for alt, _region in name.alternatives)} - {""})
    if name_keys:
        branches.append(
            (
                "SELECT id FROM crm_customer WHERE merged_into_id IS NULL AND name_key = ANY(%s) "
                "AND NOT id = ANY(%s) ORDER BY created_at DESC LIMIT 10",
                [name_keys, excluded],
            )
        )
    exact = len(branches)
    thresholds = set()
    for probe in fuzzy_probes(keys):
        query = _probe_sql(probe, exclude_count=len(excluded))
        if query is not None:
            branches.append(query)
            if probe.kind == "similar":
                thresholds.add(probe.threshold)
    if not branches:
        return []
    # The trigram threshold is a setting: one for the statement (fuzzy_probes asks for one
    # "similar" look-up at most; more would need their own statements).
    assert len(thresholds) <= 1, thresholds
    union = " UNION ALL ".join(
        f"(SELECT {number} AS branch, id FROM ({sql}) AS b{number})"
        for number, (sql, _params) in enumerate(branches)
    )
    params = [param for _sql, branch_params in branches for param in branch_params]
    # Prepared (one per combination of look-ups): planning the union cost more than
    # running it. The trigram operator reads its threshold when it runs.
    threshold = ("SELECT set_limit(%s)", [thresholds.pop()]) if thresholds else None
    found: list[list[int]] = [[] for _ in branches]
    with connection.cursor() as cursor:
        prepared.execute(cursor, union, params, before=threshold)
        for branch, cid in cursor.fetchall():
            found[branch].append(cid)
    ids = [cid for branch in found[:exact] for cid in branch]
    skip = set(excluded)
    ids += [cid for branch in found[exact:] for cid in branch if cid not in skip]
    return list(dict.fromkeys(ids))[:MAX_CANDIDATES]


# What the answer shows of a match: the customer with its owner and the owner's team.
_matched: RowLoader[Customer] = RowLoader(Customer, ["owner", "owner__team"])


def find_duplicates(
    keys: IdentityKeys, *, exclude: Sequence[int] = (), limit: int = 10
) -> list[DuplicateMatch]:
    """Matches for `keys` among stored customers: hard first, then by score."""
    ids = candidate_ids(keys, exclude=exclude)
    if not ids:
        return []
    # Up to MAX_CANDIDATES are ranked, and most checks match none or a few of them: rank
    # plain rows (the columns the keys need, the phone numbers alongside) and build models
    # only for the matches. Building and compiling the model query with owner and team for
    # every candidate was a third of a registration's duplicate check.
    with connection.cursor() as cursor:
        prepared.execute(
            cursor,
            "SELECT c.id, c.display_name, c.name_parts, c.credit_code, c.email_domain, "
            "ARRAY(SELECT p.number FROM crm_customerphone p WHERE p.customer_id = c.id "
            # Newest first, as customers are listed: the ranking is stable, so this settles
            # ties between equal scores.
            "ORDER BY p.id) FROM crm_customer c WHERE c.id = ANY(%s) ORDER BY c.created_at DESC",
            [ids],
        )
        rows = cursor.fetchall()
    ranked: list[tuple[int, Match]] = rank(
        keys,
        (
            (
                cid,
                stored_keys(
                    display_name,
                    parts,
                    credit_code=credit_code,
                    phones=phones,
                    email_domain=email_domain,
                ),
            )
            for cid, display_name, parts, credit_code, email_domain, phones in rows
        ),
        limit=limit,
    )
    if not ranked:
        return []
    customers = _matched.in_bulk(cid for cid, _match in ranked)
    return [
        DuplicateMatch(
            customer=customers[cid],
            tier=match.tier,
            score=round(match.score, 3),
            reasons=match.reason_texts(),
        )
        for cid, match in ranked
        # Merged away between the two reads: no longer a customer to point at.
        if cid in customers
    ]
