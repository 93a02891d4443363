# The sweeps' rows move here from billing (SweepFailure) and console (SweepRun): their
# tables stay where they are (db_table), so this only adds the models to Django's state;
# billing 0012 and console 0002 remove them from theirs. Existing content types follow
# the models, so admin's log and permissions keep pointing at them.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

MOVED = [("billing", "sweepfailure"), ("console", "sweeprun")]


def content_types_to_core(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for app_label, model in MOVED:
        if not ContentType.objects.filter(app_label="core", model=model).exists():
            ContentType.objects.filter(app_label=app_label, model=model).update(app_label="core")


def content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for app_label, model in MOVED:
        if not ContentType.objects.filter(app_label=app_label, model=model).exists():
            ContentType.objects.filter(app_label="core", model=model).update(app_label=app_label)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SweepRun",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("task", models.CharField(max_length=200, unique=True)),
                        ("last_started_at", models.DateTimeField(blank=True, null=True)),
                        ("last_succeeded_at", models.DateTimeField(blank=True, null=True)),
                        ("last_failed_at", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.CharField(blank=True, default="", max_length=500)),
                        ("failures_in_a_row", models.PositiveIntegerField(default=0)),
                    ],
                    options={
                        "db_table": "console_sweeprun",
                        "ordering": ["task"],
                    },
                ),
                migrations.CreateModel(
                    name="SweepFailure",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("sweep", models.CharField(max_length=40)),
                        ("target", models.CharField(blank=True, default="", max_length=200)),
                        ("error", models.CharField(max_length=500)),
                        ("attempt", models.PositiveSmallIntegerField(default=1)),
                        ("final", models.BooleanField(default=False)),
                        ("failed_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("organization", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="sweep_failures", to="accounts.organization")),
                    ],
                    options={
                        "db_table": "billing_sweepfailure",
                        "ordering": ["-failed_at", "-id"],
                        "indexes": [models.Index(fields=["organization", "-failed_at"], name="sweep_failure_org_time")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_core, content_types_back),
    ]
