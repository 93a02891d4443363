"""The bucket tables leave room in each page for updated rows (PostgreSQL only).

Every ingested batch adds to rows of these tables that already exist (one upsert per
batch, rollups/services/aggregates.py), and the columns it changes are in no index. With
free space on the row's page PostgreSQL writes the new version there and touches none of
the table's indexes (a heap-only update); with full pages (the default fill factor, 100)
each update also inserts into every index. Measured in docs/benchmarks.md. Pages already
written keep their layout; new pages follow the setting. Storage only: the state does
not change.
"""

from django.db import migrations

TABLES = ("usage_jobbucket", "usage_querybucket", "usage_workerbucket", "usage_matchingbucket")
FILLFACTOR = 60


def _set(apps, schema_editor, *, value: int | None) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for table in TABLES:
        if value is None:
            schema_editor.execute(f"ALTER TABLE {quote(table)} RESET (fillfactor)")
        else:
            schema_editor.execute(f"ALTER TABLE {quote(table)} SET (fillfactor = {int(value)})")


def forwards(apps, schema_editor):
    _set(apps, schema_editor, value=FILLFACTOR)


def backwards(apps, schema_editor):
    _set(apps, schema_editor, value=None)


class Migration(migrations.Migration):
    dependencies = [("rollups", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
