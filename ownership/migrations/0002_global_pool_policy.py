"""The global default pool policy always exists (teams may override it)."""

from typing import Any

from django.db import migrations


def create_global_policy(apps: Any, schema_editor: Any) -> None:
    pool_policy = apps.get_model("ownership", "PoolPolicy")
    if not pool_policy.objects.filter(team__isnull=True).exists():
        pool_policy.objects.create(team=None)


class Migration(migrations.Migration):
    dependencies = [("ownership", "0001_ownership_ledger_and_pool_policies")]

    operations = [migrations.RunPython(create_global_policy, migrations.RunPython.noop)]
