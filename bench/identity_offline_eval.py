"""Offline evaluation of the duplicate check (查重) on a labelled probe set.

Loads ``base.csv`` into an in-memory index that approximates the database retrieval (exact
lookups by credit code, mobile number and name_key; fuzzy candidates = top-N by pg_trgm-like
trigram similarity on ``search_key`` and on ``pinyin_key``), runs every probe of ``probes.csv``
through ``crm.identity.matcher.rank``, writes the JSON the scorer reads and runs the scorer.
It scores the matcher quickly, without a database; the real SQL retrieval is scored on the
same data (and on generated held-out variants) by tests/crm/test_identity_score.py.

    .venv/bin/python bench/identity_offline_eval.py [--data DIR] [--out FILE] [--misses]
    .venv/bin/python bench/identity_offline_eval.py --synthetic SEED [--misses]

``--synthetic`` scores generated variants of base.csv instead (homophones, typos, English and
pinyin names, province+city prefixes, reordered characters, punctuation, unrelated names with
and without credit codes) — a robustness check beyond the dev set's kinds. The trigram
similarity treats CJK characters as word characters, as PostgreSQL's pg_trgm does only under
a UTF-8 LC_CTYPE. Needs no database and no project settings.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(USE_I18N=False)

from bench.verdict import check, exit_code  # noqa: E402
from crm.identity.matcher import IdentityKeys, Match, keys_for, rank  # noqa: E402
from crm.identity.normalize import is_too_short_for_fuzzy, to_pinyin  # noqa: E402

# The shared folder sits next to the repository (as in CI).
SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_DATA = SHARED / "data" / "identity-dev"
DEFAULT_SCORER = SHARED / "tools" / "score_identity.py"
TOP_N = 50


def trigrams(text: str) -> frozenset[str]:
    """pg_trgm's trigrams: each word padded with two spaces in front and one behind."""
    grams: set[str] = set()
    for word in re.findall(r"\w+", text.lower()):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return frozenset(grams)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


class Index:
    """What the database will offer: unique-ish exact keys and two trigram indexes."""

    def __init__(self) -> None:
        self.keys: dict[str, IdentityKeys] = {}
        self.by_code: dict[str, set[str]] = defaultdict(set)
        self.by_mobile: dict[str, set[str]] = defaultdict(set)
        self.by_name_key: dict[str, set[str]] = defaultdict(set)
        self.grams: dict[str, frozenset[str]] = {}
        self.pinyin_grams: dict[str, frozenset[str]] = {}
        self.posting: dict[str, set[str]] = defaultdict(set)
        self.pinyin_posting: dict[str, set[str]] = defaultdict(set)

    def add(self, ref: str, keys: IdentityKeys) -> None:
        self.keys[ref] = keys
        if keys.credit_code:
            self.by_code[keys.credit_code].add(ref)
        for mobile in keys.mobiles:
            self.by_mobile[mobile].add(ref)
        if keys.name.name_key:
            self.by_name_key[keys.name.name_key].add(ref)
        self.grams[ref] = trigrams(keys.name.search_key)
        self.pinyin_grams[ref] = trigrams(keys.name.pinyin_key)
        for g in self.grams[ref]:
            self.posting[g].add(ref)
        for g in self.pinyin_grams[ref]:
            self.pinyin_posting[g].add(ref)

    def _top(
        self,
        grams: frozenset[str],
        posting: dict[str, set[str]],
        table: dict[str, frozenset[str]],
    ) -> list[str]:
        pool: set[str] = set()
        for g in grams:
            pool |= posting.get(g, set())
        scored = sorted(pool, key=lambda ref: -similarity(grams, table[ref]))
        return scored[:TOP_N]

    def candidates(self, probe: IdentityKeys) -> Iterable[tuple[str, IdentityKeys]]:
        refs: set[str] = set()
        if probe.credit_code:
            refs |= self.by_code.get(probe.credit_code, set())
        for mobile in probe.mobiles:
            refs |= self.by_mobile.get(mobile, set())
        for key in [probe.name.name_key, *(k for k, _r in probe.name.alternatives)]:
            refs |= self.by_name_key.get(key, set())
        name = probe.name
        if not is_too_short_for_fuzzy(name.search_key):
            refs.update(self._top(trigrams(name.search_key), self.posting, self.grams))
            refs.update(
                self._top(trigrams(name.pinyin_key), self.pinyin_posting, self.pinyin_grams)
            )
        for key, _region in name.alternatives:
            # other readings (a place name that may be part of the trade name)
            if not is_too_short_for_fuzzy(key):
                refs.update(
                    self._top(trigrams(to_pinyin(key)), self.pinyin_posting, self.pinyin_grams)
                )
        return [(ref, self.keys[ref]) for ref in sorted(refs)]


# --------------------------------------------------------------------------------------------
# synthetic probes: variations the dev set does not contain (typos, homophones, English and
# pinyin names, province+city prefixes, reordered characters, punctuation), for robustness
# --------------------------------------------------------------------------------------------

_EN_INDUSTRY_NAMES: dict[str, list[str]] = {
    "科技": ["Technology", "Sci-Tech", "Science & Technology", "Tech"],
    "信息技术": ["Information Technology", "IT"],
    "软件": ["Software"],
    "网络": ["Network", "Networks"],
    "电子": ["Electronics", "Electronic"],
    "贸易": ["Trading", "Trade"],
    "物流": ["Logistics"],
    "医药": ["Pharmaceutical", "Pharma"],
    "文化": ["Culture", "Cultural"],
    "教育科技": ["Education Technology", "Educational Technology"],
    "能源": ["Energy"],
    "新材料": ["New Materials", "New Material"],
    "食品": ["Food", "Foods"],
    "机械": ["Machinery"],
    "实业": ["Industrial", "Industry"],
    "环保科技": ["Environmental Technology", "Environmental Protection Technology"],
    "生物科技": ["Biotechnology", "Bio-Tech", "Biological Technology"],
    "咨询": ["Consulting", "Consultancy"],
    "传媒": ["Media"],
    "建设工程": ["Construction Engineering"],
}
_EN_LEGAL_NAMES = ["Co., Ltd.", "Co.,Ltd", "CO., LTD", "Limited", "Company Limited", "Ltd."]


def _common_chars() -> list[str]:
    chars: list[str] = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def synthetic_probes(base_rows: list[dict[str, str]], seed: int) -> list[dict[str, str]]:
    from pypinyin import lazy_pinyin

    from crm.identity.normalize import parse_company_name, to_pinyin
    from crm.identity.regions import division_by_code

    rng = random.Random(seed)
    by_sound: dict[str, list[str]] = defaultdict(list)
    for ch in _common_chars():
        by_sound[lazy_pinyin(ch)[0]].append(ch)
    trade_chars = sorted({c for r in base_rows for c in parse_company_name(r["name"]).trade_name})
    trades = {parse_company_name(r["name"]).trade_name for r in base_rows}
    out: list[dict[str, str]] = []

    def add(ref: str, name: str, expected: str, expect: str, kind: str) -> None:
        out.append(
            {
                "external_ref": f"S{len(out):05d}",
                "name": name,
                "credit_code": "",
                "address": "",
                "phone": "",
                "expected_ref": expected,
                "expect": expect,
                "kind": kind,
            }
        )

    for row in base_rows:
        ref = row["external_ref"]
        parsed = parse_company_name(row["name"])
        trade, industry, region = parsed.trade_name, parsed.industry, parsed.region
        legal = parsed.legal_form or "有限公司"
        kind = rng.choice(
            ["homophone", "typo", "english", "pinyin", "province_city", "reorder", "punct"]
        )
        if kind == "homophone":
            i = rng.randrange(len(trade))
            options = [c for c in by_sound[lazy_pinyin(trade[i])[0]] if c != trade[i]]
            if options:
                typo = trade[:i] + rng.choice(options) + trade[i + 1 :]
                add(ref, f"{region}{typo}{industry}{legal}", ref, "surface", kind)
        elif kind == "typo":
            i = rng.randrange(len(trade))
            typo = trade[:i] + rng.choice(trade_chars) + trade[i + 1 :]
            if typo != trade and typo not in trades:
                add(ref, f"{typo}{industry}({region}){legal}", ref, "surface", kind)
        elif kind == "english" and industry in _EN_INDUSTRY_NAMES:
            words = " ".join(s.capitalize() for s in lazy_pinyin(trade))
            words = words.replace(" ", "") if rng.random() < 0.5 else words
            ind = rng.choice(_EN_INDUSTRY_NAMES[industry])
            place = f"{to_pinyin(region).capitalize()} " if rng.random() < 0.5 else ""
            add(ref, f"{place}{words} {ind} {rng.choice(_EN_LEGAL_NAMES)}", ref, "surface", kind)
        elif kind == "pinyin":
            syl = [s.capitalize() for s in lazy_pinyin(f"{region}{trade}{industry}有限公司")]
            add(ref, " ".join(syl), ref, "surface", kind)
        elif kind == "province_city":
            div = division_by_code(parsed.region_code)
            province = division_by_code(parsed.region_code[:2])
            if div is not None and province is not None:
                prefix = province.name + div.name if div.level > 1 else div.name
                add(ref, f"{prefix}{trade}{industry}{legal}", ref, "block", kind)
        elif kind == "reorder" and len(set(trade)) >= 2:
            chars = list(trade)
            while "".join(chars) == trade:
                rng.shuffle(chars)
            if "".join(chars) not in trades:
                add(ref, f"{region}{''.join(chars)}{industry}{legal}", ref, "distinct", kind)
        elif kind == "punct":
            sep = rng.choice(["·", " ", "-", "　", "、"])
            add(ref, f"【{region}】{sep}{trade}{sep}{industry}（{legal}）。", ref, "block", kind)

    # unrelated: names made of the same characters, industries and regions (no codes/phones)
    industries = sorted({parse_company_name(r["name"]).industry for r in base_rows} - {""})
    regions = sorted({parse_company_name(r["name"]).region for r in base_rows} - {""})
    for i in range(len(base_rows) // 2):
        n = rng.choice([2, 2, 3, 4])
        trade = "".join(rng.choice(trade_chars) for _ in range(n))
        if trade in trades:
            continue
        name = f"{rng.choice(regions)}{trade}{rng.choice(industries)}有限公司"
        add("", name, "", "none", "unrelated" if i % 2 else "unrelated_coded")
        if i % 2 == 0:
            out[-1]["credit_code"] = _random_credit_code(rng)
    return out


def _random_credit_code(rng: random.Random) -> str:
    from crm.identity.credit import CREDIT_CODE_ALPHABET, credit_code_check_char

    body = "91" + "".join(rng.choice("0123456789") for _ in range(6))
    body += "".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(9))
    return body + credit_code_check_char(body)


def match_json(ref: str, match: Match) -> dict[str, object]:
    return {
        "external_ref": ref,
        "tier": match.tier,
        "score": round(match.score, 3),
        "reasons": match.reason_texts(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--scorer", type=Path, default=DEFAULT_SCORER)
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "identity_offline_eval.json"
    )
    parser.add_argument("--misses", action="store_true", help="print every wrong answer")
    parser.add_argument(
        "--synthetic",
        type=int,
        metavar="SEED",
        help="score generated variants of base.csv (typos, homophones, English, pinyin, ...)",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    index = Index()
    with (args.data / "base.csv").open(encoding="utf-8") as fh:
        base_rows = list(csv.DictReader(fh))
    for row in base_rows:
        index.add(row["external_ref"], keys_for(row["name"], row["credit_code"], row["phone"]))
    names = {row["external_ref"]: row["name"] for row in base_rows}
    loaded = time.perf_counter()

    probes_file = args.data / "probes.csv"
    if args.synthetic is not None:
        probes = synthetic_probes(base_rows, args.synthetic)
        probes_file = args.out.with_suffix(".probes.csv")
        with probes_file.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(probes[0]))
            writer.writeheader()
            writer.writerows(probes)
    else:
        with probes_file.open(encoding="utf-8") as fh:
            probes = list(csv.DictReader(fh))
    results: list[dict[str, object]] = []
    for row in probes:
        probe = keys_for(row["name"], row["credit_code"], row["phone"])
        ranked = rank(probe, index.candidates(probe), limit=10)
        results.append(
            {"external_ref": row["external_ref"], "matches": [match_json(r, m) for r, m in ranked]}
        )
        if args.misses:
            _print_miss(row, ranked, names)
    done = time.perf_counter()

    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print(
        f"base={len(base_rows)} probes={len(probes)} load={loaded - started:.2f}s "
        f"match={done - loaded:.2f}s ({1000 * (done - loaded) / max(1, len(probes)):.2f} ms/probe)"
        f" -> {args.out}"
    )
    scored = subprocess.run(
        [sys.executable, str(args.scorer), str(probes_file), str(args.out)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(scored.stdout, end="")
    print(scored.stderr, end="", file=sys.stderr)
    lines = scored.stdout.strip().splitlines()
    figures = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", lines[-1] if lines else "")}
    for label, limit, at_least in (
        ("block_precision", 0.995, True),
        ("recall", 0.97, True),
        ("hard_recall", 0.90, True),
        ("false_alarm", 0.02, False),
    ):
        if label in figures:
            check(f"identity-dev {label}", figures[label], limit, "", at_least=at_least)
    return scored.returncode or exit_code()


def _print_miss(
    row: dict[str, str], ranked: list[tuple[str, Match]], names: dict[str, str]
) -> None:
    expected, expect = row["expected_ref"], row["expect"]
    hard = {r for r, m in ranked if m.is_hard}
    found = {r for r, _m in ranked}
    wrong = (
        (expect == "block" and expected not in hard)
        or (expect == "surface" and expected not in found)
        or (expect == "distinct" and bool(hard))
        or (expect == "none" and bool(found))
        or bool(hard - {expected})
    )
    if wrong:
        shown = "; ".join(
            f"{r} {names[r]} {m.tier} {m.score:.2f} {m.reason_texts()}" for r, m in ranked
        )
        print(
            f"MISS {row['kind']:18s} {expect:8s} {row['name']} -> {expected} "
            f"{names.get(expected, '')} | {shown}"
        )


if __name__ == "__main__":
    sys.exit(main())
