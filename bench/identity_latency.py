"""Latency of the duplicate check (查重) against a large customer table.

    .venv/bin/python bench/identity_latency.py [--n 1000000] [--probes 3000] [--reuse]

Creates its own database (``guishu_bench`` on the server of DATABASE_URL; never the dev
data), fills it with N customers with realistic Chinese company names (region + trade name
from a character pool + industry + legal form; valid credit codes, unique mobiles), their
identity keys computed by the real ``parse_company_name`` in worker processes and loaded
with COPY (indexes rebuilt afterwards). Then times ``find_duplicates(probe_keys(...))`` for
a few thousand probes — variants of stored names, unrelated names, English/pinyin names and
adversarial ones made of common words (科技, 有限公司, Trading, Ltd, 北京科技有限公司) — and prints
p50/p95/p99 in ms, next to the raw PostgreSQL time of the trigram candidate query
(EXPLAIN ANALYZE). Target: p95 <= 30 ms at 1,000,000 customers.

``--reuse`` keeps an existing bench database of the same size (generation takes minutes).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.verdict import check, exit_code  # noqa: E402

# --------------------------------------------------------------------------------------------
# realistic company names
# --------------------------------------------------------------------------------------------

# Characters common in Chinese trade names (字号), most frequent first: a Zipf-like pick
# makes popular ones (华, 兴, 达, ...) as crowded as they are in a real register.
TRADE_CHARS = (
    "华兴达博创新鑫泰丰源盛利恒瑞安康宏远通宇嘉和信德天正明辉永金隆海星成光联顺发中智凯汇"
    "广誉腾飞亿东方佳合美科伟豪尚新锐晟昊晨阳益福运昌祥富荣乐欣悦骏驰迅捷卓越卓诚立邦"
    "航峰锦绣诺雅睿思维格致远图景润泽蓝天宝龙凤麒麟鹏程万里九州四海环球世纪时代东升旭日"
    "红星银河长城泰山黄河江南北辰南方西部中原齐鲁燕赵巴蜀闽粤湘楚吴越京沪津渝苏杭甬温"
    "久大元亨贞吉庆云霞虹彩晶钻铭刻书文艺青松柏竹梅兰菊桂杉楠森林木本源清澈泉溪湖泊"
    "岩石磐坚固强力量能量子光电磁声波频谱网链数云端智慧慧聪敏捷灵巧匠心艺精工品质优"
    "奥贝必灿畅超辰澄驰崇楚淳聪萃达黛丹迪鼎冬朵帆梵斐芬枫孚甫赋罡皋歌耕弓冠贯圭瀚昊浩"
    "禾赫鸿厚沪琥桦淮焕煌徽惠汇霁佳珈坚建鉴江骄杰洁今津进菁璟靖炯玖炬钧俊楷康珂可岚朗"
    "澜蕾黎礼丽莉廉良亮琳麟灵凌领珑禄路伦洛麦满茂玫美萌蒙弥敏铭墨木沐纳南楠宁诺欧沛"
    "鹏琪启乾谦倩巧勤沁青擎庆秋全泉然仁荣蓉睿若润森山善尚韶绍晟诗拾仕舒曙朔硕斯颂素"
    "涛腾添田桐彤拓万唯维蔚文沃希熙夏贤翔潇晓欣新馨星杏旭萱璇雪逊雅亚妍炎晏燕扬耀烨"
    "怡颐毅翼银盈颖映雍优佑于余渔瑜玉钰裕煜元原圆远苑跃悦岳云允韵蕴泽展湛章昭哲臻振"
)
INDUSTRY = [
    "科技", "信息技术", "网络科技", "软件", "电子", "贸易", "商贸", "实业", "机械", "生物科技",
    "医药", "环保科技", "文化传媒", "建设工程", "物流", "食品", "咨询", "教育科技", "新材料",
    "能源", "智能科技", "电子商务", "投资", "餐饮管理", "服饰", "家居", "汽车服务", "农业",
]  # fmt: skip
LEGAL = [("有限公司", 60), ("有限责任公司", 20), ("股份有限公司", 12), ("集团有限公司", 8)]
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ADVERSARIAL = [
    "科技", "有限公司", "贸易", "Trading", "Ltd", "北京科技有限公司", "科技有限公司",
    "上海贸易有限公司", "信息技术有限公司", "中国", "集团", "Technology Co., Ltd.",
    "Beijing Trading Co., Ltd.", "深圳市科技有限公司", "发展", "实业有限公司", "华",
    "网络科技有限公司", "Shanghai Technology Ltd", "(北京)有限公司",
]  # fmt: skip


@dataclass(frozen=True)
class Region:
    code: str
    full: str  # 苏州市
    short: str  # 苏州
    province_full: str  # 江苏省 ('' for municipalities and provinces themselves)


def load_regions() -> list[Region]:
    from crm.identity.regions import DATA_FILE, division_by_code

    raw = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    provinces = dict(raw["provinces"])
    regions: list[Region] = []
    for code, name in raw["provinces"]:
        div = division_by_code(code)
        if div is not None:
            regions.append(Region(code, name, div.short, ""))
    for code, name in raw["cities"]:
        div = division_by_code(code)
        if div is None or name in ("市辖区", "县"):
            continue
        province = provinces.get(code[:2], "")
        regions.append(Region(code, name, div.short, province))
    return regions


def _zipf_weights(n: int, s: float = 0.8) -> list[float]:
    return [1.0 / (i + 1) ** s for i in range(n)]


class NameGenerator:
    """Deterministic (seeded) realistic company names and identifiers."""

    def __init__(self, seed: int = 42) -> None:
        self.rng = random.Random(seed)
        self.regions = load_regions()
        # big cities register more companies
        self.region_weights = [
            5.0 if r.code[:2] in ("11", "31", "12", "50") or r.code in ("4403", "4401", "3301")
            else 1.0 if len(r.code) == 4
            else 2.0
            for r in self.regions
        ]  # fmt: skip
        self.chars = list(dict.fromkeys(TRADE_CHARS))
        self.char_weights = _zipf_weights(len(self.chars), 0.6)
        self.industry_weights = _zipf_weights(len(INDUSTRY), 0.6)

    def trade_name(self) -> str:
        length = self.rng.choices((2, 3, 4), weights=(35, 45, 20))[0]
        return "".join(self.rng.choices(self.chars, weights=self.char_weights, k=length))

    def region(self) -> Region:
        return self.rng.choices(self.regions, weights=self.region_weights)[0]

    def name(self) -> tuple[str, Region | None]:
        trade = self.trade_name()
        industry = self.rng.choices(INDUSTRY, weights=self.industry_weights)[0]
        legal = self.rng.choices([f for f, _ in LEGAL], weights=[w for _, w in LEGAL])[0]
        style = self.rng.random()
        region = self.region()
        if style < 0.55:
            prefix = self.rng.choice((region.full, region.short))
            if region.province_full and self.rng.random() < 0.15:
                prefix = region.province_full + region.full
            name = f"{prefix}{trade}{industry}{legal}"
        elif style < 0.75:
            name = f"{trade}{industry}({region.short}){legal}"
        elif style < 0.93:
            name = f"{trade}{industry}{legal}"
            region = None  # type: ignore[assignment]
        else:
            branch_city = self.region()
            name = f"{region.short}{trade}{industry}{legal}{branch_city.short}分公司"
        return name, region

    def credit_code(self, region: Region | None) -> str:
        from crm.identity.credit import credit_code_check_char

        division = (region.code if region else self.region().code).ljust(6, "0")[:6]
        body = "91" + division + "".join(self.rng.choices(CREDIT_ALPHABET, k=9))
        return body + credit_code_check_char(body)

    def mobile(self) -> str:
        prefix = self.rng.choice(
            ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152",
             "158", "159", "177", "180", "181", "186", "187", "188", "189", "199")
        )  # fmt: skip
        return prefix + f"{self.rng.randrange(10**8):08d}"

    def address(self, region: Region | None) -> str:
        region = region or self.region()
        road = self.rng.choice(("人民路", "中山路", "解放大道", "建设路", "科技园路", "长江路"))
        return f"{region.province_full}{region.full}{road}{self.rng.randrange(1, 999)}号"


# --------------------------------------------------------------------------------------------
# the bench database
# --------------------------------------------------------------------------------------------


def bench_database(name: str, *, recreate: bool) -> str:
    """Create (or reuse) database `name` on DATABASE_URL's server; returns its URL.

    Call before django.setup(): DATABASE_URL is pointed at the bench database for the rest
    of the process, so nothing here can touch the dev data.
    """
    import psycopg2
    from psycopg2 import sql

    base = os.environ.get("GUISHU_BENCH_SERVER_URL") or os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("Set DATABASE_URL (the bench creates its own database on that server).")
    os.environ["GUISHU_BENCH_SERVER_URL"] = base  # the server, for a second call
    parsed = urlparse(base)
    admin = psycopg2.connect(urlunparse(parsed._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        exists = cursor.fetchone() is not None
        if exists and recreate:
            cursor.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = False
        if not exists:
            # A UTF-8 ctype: with C, pg_trgm ignores Chinese characters (see crm.checks).
            cursor.execute(
                sql.SQL(
                    "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
                    "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
                ).format(sql.Identifier(name))
            )
    admin.close()
    url = urlunparse(parsed._replace(path=f"/{name}"))
    os.environ["DATABASE_URL"] = url
    return url


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    # Measure what production runs: with the development default DEBUG=True Django keeps the
    # text of every query (a multi-megabyte string for each bulk INSERT of an import), and the
    # web server started by bench/registration.py inherits this environment.
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --------------------------------------------------------------------------------------------
# generating and loading N customers
# --------------------------------------------------------------------------------------------

_COLUMNS = (
    "id", "display_name", "legal_name", "credit_code", "address", "province", "city",
    "district", "division_code", "phone", "email", "size_band", "value_tier", "lifecycle",
    "source", "stage", "created_at", "updated_at", "external_ref", "notes",
    "needs_duplicate_review", "name_key", "name_region", "branch", "search_key", "pinyin_key",
    "email_domain", "name_parts",
)  # fmt: skip


def _keys_chunk(chunk: list[tuple[str, str, str]]) -> list[tuple[str, ...]]:
    """Identity columns exactly as a registration stores them (services._apply_identity)."""
    from crm.models import Customer
    from crm.services import _apply_identity

    out = []
    for name, code, mobile in chunk:
        customer = Customer(display_name=name, credit_code=code)
        _apply_identity(customer, ["+86" + mobile] if mobile else [])
        out.append(
            (
                name,
                code,
                mobile,
                customer.name_key,
                customer.name_region,
                customer.branch,
                customer.search_key,
                customer.pinyin_key,
                # COPY's text format reads a backslash as an escape.
                json.dumps(customer.name_parts, ensure_ascii=False).replace("\\", "\\\\"),
            )
        )
    return out


def generate_rows(n: int, seed: int = 42) -> Iterator[tuple[str, str, str]]:
    """(name, credit code or '', mobile or '') — distinct names, codes and mobiles."""
    gen = NameGenerator(seed)
    names: set[str] = set()
    codes: set[str] = set()
    mobiles: set[str] = set()
    produced = 0
    while produced < n:
        name, region = gen.name()
        if name in names:
            continue
        names.add(name)
        code = gen.credit_code(region) if gen.rng.random() < 0.7 else ""
        if code in codes:
            code = ""
        codes.add(code)
        mobile = gen.mobile() if gen.rng.random() < 0.6 else ""
        if mobile in mobiles:
            mobile = ""
        mobiles.add(mobile)
        produced += 1
        yield name, code, mobile


def _copy(cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def load_customers(n: int, *, workers: int, seed: int = 42, log: Callable[[str], None]) -> None:
    """Generate and COPY n customers (+ mobiles) into the (empty) bench database."""
    from django.db import connection

    started = time.perf_counter()
    raw = list(generate_rows(n, seed))
    chunks = [raw[i : i + 2000] for i in range(0, len(raw), 2000)]
    keyed: list[tuple[str, ...]] = []
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for i, part in enumerate(pool.imap(_keys_chunk, chunks), 1):
            keyed.extend(part)
            if i % 50 == 0:
                log(f"  keys: {len(keyed):,}/{n:,} ({time.perf_counter() - started:.0f} s)")
    keys_done = time.perf_counter()
    # the unique constraint customer_unique_name_key: keep the first of each (key, region, branch)
    seen: set[tuple[str, str, str]] = set()
    customers: list[tuple[Any, ...]] = []
    phones: list[tuple[Any, ...]] = []
    now = "2026-01-01 00:00:00+08"
    for name, code, mobile, name_key, region, branch, search_key, pinyin_key, parts in keyed:
        triple = (name_key, region, branch)
        if name_key and triple in seen:
            continue
        seen.add(triple)
        cid = len(customers) + 1
        customers.append(
            (cid, name, "", code, "", "", "", "", "", mobile, "", "", "C", "potential",
             "import", 0, now, now, f"L{cid:08d}", "", "f", name_key, region, branch,
             search_key, pinyin_key, "", parts)
        )  # fmt: skip
        if mobile:
            phones.append((len(phones) + 1, cid, "+86" + mobile, "t", "t"))
    with connection.cursor() as cursor:
        # Secondary indexes are rebuilt after COPY (much faster than maintained row by
        # row); those that back a constraint (primary key, unique together) stay.
        cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename IN ('crm_customer', 'crm_customerphone')
              AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.conindid = (
                    quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)
            """
        )
        indexes = cursor.fetchall()
        for index_name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{index_name}"')
        _copy(cursor, "crm_customer", _COLUMNS, customers)
        _copy(
            cursor,
            "crm_customerphone",
            ("id", "customer_id", "number", "is_mobile", "active"),
            phones,
        )
        copied = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _index_name, definition in indexes:
            cursor.execute(definition)
        for table in ("crm_customer", "crm_customerphone"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("ANALYZE crm_customer")
        cursor.execute("ANALYZE crm_customerphone")
    done = time.perf_counter()
    log(
        f"generated {len(customers):,} customers ({len(phones):,} mobiles): names+keys "
        f"{keys_done - started:.1f} s ({workers} processes), COPY {copied - keys_done:.1f} s, "
        f"indexes+ANALYZE {done - copied:.1f} s, total {done - started:.1f} s"
    )


# --------------------------------------------------------------------------------------------
# probes and timing
# --------------------------------------------------------------------------------------------


def _variant(rng: random.Random, name: str, gen: NameGenerator) -> str:
    """A way a rep might write a stored company's name again."""
    from crm.identity.normalize import parse_company_name

    parsed = parse_company_name(name)
    core = parsed.trade_name + parsed.industry
    kind = rng.randrange(5)
    if kind == 0:
        return core + "有限公司"  # region dropped
    if kind == 1 and parsed.region:
        return f"{core}({parsed.region})有限公司"  # region into brackets
    if kind == 2:
        return f"{parsed.region}{core}"  # legal form dropped
    if kind == 3 and len(parsed.trade_name) >= 3:
        i = rng.randrange(len(parsed.trade_name))
        typo = parsed.trade_name[:i] + rng.choice(gen.chars) + parsed.trade_name[i + 1 :]
        return f"{parsed.region}{typo}{parsed.industry}有限公司"
    return f"{parsed.region} {core} 股份有限公司"


def make_probes(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """(category, name) probes: stored-name variants, unrelated, latin, adversarial."""
    from crm.identity.normalize import parse_company_name
    from crm.models import Customer

    rng = random.Random(seed)
    gen = NameGenerator(seed + 1000)
    ids = Customer.objects.order_by("?").values_list("display_name", flat=True)[:count]
    stored = list(ids)
    probes: list[tuple[str, str]] = []
    for i in range(count):
        pick = rng.random()
        if pick < 0.4 and stored:
            probes.append(("variant", _variant(rng, stored[i % len(stored)], gen)))
        elif pick < 0.7:
            probes.append(("unrelated", gen.name()[0]))
        elif pick < 0.8 and stored:
            parsed = parse_company_name(stored[i % len(stored)])
            latin = parsed.trade_pinyin.capitalize()
            probes.append(("latin", f"{latin} Technology Co., Ltd."))
        else:
            probes.append(("adversarial", rng.choice(ADVERSARIAL)))
    return probes


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> str:
    return (
        f"n={len(values):5d} p50={percentile(values, 50):6.1f} p95={percentile(values, 95):6.1f} "
        f"p99={percentile(values, 99):6.1f} max={max(values, default=0):6.1f} ms"
    )


# The index each kind of fuzzy look-up is meant to be answered from (crm.duplicates).
PROBE_INDEXES = {
    ("similar", "search_key"): "customer_search_key_trgm",
    ("equal", "search_key"): "customer_search_key_eq",
    ("equal", "pinyin_key"): "customer_pinyin_key_eq",
    ("typo", "search_key"): "customer_typo_masks",
    ("spelling", "pinyin_key"): "customer_pinyin_deletions",
}


def explain_probe(probe: Any) -> tuple[float, bool]:
    """(execution ms, answered from its index) of the very SQL crm.duplicates runs for one
    fuzzy look-up, captured and run again under EXPLAIN ANALYZE."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm.duplicates import probe_ids

    with CaptureQueriesContext(connection) as queries:
        probe_ids(probe, exclude=set())
    sql = queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        row = cursor.fetchone()
    plan = row[0] if row else []
    if isinstance(plan, str):
        plan = json.loads(plan)
    index = PROBE_INDEXES.get((probe.kind, probe.column), "?")
    return float(plan[0]["Execution Time"]), index in json.dumps(plan)


def run_probes(probes: list[tuple[str, str]], log: Callable[[str], None]) -> list[float]:
    """Time the duplicate check for every probe; returns the latencies (ms) of all."""
    from django.db import reset_queries

    from crm.duplicates import candidate_ids, find_duplicates, fuzzy_probes, probe_keys
    from crm.identity.normalize import is_too_short_for_fuzzy

    # warm-up: connection, first-use imports, pinyin dictionaries
    for _category, name in probes[:20]:
        find_duplicates(probe_keys(name=name))
    total: dict[str, list[float]] = {}
    sql_only: list[float] = []
    hits = 0
    for category, name in probes:
        t0 = time.perf_counter()
        keys = probe_keys(name=name)
        matches = find_duplicates(keys)
        elapsed = (time.perf_counter() - t0) * 1000
        total.setdefault(category, []).append(elapsed)
        total.setdefault("all", []).append(elapsed)
        hits += bool(matches)
        t1 = time.perf_counter()
        candidate_ids(keys)
        sql_only.append((time.perf_counter() - t1) * 1000)
        reset_queries()
    log(f"find_duplicates(probe_keys(...)) over {len(probes):,} probes ({hits:,} with matches):")
    for category in ("all", "variant", "unrelated", "latin", "adversarial"):
        if category in total:
            log(f"  {category:12s} {summary(total[category])}")
    log(f"  candidate SQL only (candidate_ids, second call) {summary(sql_only)}")
    by_kind: dict[tuple[str, str], list[tuple[float, bool]]] = {}
    for _category, name in probes[:400]:
        for probe in fuzzy_probes(probe_keys(name=name)):
            by_kind.setdefault((probe.kind, probe.column), []).append(explain_probe(probe))
    for (kind, column), runs in sorted(by_kind.items()):
        times = [ms for ms, _used in runs]
        used = sum(used for _ms, used in runs)
        index = PROBE_INDEXES.get((kind, column), "?")
        log(
            f"  EXPLAIN ANALYZE {kind} look-up on {column}: {summary(times)}; "
            f"answered from {index} in {used}/{len(runs)} plans"
        )
    for word in ("科技", "北京科技有限公司", "Trading"):
        keys = probe_keys(name=word)
        text = keys.name.search_key
        skipped = not text or is_too_short_for_fuzzy(text)
        note = "skipped (too generic for fuzzy retrieval)" if skipped else ""
        if not skipped:
            ms, used = explain_probe(fuzzy_probes(keys)[0])
            note = f"{ms:.1f} ms, index={'yes' if used else 'no'}"
        log(f"  adversarial {word!r}: search_key={text!r} {note}")
    return total.get("all", [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--database", default="guishu_bench")
    parser.add_argument("--reuse", action="store_true", help="keep a bench database of size N")
    args = parser.parse_args()

    def log(text: str) -> None:
        print(text, flush=True)

    bench_database(args.database, recreate=False)
    setup_django()
    from crm.models import Customer

    existing = Customer.objects.count()
    if not (args.reuse and existing >= args.n * 0.95):
        # Always from a fresh database: a half-finished earlier run may have left it without
        # its indexes.
        from django.db import connection

        connection.close()
        bench_database(args.database, recreate=True)
        setup_django()
        log(f"generating {args.n:,} customers in database {args.database} ...")
        load_customers(args.n, workers=args.workers, log=log)
    else:
        log(f"reusing {existing:,} customers in database {args.database}")
    probes = make_probes(args.probes)
    latencies = run_probes(probes, log)
    check(
        f"duplicate check p95 at {Customer.objects.count():,} customers",
        percentile(latencies, 95),
        30,
        "ms",
    )
    sys.exit(exit_code())


if __name__ == "__main__":
    main()
