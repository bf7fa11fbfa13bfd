"""Create the four role groups with their permissions."""

from django.db import migrations

from crm.roles import sync_role_groups_migration


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_people_and_teams"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(sync_role_groups_migration, migrations.RunPython.noop)]
