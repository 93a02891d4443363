"""Every existing record, controller and ingest batch goes to its organization's
Default project (accounts 0011 made one for every organization), as its keys did: one
UPDATE per table (on a partitioned table the parent's UPDATE reaches every partition).
Its own migration: PostgreSQL refuses to alter a table with updates pending in the same
transaction, and 0015 makes the column required."""

from django.db import migrations

TABLES = [
    "usage_controller",
    "usage_ingestbatch",
    "usage_job",
    "usage_query",
    "usage_workersession",
    "usage_matchingrun",
]


def to_default(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                f"UPDATE {table} SET project_id = ("  # noqa: S608 - fixed names above
                "SELECT p.id FROM accounts_project AS p "
                f"WHERE p.organization_id = {table}.organization_id AND p.is_default = %s) "
                "WHERE project_id IS NULL",
                [True],
            )


class Migration(migrations.Migration):
    dependencies = [("usage", "0013_records_project")]

    operations = [migrations.RunPython(to_default, migrations.RunPython.noop)]
