"""Every organization gets its Default project, and every existing API key lands in it."""

from django.db import migrations


def default_projects_create(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    Project = apps.get_model("accounts", "Project")
    APIKey = apps.get_model("accounts", "APIKey")
    for org_id, created_at in Organization.objects.values_list("pk", "created_at").iterator():
        project, _ = Project.objects.get_or_create(
            organization_id=org_id,
            is_default=True,
            defaults={"name": "Default", "created_at": created_at},
        )
        APIKey.objects.filter(organization_id=org_id, project__isnull=True).update(
            project=project
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0010_projects")]

    operations = [
        migrations.RunPython(default_projects_create, migrations.RunPython.noop, elidable=False),
    ]
