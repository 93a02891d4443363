"""Bucket aggregate tables are updated in place many times a minute (every batch adds to
the current minute's rows): on PostgreSQL, leave half of each page free so those updates
stay on their page (HOT: no new index entry, dead versions pruned in place), and vacuum
them early. Measured with 1,000-record batches spread over 50 minutes, the upserts of a
batch went from 93 ms to 276 ms over 80 batches at the default fillfactor."""

from django.db import migrations

TABLES = ("usage_jobbucket", "usage_querybucket", "usage_workerbucket", "usage_matchingbucket")
STORAGE = (
    "fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02, "
    "autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02"
)


def storage(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} SET ({STORAGE})")


def storage_reset(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    names = ", ".join(part.split("=")[0].strip() for part in STORAGE.split(","))
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} RESET ({names})")


class Migration(migrations.Migration):
    dependencies = [("usage", "0005_bucket_aggregates")]

    operations = [migrations.RunPython(storage, storage_reset)]
