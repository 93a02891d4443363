"""Existing rollup and bucket rows get their records' project, as usage 0014 gave it to
the records: a row of one API key is that key's project's, a row without a key the
organization's Default project's (every keyless record went there). One UPDATE each;
its own migration, as usage 0014 (0005 makes the column required)."""

from django.db import migrations

TABLES = [
    "usage_jobdaily",
    "usage_querydaily",
    "usage_workerdaily",
    "usage_matchingdaily",
    "usage_jobbucket",
    "usage_querybucket",
    "usage_workerbucket",
    "usage_matchingbucket",
]


def fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                f"UPDATE {table} SET project_id = ("  # noqa: S608 - fixed names above
                f"SELECT k.project_id FROM accounts_apikey AS k WHERE k.id = {table}.api_key_id) "
                "WHERE project_id IS NULL AND api_key_id IS NOT NULL"
            )
            cursor.execute(
                f"UPDATE {table} SET project_id = ("  # noqa: S608 - fixed names above
                "SELECT p.id FROM accounts_project AS p "
                f"WHERE p.organization_id = {table}.organization_id AND p.is_default = %s) "
                "WHERE project_id IS NULL",
                [True],
            )


class Migration(migrations.Migration):
    dependencies = [("rollups", "0003_rollups_project")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
