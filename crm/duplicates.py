"""The duplicate check (查重) against the database: candidate retrieval in SQL, ranking in
Python (crm.identity.matcher). Exact keys use unique/btree indexes; fuzzy names use the
trigram GIN indexes on the normalised search key and the pinyin key, never the raw name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Prefetch

from crm.identity.matcher import IdentityKeys, Match, keys_for, rank
from crm.identity.normalize import is_too_short_for_fuzzy, to_pinyin
from crm.models import Customer, CustomerPhone

# At most this many customers are ranked per check, whatever the query.
MAX_CANDIDATES = 40
# Trigram candidates per index and query text; the matcher then decides what is a match.
FUZZY_CANDIDATES = 15
# Below pg_trgm's default 0.3: short Chinese names with one changed character fall under it.
TRIGRAM_THRESHOLD = 0.2


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


def customer_keys(customer: Customer) -> IdentityKeys:
    """Identity keys of a stored customer (its phones must be prefetched)."""
    numbers = [phone.number for phone in customer.phones.all()]
    return keys_for(customer.display_name, credit_code=customer.credit_code, phones=numbers)


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
    return TRIGRAM_THRESHOLD


def _fuzzy_ids(column: str, text: str, exclude: set[int]) -> list[int]:
    # The column is one of two fixed names, never user input.
    assert column in {"search_key", "pinyin_key"}
    limit = FUZZY_CANDIDATES + len(exclude)
    threshold = _threshold(text)
    with connection.cursor() as cursor:
        if threshold is None:
            cursor.execute(
                f"SELECT id FROM crm_customer WHERE {column} = %s AND merged_into_id IS NULL "
                "LIMIT %s",
                [text, limit],
            )
        else:
            cursor.execute("SELECT set_limit(%s)", [threshold])
            cursor.execute(
                f"""
                SELECT id FROM crm_customer
                WHERE {column} %% %s AND merged_into_id IS NULL
                ORDER BY similarity({column}, %s) DESC
                LIMIT %s
                """,
                [text, text, limit],
            )
        return [row[0] for row in cursor.fetchall() if row[0] not in exclude]


def _short_typo_ids(trade: str, industry: str, exclude: set[int]) -> list[int]:
    """Two-character trade names with one character changed and the same industry word.

    Trigrams cannot rank these (they share one trigram with thousands of names), so ask
    for the exact shapes: X? or ?Y, then the industry. The trigram index serves the LIKE.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id FROM crm_customer
            WHERE (search_key LIKE %s OR search_key LIKE %s)
              AND char_length(search_key) = 2 AND name_key = search_key || %s
              AND merged_into_id IS NULL
            LIMIT %s
            """,
            [trade[0] + "_", "_" + trade[1], industry, FUZZY_CANDIDATES + len(exclude)],
        )
        return [row[0] for row in cursor.fetchall() if row[0] not in exclude]


def candidate_ids(keys: IdentityKeys, *, exclude: Sequence[int] = ()) -> list[int]:
    """Ids of the customers worth comparing with `keys`, bounded by MAX_CANDIDATES."""
    excluded = set(exclude)
    active = Customer.objects.filter(merged_into__isnull=True).exclude(id__in=excluded)
    ids: list[int] = []
    if keys.credit_code:
        ids += active.filter(credit_code=keys.credit_code).values_list("id", flat=True)[:5]
    if keys.phones:
        ids += (
            CustomerPhone.objects.filter(number__in=keys.phones, active=True)
            .exclude(customer_id__in=excluded)
            .values_list("customer_id", flat=True)[:10]
        )
    name = keys.name
    name_keys = {name.name_key, *(alt for alt, _region in name.alternatives)} - {""}
    if name_keys:
        ids += active.filter(name_key__in=name_keys).values_list("id", flat=True)[:10]
    if name.search_key and not is_too_short_for_fuzzy(name.search_key):
        ids += _fuzzy_ids("search_key", name.search_key, excluded)
        if len(name.search_key) == 2 and name.industry:
            ids += _short_typo_ids(name.search_key, name.industry, excluded)
        if name.trade_pinyin:
            ids += _fuzzy_ids("pinyin_key", name.trade_pinyin, excluded)
    for key, _region in name.alternatives:
        # Another reading of the name (a leading place name that may be part of the trade
        # name): look its trade part up by sound too, as pinyin names are stored that way.
        trade = key.removesuffix(name.industry) if name.industry else key
        if not is_too_short_for_fuzzy(key) and trade:
            ids += _fuzzy_ids("pinyin_key", to_pinyin(trade), excluded)
    return list(dict.fromkeys(ids))[:MAX_CANDIDATES]


def find_duplicates(
    keys: IdentityKeys, *, exclude: Sequence[int] = (), limit: int = 10
) -> list[DuplicateMatch]:
    """Matches for `keys` among stored customers: hard first, then by score."""
    ids = candidate_ids(keys, exclude=exclude)
    if not ids:
        return []
    customers = (
        Customer.objects.filter(id__in=ids)
        .select_related("owner", "owner__team")
        .prefetch_related(
            Prefetch(
                "phones", queryset=CustomerPhone.objects.only("customer_id", "number", "is_mobile")
            )
        )
    )
    by_id = {customer.id: customer for customer in customers}
    ranked: list[tuple[int, Match]] = rank(
        keys, ((cid, customer_keys(c)) for cid, c in by_id.items()), limit=limit
    )
    return [
        DuplicateMatch(
            customer=by_id[cid],
            tier=match.tier,
            score=round(match.score, 3),
            reasons=match.reason_texts(),
        )
        for cid, match in ranked
    ]
