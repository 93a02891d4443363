"""Usage records, controllers and ingest batches carry a project (docs/projects.md):
first the column, nullable. On PostgreSQL the four record tables are partitioned
(0010): a column added to the parent is added to every partition, and a foreign key
on the parent holds on each one."""

import django.db.models.deletion
from django.db import migrations, models

RECORDS = ["job", "query", "workersession", "matchingrun"]


def _field(**kwargs):
    return models.ForeignKey(
        null=True,
        on_delete=django.db.models.deletion.PROTECT,
        to="accounts.project",
        **kwargs,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_apikey_project_required"),
        ("usage", "0012_models_moved"),
    ]

    operations = [
        migrations.AddField(
            model_name="controller",
            name="project",
            field=_field(related_name="controllers"),
        ),
        migrations.AddField(
            model_name="ingestbatch",
            name="project",
            field=_field(related_name="+"),
        ),
        *[
            migrations.AddField(
                model_name=model,
                name="project",
                field=_field(related_name="+", db_index=False),
            )
            for model in RECORDS
        ],
    ]
