"""Territory resolution at scale: a whole rule set over N customers, and one registration.

    .venv/bin/python bench/territory.py [--n 1000000] [--territories 2000] [--probes 2000] [--reuse]

Creates its own database (``guishu_bench_territory`` on the server of DATABASE_URL; never
the dev data) and loads N customers with COPY, spread over every county-level division of
China, 20 industries, five sizes and four value tiers. Builds a rule set of about
`--territories` territories as an administrator would: provinces → cities → counties
(children inherit their parent's teams), industry carve-outs inside some provinces decided
by priority, and a national key-account territory (tier A) at priority 1. Then it times:

- the checks an activation makes (compiling, validation, overlap detection);
- the activation itself: every customer resolved and stored, set-based (target < 60 s for
  1,000,000 customers and 2,000 territories);
- resolving one registration being typed (address parsed, active rule set, resolution),
  `--probes` times (target p95 <= 5 ms);
and checks that the stored territories agree with one-by-one resolution on a sample.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from identity_latency import bench_database, percentile, setup_django, summary  # noqa: E402
from verdict import check, exit_code  # noqa: E402

SIZES = ["micro", "small", "medium", "large", "enterprise"]
TIERS = ["A", "B", "C", "D"]
TIER_WEIGHTS = [1, 3, 10, 6]


def log(text: str) -> None:
    print(text, flush=True)


def counties() -> list[tuple[str, str]]:
    """(code, full address prefix) of every county-level division."""
    from crm.identity.regions import _table

    table = _table().by_code
    out = []
    for code, division in table.items():
        if division.level != 3:
            continue
        province = table.get(code[:2])
        city = table.get(code[:4])
        prefix = "".join(d.name for d in (province, city) if d is not None and d is not division)
        out.append((code, prefix + division.name))
    out.sort()
    return out


def load_customers(n: int, industry_ids: list[int], seed: int = 42) -> None:
    from django.db import connection

    rng = random.Random(seed)
    places = counties()
    columns = [
        "display_name", "address", "division_code", "industry_id", "size_band", "value_tier",
        "lifecycle", "source", "stage", "created_at", "updated_at",
    ]  # fmt: skip
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT column_name, data_type FROM information_schema.columns
            WHERE table_name = 'crm_customer' AND is_nullable = 'NO' AND column_default IS NULL
              AND is_identity = 'NO'
            """
        )
        extra = {
            name: ("f" if kind == "boolean" else "0" if "int" in kind else "")
            for name, kind in cursor.fetchall()
            if name not in columns and name != "id"
        }
        names = columns + list(extra)
        done = 0
        while done < n:
            chunk = min(50_000, n - done)
            buffer = io.StringIO()
            for i in range(done, done + chunk):
                code, place = rng.choice(places)
                values = [
                    f"企业{i}",
                    f"{place}某路{i % 999}号",
                    code,
                    str(rng.choice(industry_ids)),
                    rng.choice(SIZES),
                    rng.choices(TIERS, TIER_WEIGHTS)[0],
                    "potential",
                    "other",
                    "0",
                    "2026-01-01 00:00:00+08",
                    "2026-01-01 00:00:00+08",
                    *extra.values(),
                ]
                buffer.write("\t".join(values) + "\n")
            buffer.seek(0)
            cursor.copy_expert(f"COPY crm_customer ({', '.join(names)}) FROM STDIN", buffer)
            done += chunk
        cursor.execute("ANALYZE crm_customer")
    log(f"loaded {n:,} customers in {time.perf_counter() - started:.1f} s")


def build_rule_set(target: int, industry_ids: list[int], seed: int = 7) -> Any:
    """~`target` territories: provinces, cities, counties; industry carve-outs; key accounts."""
    from crm.identity.regions import _table
    from crm.models import Team
    from ownership.models import RuleSet, Territory

    rng = random.Random(seed)
    table = _table().by_code
    provinces = sorted(c for c, d in table.items() if d.level == 1)
    cities = sorted(c for c, d in table.items() if d.level == 2)
    county_codes = sorted(c for c, d in table.items() if d.level == 3)
    teams = [Team.objects.get_or_create(name=f"大区{i + 1}")[0] for i in range(12)]
    key_team = Team.objects.get_or_create(name="全国大客户部")[0]
    rule_set = RuleSet.objects.create(name=f"bench {target}")
    through_teams = Territory.teams.through
    through_industries = Territory.industries.through
    made: dict[str, Territory] = {}
    team_links = []
    industry_links = []

    def add(name: str, code: str, parent: Territory | None, priority: int = 100) -> Territory:
        territory = Territory.objects.create(
            rule_set=rule_set, parent=parent, name=name, priority=priority, division_codes=[code]
        )
        made[code] = territory
        return territory

    for i, code in enumerate(provinces):
        territory = add(table[code].name, code, None)
        team_links.append(through_teams(territory_id=territory.pk, team_id=teams[i % 12].pk))
    for code in cities:
        if len(made) >= target - 30:
            break
        if code[:2] in made:
            add(table[code].name, code, made[code[:2]])
    rng.shuffle(county_codes)
    for code in county_codes:
        if len(made) >= target - 30:
            break
        parent = made.get(code[:4]) or made.get(code[:2])
        if parent is not None:
            add(table[code].name, code, parent)
    # Industry carve-outs: inside 20 provinces, two industries go to another region's team,
    # decided by priority over the geographic tree (a lower number).
    count = len(made)
    for i, code in enumerate(provinces[:29]):
        carve = Territory.objects.create(
            rule_set=rule_set,
            name=f"{table[code].name}重点行业",
            priority=10,
            division_codes=[code],
        )
        industry_links += [
            through_industries(territory_id=carve.pk, industry_id=industry_ids[i % 10]),
            through_industries(territory_id=carve.pk, industry_id=industry_ids[10 + i % 10]),
        ]
        team_links.append(through_teams(territory_id=carve.pk, team_id=teams[(i + 5) % 12].pk))
        count += 1
    key = Territory.objects.create(
        rule_set=rule_set, name="全国重点客户", priority=1, value_tiers=["A"]
    )
    team_links.append(through_teams(territory_id=key.pk, team_id=key_team.pk))
    count += 1
    through_teams.objects.bulk_create(team_links)
    through_industries.objects.bulk_create(industry_links)
    log(f"rule set: {count:,} territories")
    return rule_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--territories", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()

    bench_database("guishu_bench_territory", recreate=not args.reuse)
    setup_django()
    from django.db import connection

    from crm.models import Customer, Industry, User
    from ownership.models import CustomerTerritory, PoolPolicy, RuleSet, Territory
    from ownership.territories import selectors
    from ownership.territories import services as territories

    industry_ids = list(Industry.objects.order_by("pk").values_list("pk", flat=True))
    while len(industry_ids) < 20:
        number = len(industry_ids)
        made = Industry.objects.create(name=f"行业{number}", code=f"i{number}")
        industry_ids.append(made.pk)
    have = Customer.objects.count()
    if have != args.n:
        if have:
            raise SystemExit(f"database has {have:,} customers; run without --reuse")
        load_customers(args.n, industry_ids)
    # Start from no territories at all (a bench database only).
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE ownership_customerterritory, ownership_realignment, "
            "ownership_rulesetactivation, ownership_territory_teams, "
            "ownership_territory_industries"
        )
    PoolPolicy.objects.filter(territory__isnull=False).delete()
    Territory.objects.all().delete()
    RuleSet.objects.all().delete()
    admin, _created = User.objects.get_or_create(username="bench_admin", defaults={"role": "admin"})

    rule_set = build_rule_set(args.territories, industry_ids)
    started = time.perf_counter()
    compiled, problems, overlaps = territories.rule_set_check(rule_set)
    check_s = time.perf_counter() - started
    log(
        f"checks (compile, validate, overlaps) over {len(compiled.territories):,} territories: "
        f"{check_s:.2f} s; problems {len(problems)}, undecided overlaps {len(overlaps)}"
    )
    if problems or overlaps:
        for item in (problems + overlaps)[:5]:  # type: ignore[operator]
            log(f"  {item}")
        raise SystemExit("the bench rule set must be valid")

    started = time.perf_counter()
    activation = territories.rule_set_activate(actor=admin, rule_set=rule_set)
    activate_s = time.perf_counter() - started
    log(
        f"activation: {activation.customers_resolved:,} customers resolved and stored in "
        f"{activate_s:.1f} s (target < 60 s); {activation.customers_changed:,} changed"
    )

    # A re-alignment: a copy of the set activated over the first one, so every stored row
    # is rewritten (an update, not an insert).
    copy = territories.rule_set_copy(actor=admin, source=rule_set, name="bench copy")
    started = time.perf_counter()
    second = territories.rule_set_activate(actor=admin, rule_set=copy)
    again_s = time.perf_counter() - started
    log(
        f"second activation (every row rewritten): {second.customers_changed:,} changed in "
        f"{again_s:.1f} s"
    )
    rule_set, compiled = copy, selectors.compile_rule_set(copy)

    # Agreement: stored territories = resolving one by one, on a sample.
    sample = list(Customer.objects.order_by("?")[:2000])
    stored = dict(
        CustomerTerritory.objects.filter(customer__in=sample).values_list(
            "customer_id", "territory_id"
        )
    )
    disagree = sum(
        1
        for customer in sample
        if stored.get(customer.pk) != compiled.resolve(selectors.facts_of(customer)).territory_id
    )
    log(f"agreement on a sample of {len(sample):,}: {len(sample) - disagree:,} agree")

    rng = random.Random(3)
    places = counties()
    industries = list(Industry.objects.all())
    timings = []
    selectors.resolve(selectors.facts_of_form(address="北京市海淀区"))  # warm the cache
    for _ in range(args.probes):
        _code, place = rng.choice(places)
        started = time.perf_counter()
        result = selectors.resolve(
            selectors.facts_of_form(
                address=f"{place}某路1号",
                industry=rng.choice(industries),
                size_band=rng.choice(SIZES),
            )
        )
        timings.append((time.perf_counter() - started) * 1000)
        assert result is not None
    log(f"one registration resolved ({args.probes} probes): {summary(timings)} ms")
    p95 = percentile(timings, 95)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ownership_customerterritory")
        log(f"stored territories: {cursor.fetchone()[0]:,}")
    check(f"activation over {args.n:,} customers, 2,000 territories", activate_s, 60, "s")
    check("second activation (every row rewritten)", again_s, 60, "s")
    check("one registration resolved, p95", p95, 5, "ms")
    if disagree:
        raise SystemExit("stored territories disagree with one-by-one resolution")


if __name__ == "__main__":
    main()
    sys.exit(exit_code())
