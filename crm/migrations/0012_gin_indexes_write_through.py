import django.contrib.postgres.fields
import django.contrib.postgres.indexes
from django.db import migrations, models

_INDEXES = ("customer_search_key_trgm", "customer_typo_masks", "customer_pinyin_deletions")


class Migration(migrations.Migration):
    """The duplicate check's GIN indexes write through (fastupdate off). The database only
    needs ALTER INDEX (no rebuild of a million rows); the state records the new options."""

    dependencies = [
        ("crm", "0011_drop_unused_pinyin_trigram_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    [f"ALTER INDEX {name} SET (fastupdate = off)" for name in _INDEXES],
                    [f"ALTER INDEX {name} RESET (fastupdate)" for name in _INDEXES],
                ),
            ],
            state_operations=[
                *(migrations.RemoveIndex(model_name="customer", name=name) for name in _INDEXES),
                migrations.AddIndex(
                    model_name="customer",
                    index=django.contrib.postgres.indexes.GinIndex(
                        django.contrib.postgres.indexes.OpClass(
                            models.F("search_key"), name="gin_trgm_ops"
                        ),
                        fastupdate=False,
                        name="customer_search_key_trgm",
                    ),
                ),
                migrations.AddIndex(
                    model_name="customer",
                    index=django.contrib.postgres.indexes.GinIndex(
                        models.Func(
                            models.F("search_key"),
                            models.F("name_key"),
                            function="crm_typo_masks",
                            output_field=django.contrib.postgres.fields.ArrayField(
                                base_field=models.TextField(), size=None
                            ),
                        ),
                        condition=models.Q(("merged_into__isnull", True)),
                        fastupdate=False,
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
                                base_field=models.TextField(), size=None
                            ),
                        ),
                        condition=models.Q(("merged_into__isnull", True)),
                        fastupdate=False,
                        name="customer_pinyin_deletions",
                    ),
                ),
            ],
        ),
    ]
