"""Rollup rows and bucket aggregates carry the project of their records
(docs/projects.md): first the column, nullable."""

import django.db.models.deletion
from django.db import migrations, models

TABLES = [
    "jobdaily",
    "querydaily",
    "workerdaily",
    "matchingdaily",
    "jobbucket",
    "querybucket",
    "workerbucket",
    "matchingbucket",
]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_apikey_project_required"),
        ("rollups", "0002_bucket_tables_fillfactor"),
        ("usage", "0015_records_project_required"),
    ]

    operations = [
        migrations.AddField(
            model_name=model,
            name="project",
            field=models.ForeignKey(
                null=True,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="accounts.project",
            ),
        )
        for model in TABLES
    ]
