"""Look-up keys the duplicate check sends to PostgreSQL's array indexes (查重 retrieval).

Each function mirrors an IMMUTABLE SQL function of the same name (migration
crm 0010_customer_edit_lookup_indexes) whose result a GIN index holds for every customer. A
probe computes its own keys here and asks `stored_keys && probe_keys`: every stored row
within the edit the matcher accepts shares a key with the probe, and the index answers that
in about a millisecond at 1,000,000 customers — where trigram similarity over pinyin, or LIKE
patterns with a wildcard inside a short Chinese name, have to read posting lists shared by
a large part of the table.

The two sides must agree character for character: tests compare them on random inputs.
"""

from __future__ import annotations

# Shorter names have no deletion keys (they are looked up whole, by equality): deleting one
# letter of a short pinyin name leaves strings shared by thousands of customers, and the
# matcher wants at least five letters on both sides before it accepts a slip.
MIN_DELETION_LENGTH = 5
# Trade names (字号) whose one-character typos are looked up by mask, with their industry.
TYPO_TRADE_LENGTHS = range(2, 5)


def deletion_variants(key: str) -> list[str]:
    """`key` and every string one deletion away, from MIN_DELETION_LENGTH characters on.

    Two such strings one substitution, insertion, deletion or swap of neighbours apart always
    share one of these (SQL: crm_deletion_variants)."""
    if len(key) < MIN_DELETION_LENGTH:
        return []
    return sorted({key[:i] + key[i + 1 :] for i in range(len(key))} | {key})


def typo_masks(trade: str, industry: str) -> list[str]:
    """The trade name with each character in turn replaced by `_`, joined to its industry
    word: two names of the same industry whose short trade names differ in one character
    share one (SQL: crm_typo_masks, over search_key and name_key = trade + industry)."""
    if len(trade) not in TYPO_TRADE_LENGTHS or not industry:
        return []
    return [f"{trade[:i]}_{trade[i + 1 :]}|{industry}" for i in range(len(trade))]
