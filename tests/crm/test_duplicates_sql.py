"""The duplicate check's SQL on PostgreSQL: pg_trgm sees Chinese characters, and the fuzzy
candidate query is answered from the trigram index, chosen by the planner on its own."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.duplicates import (
    MAX_CANDIDATES,
    candidate_ids,
    find_duplicates,
    fuzzy_probes,
    probe_ids,
    probe_keys,
)
from crm.identity.lookup_keys import deletion_variants, typo_masks
from crm.identity.matcher import IdentityKeys
from crm.importer import insert_instances
from crm.models import Customer, CustomerPhone
from crm.services import _apply_identity
from tests.factories import credit_code_for

pytestmark = pytest.mark.django_db

CHARS = (
    "华兴达博创新鑫泰丰源盛利恒瑞安康宏远通宇嘉和信德天正明辉永金隆海星成光联顺发中智凯汇"
    "广誉腾飞亿东方佳合美科伟豪尚锐晟昊晨阳益福运昌祥富荣乐欣悦骏驰迅捷卓越诚立邦航峰锦"
    "绣诺雅睿思维格致图景润泽蓝宝龙凤麒麟鹏程万九州四环球纪时代升旭日红银河长城山黄江南"
)
INDUSTRIES = ["科技", "贸易", "物流", "软件", "电子", "实业", "医药", "文化传媒", "机械", "食品"]
REGIONS = ["北京", "上海", "深圳", "广州", "杭州", "苏州", "南京", "成都", "武汉", "西安", ""]


def load_customers(count: int) -> None:
    """Customers with realistic names and their real identity keys, inserted in bulk."""
    rng = random.Random(5)
    names: set[str] = set()
    keys: set[tuple[str, str, str]] = set()
    batch: list[Customer] = []
    while len(names) < count:
        trade = "".join(rng.choices(CHARS, k=rng.choice((2, 3, 3, 4))))
        name = f"{rng.choice(REGIONS)}{trade}{rng.choice(INDUSTRIES)}有限公司"
        if name in names:
            continue
        customer = Customer(display_name=name)
        _apply_identity(customer, [])
        triple = (customer.name_key, customer.name_region, customer.branch)
        if triple in keys:
            continue
        names.add(name)
        keys.add(triple)
        batch.append(customer)
    for start in range(0, len(batch), 1000):
        insert_instances(batch[start : start + 1000])
    with connection.cursor() as cursor:
        # Fresh statistics, as autoanalyze keeps them.
        cursor.execute("ANALYZE crm_customer")


def test_pg_trgm_sees_chinese_characters() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT show_trgm('你好')")
        (grams,) = cursor.fetchone()
    assert grams, "pg_trgm ignores Chinese: the database needs a UTF-8 LC_CTYPE"


def _without_set_limit(sql: str) -> str:
    """The candidate statement alone, as EXPLAIN takes it: the duplicate check sends the
    trigram threshold in the same round trip (`SELECT set_limit(…); …`), and runs the union
    as a prepared statement (`[PREPARE g_… AS …; ]EXECUTE g_…(…) /* its text */`), whose
    plan `EXPLAIN EXECUTE` shows as it runs now (planned per run or the generic plan)."""
    if "EXECUTE g_" in sql:
        call = sql[sql.rindex("EXECUTE g_") :]
        return call.split(" /* ", 1)[0]
    if sql.startswith("SELECT set_limit("):
        return sql.split("; ", 1)[1]
    return sql


def _steady(check: Callable[[], object]) -> None:
    """Run a check often enough that PostgreSQL has settled on the plan of its prepared
    statements (planned per run for five runs, then maybe one generic plan)."""
    for _ in range(8):
        check()


def test_one_round_trip_finds_the_candidates() -> None:
    load_customers(200)
    with CaptureQueriesContext(connection) as queries:
        candidate_ids(probe_keys(name="上海华兴达科技有限公司", phones=["13800138000"]))
    assert len(queries) == 1
    (sql,) = [q["sql"] for q in queries]
    for look_up in (
        "crm_customerphone",
        "name_key = ANY",
        "similarity(search_key",
        "crm_typo_masks",
    ):
        assert look_up in sql


@pytest.mark.slow
def test_fuzzy_candidates_come_from_the_trigram_index() -> None:
    load_customers(5000)
    _steady(lambda: find_duplicates(probe_keys(name="上海华兴达科技有限公司")))
    with CaptureQueriesContext(connection) as queries:
        find_duplicates(probe_keys(name="上海华兴达科技有限公司"))
    fuzzy = [q["sql"] for q in queries if "similarity(search_key" in q["sql"]]
    assert len(fuzzy) == 1
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone()[0] == "on"  # the planner chooses freely
        cursor.execute("SELECT set_limit(0.2)")
        cursor.execute("EXPLAIN (FORMAT JSON) " + _without_set_limit(fuzzy[0]))
        plan = cursor.fetchone()[0]
    text = plan if isinstance(plan, str) else json.dumps(plan)
    assert "customer_search_key_trgm" in text, text


# Lower-case letters for pinyin, Chinese trade-name characters, and the odd character that
# SQL treats specially (quote, backslash, underscore, percent).
_LOOKUP_TEXT = st.text(alphabet=st.sampled_from([*"abcdehinouzg", *CHARS[:20], *"'\\_%"]))


@settings(max_examples=200, deadline=None)
@given(key=_LOOKUP_TEXT)
def test_deletion_keys_agree_with_their_sql_function(key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT crm_deletion_variants(%s)", [key])
        (stored,) = cursor.fetchone()
    assert sorted(set(stored)) == deletion_variants(key)


@settings(max_examples=200, deadline=None)
@given(trade=_LOOKUP_TEXT, industry=st.sampled_from(["", *INDUSTRIES]))
def test_typo_masks_agree_with_their_sql_function(trade: str, industry: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT crm_typo_masks(%s, %s)", [trade, trade + industry])
        (stored,) = cursor.fetchone()
    assert sorted(stored) == sorted(typo_masks(trade, industry))


def test_one_slip_keys_find_every_one_edit_neighbour() -> None:
    rng = random.Random(11)
    for _ in range(500):
        key = "".join(rng.choices("abcdeghijklmnoprstuwxyz", k=rng.randint(5, 14)))
        i = rng.randrange(len(key))
        edits = [
            key[:i] + rng.choice("aeiou") + key[i + 1 :],  # substitution
            key[:i] + rng.choice("aeiou") + key[i:],  # insertion
            key[:i] + key[i + 1 :],  # deletion
            key[:i] + key[i + 1 : i + 2] + key[i : i + 1] + key[i + 2 :],  # swap of neighbours
        ]
        for edited in edits:
            if len(edited) >= 5:
                assert set(deletion_variants(key)) & set(deletion_variants(edited)), edited


@pytest.mark.slow
def test_latin_and_typo_look_ups_are_answered_from_their_indexes() -> None:
    stored = Customer(display_name="昊嘉新材料有限公司")
    _apply_identity(stored, [])
    stored.save()
    load_customers(5000)
    _steady(lambda: find_duplicates(probe_keys(name="Haojai New Material Co., Ltd.")))
    _steady(lambda: find_duplicates(probe_keys(name="上海华兴达科技有限公司")))
    with CaptureQueriesContext(connection) as queries:
        found = find_duplicates(probe_keys(name="Haojai New Material Co., Ltd."))
    assert [m.customer.display_name for m in found] == ["昊嘉新材料有限公司"]
    with CaptureQueriesContext(connection) as typo_queries:
        find_duplicates(probe_keys(name="上海华兴达科技有限公司"))
    lookups = {
        "customer_pinyin_deletions": [
            q["sql"] for q in queries if "crm_deletion_variants" in q["sql"]
        ],
        "customer_typo_masks": [q["sql"] for q in typo_queries if "crm_typo_masks" in q["sql"]],
    }
    with connection.cursor() as cursor:
        for index, sqls in lookups.items():
            assert len(sqls) == 1, index
            cursor.execute("EXPLAIN (FORMAT JSON) " + _without_set_limit(sqls[0]))
            plan = cursor.fetchone()[0]
            text = plan if isinstance(plan, str) else json.dumps(plan)
            assert index in text, text


def _stored(*names: str) -> None:
    for name in names:
        customer = Customer(display_name=name)
        _apply_identity(customer, [])
        customer.save()


def test_four_character_names_fetch_only_rows_sharing_two_trigrams() -> None:
    """At 0.2 a four-character trade name would fetch (and reject) every name that starts with
    its first character; its neighbours one edit away are found all the same."""
    trade = "利耕畅金"
    neighbours = [
        "翔耕畅金",  # substitutions, at each position
        "利翔畅金",
        "利耕翔金",
        "利耕畅翔",
        "利耕金",  # a deletion
        "利耕畅翔金",  # an insertion
        "新利耕畅金",  # one character more in front
    ]
    triples = zip(CHARS[:40], CHARS[40:80], CHARS[80:120], strict=True)
    strangers = [f"利{a}{b}{c}" for a, b, c in triples]
    # Another industry than the probe's, so only the trigram look-up can find them.
    _stored(*(f"{name}机械有限公司" for name in neighbours + strangers))
    keys = probe_keys(name=f"{trade}食品有限公司")
    (similar,) = [probe for probe in fuzzy_probes(keys) if probe.kind == "similar"]

    found = {Customer.objects.get(pk=pk).search_key for pk in probe_ids(similar, exclude=set())}

    assert found == set(neighbours)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a few hundred rows: force the index
        cursor.execute("SELECT set_limit(%s)", [similar.threshold])
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM crm_customer WHERE search_key %% %s",
            [trade],
        )
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    heap_scan = plan[0]["Plan"]
    assert heap_scan["Plans"][0]["Index Name"] == "customer_search_key_trgm"
    # The strangers never leave the index (at 0.2 all 40 were fetched and then rejected).
    # The index scan's own row count would include entries of rolled-back test rows.
    assert heap_scan.get("Rows Removed by Index Recheck", 0) == 0
    assert heap_scan["Actual Rows"] == len(neighbours)


def _one_by_one(keys: IdentityKeys, exclude: set[int]) -> list[int]:
    """candidate_ids' answer built from one query per look-up, through the ORM."""
    active = Customer.objects.filter(merged_into__isnull=True).exclude(id__in=exclude)
    ids: list[int] = []
    if keys.credit_code:
        ids += active.filter(credit_code=keys.credit_code).values_list("id", flat=True)[:5]
    if keys.phones:
        ids += (
            CustomerPhone.objects.filter(number__in=keys.phones, active=True)
            .exclude(customer_id__in=exclude)
            .values_list("customer_id", flat=True)[:10]
        )
    name_keys = {keys.name.name_key, *(alt for alt, _region in keys.name.alternatives)} - {""}
    if name_keys:
        ids += active.filter(name_key__in=name_keys).values_list("id", flat=True)[:10]
    for probe in fuzzy_probes(keys):
        ids += probe_ids(probe, exclude=exclude)
    return list(dict.fromkeys(ids))[:MAX_CANDIDATES]


def test_the_one_statement_answers_as_one_query_per_look_up() -> None:
    load_customers(3000)
    rng = random.Random(3)
    stored = list(Customer.objects.order_by("id")[:400])
    for index, customer in enumerate(stored[:40]):
        CustomerPhone.objects.create(customer=customer, number=f"+86138{index:08d}", is_mobile=True)
    for index, customer in enumerate(stored[20:60]):
        Customer.objects.filter(pk=customer.pk).update(credit_code=credit_code_for(index))
    for customer in rng.sample(stored, 120):
        name = customer.display_name
        i = rng.randrange(len(name))
        variant = name[:i] + rng.choice(CHARS) + name[i + 1 :]
        phone = f"+86138{rng.randrange(60):08d}" if rng.random() < 0.3 else ""
        code = credit_code_for(rng.randrange(50)) if rng.random() < 0.3 else ""
        keys = probe_keys(
            name=rng.choice([name, variant]), credit_code=code, phones=[phone] if phone else []
        )
        exclude = {customer.pk} if rng.random() < 0.3 else set()
        assert candidate_ids(keys, exclude=exclude) == _one_by_one(keys, exclude), name
