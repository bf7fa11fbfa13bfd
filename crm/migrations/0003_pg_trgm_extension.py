"""pg_trgm: trigram candidate retrieval for duplicate detection (查重)."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_role_groups")]

    operations = [TrigramExtension()]
