"""Every record, controller and ingest batch has a project from now on (0014 filled
the existing ones)."""

import django.db.models.deletion
from django.db import migrations, models

RECORDS = ["job", "query", "workersession", "matchingrun"]


def _field(**kwargs):
    return models.ForeignKey(
        on_delete=django.db.models.deletion.PROTECT, to="accounts.project", **kwargs
    )


class Migration(migrations.Migration):
    dependencies = [("usage", "0014_records_project_default")]

    operations = [
        migrations.AlterField(
            model_name="controller",
            name="project",
            field=_field(related_name="controllers"),
        ),
        migrations.AlterField(
            model_name="ingestbatch",
            name="project",
            field=_field(related_name="+"),
        ),
        *[
            migrations.AlterField(
                model_name=model,
                name="project",
                field=_field(related_name="+", db_index=False),
            )
            for model in RECORDS
        ],
    ]
