"""Equality and one-edit look-up indexes for the duplicate check at a million customers.

The SQL functions mirror crm.identity.lookup_keys (tests compare both on random inputs).
They are PL/pgSQL with a high COST on purpose: an inlined SQL function looks cheap to the
planner, which then prefers filtering the whole table under a LIMIT over the GIN index
(seconds instead of a millisecond). Their loops use only simple expressions, which PL/pgSQL
evaluates without starting a query: every customer insert runs both (a sub-select per call
made the import's writes three times slower). A key may repeat in the array (aab); the
GIN index keeps each once."""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
from django.db import migrations, models

FUNCTIONS = """
CREATE OR REPLACE FUNCTION crm_deletion_variants(key text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
DECLARE
    n integer := char_length(key);
    result text[] := ARRAY[key];
BEGIN
    IF n < 5 THEN
        RETURN '{}'::text[];
    END IF;
    FOR i IN 1..n LOOP
        result := result || (left(key, i - 1) || substr(key, i + 1));
    END LOOP;
    RETURN result;
END
$$;

CREATE OR REPLACE FUNCTION crm_typo_masks(trade text, name_key text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
DECLARE
    n integer := char_length(trade);
    industry text;
    result text[] := '{}'::text[];
BEGIN
    IF n NOT BETWEEN 2 AND 4 OR char_length(name_key) <= n OR left(name_key, n) <> trade THEN
        RETURN result;
    END IF;
    industry := substr(name_key, n + 1);
    FOR i IN 1..n LOOP
        result := result || (left(trade, i - 1) || '_' || substr(trade, i + 1) || '|' || industry);
    END LOOP;
    RETURN result;
END
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS crm_deletion_variants(text);
DROP FUNCTION IF EXISTS crm_typo_masks(text, text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0009_funnel_snapshots"),
    ]

    operations = [
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["search_key"], name="customer_search_key_eq"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["pinyin_key"], name="customer_pinyin_key_eq"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=django.contrib.postgres.indexes.GinIndex(
                models.Func(
                    models.F("search_key"),
                    models.F("name_key"),
                    function="crm_typo_masks",
                    output_field=django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField()
                    ),
                ),
                condition=models.Q(merged_into__isnull=True),
                name="customer_typo_masks",
            ),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=django.contrib.postgres.indexes.GinIndex(
                models.Func(
                    models.F("pinyin_key"),
                    function="crm_deletion_variants",
                    output_field=django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField()
                    ),
                ),
                condition=models.Q(merged_into__isnull=True),
                name="customer_pinyin_deletions",
            ),
        ),
    ]
