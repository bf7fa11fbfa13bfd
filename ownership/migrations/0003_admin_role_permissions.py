"""Give the CRM administrator group the ownership and registration permissions."""

from django.db import migrations

from crm.roles import sync_role_groups_migration


class Migration(migrations.Migration):
    dependencies = [
        ("ownership", "0002_global_pool_policy"),
        ("allocation", "0001_registrations"),
        ("crm", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(sync_role_groups_migration, migrations.RunPython.noop)]
