"""The active rule set's status reads "In force" (not an employee's "Active"), and the CRM
administrator group gets the permissions of the territory admin."""

from django.db import migrations, models

from crm.roles import sync_role_groups_migration


class Migration(migrations.Migration):
    dependencies = [
        ("ownership", "0005_territories_and_rule_sets"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ruleset",
            name="status",
            field=models.CharField(
                choices=[("draft", "Draft"), ("active", "In force"), ("retired", "Retired")],
                default="draft",
                max_length=8,
                verbose_name="status",
            ),
        ),
        migrations.RunPython(sync_role_groups_migration, migrations.RunPython.noop),
    ]
