"""Alert dismissals and deliveries carry their notification's organization, and every
alert unique key includes it (docs/scaling.md: tenant tables are sharded by it)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_organization(apps, schema_editor):
    notification = apps.get_model("billing", "AlertNotification")
    of_notification = Subquery(
        notification.objects.filter(pk=OuterRef("notification_id")).values("organization_id")[:1]
    )
    for name in ("AlertDismissal", "AlertDelivery"):
        apps.get_model("billing", name).objects.update(organization_id=of_notification)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_session_token_idempotency"),
        ("billing", "0006_reconciliation_issue"),
    ]

    operations = [
        migrations.AddField(
            model_name="alertdelivery",
            name="organization",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.organization",
            ),
        ),
        migrations.AddField(
            model_name="alertdismissal",
            name="organization",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.organization",
            ),
        ),
        migrations.RunPython(copy_organization, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="alertdelivery",
            name="organization",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.organization",
            ),
        ),
        migrations.AlterField(
            model_name="alertdismissal",
            name="organization",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.organization",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="alertdismissal",
            name="alert_dismissal_once",
        ),
        migrations.AddConstraint(
            model_name="alertdismissal",
            constraint=models.UniqueConstraint(
                fields=("organization", "notification", "user"), name="alert_dismissal_once"
            ),
        ),
        migrations.RemoveConstraint(
            model_name="alertnotification",
            name="alert_one_open_crossing",
        ),
        migrations.AddConstraint(
            model_name="alertnotification",
            constraint=models.UniqueConstraint(
                condition=models.Q(("cleared_at__isnull", True)),
                fields=("organization", "rule", "subject"),
                name="alert_one_open_crossing",
            ),
        ),
    ]
