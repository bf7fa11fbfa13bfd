"""Give the arbitration committee (and the administrators) their dispute permissions."""

from django.db import migrations

from crm.roles import sync_role_groups_migration


class Migration(migrations.Migration):
    dependencies = [
        ("disputes", "0001_disputes_votes_and_rulings"),
        ("crm", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(sync_role_groups_migration, migrations.RunPython.noop)]
