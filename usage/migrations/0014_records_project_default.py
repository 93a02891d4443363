"""Every existing record, controller and ingest batch gets a project as ingestion now
gives one: a record or batch sent with a key takes the key's project (a key may already
be in another project than the Default one), everything else its organization's
Default project (accounts 0011 made one for every organization). One UPDATE per table
(on a partitioned table the parent's UPDATE reaches every partition). Its own
migration: PostgreSQL refuses to alter a table with updates pending in the same
transaction, and 0015 makes the column required."""

from django.db import migrations

KEYED = [
    "usage_ingestbatch",
    "usage_job",
    "usage_query",
    "usage_workersession",
    "usage_matchingrun",
]
TABLES = ["usage_controller", *KEYED]


def to_default(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for table in KEYED:
            cursor.execute(
                f"UPDATE {table} SET project_id = ("  # noqa: S608 - fixed names above
                f"SELECT k.project_id FROM accounts_apikey AS k WHERE k.id = {table}.api_key_id) "
                "WHERE project_id IS NULL AND api_key_id IS NOT NULL"
            )
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
