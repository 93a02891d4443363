"""Give every existing organization the default alert rules and a webhook secret.

New organizations get them from accounts.services.organization_create.
"""

import secrets
from decimal import Decimal

from django.db import migrations

DEFAULT_RULES = (("tokens", Decimal("80")), ("tokens", Decimal("100")), ("balance", Decimal("10")))


def forwards(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    AlertRule = apps.get_model("billing", "AlertRule")
    AlertSettings = apps.get_model("billing", "AlertSettings")
    for org_id in Organization.objects.values_list("pk", flat=True).iterator():
        AlertSettings.objects.get_or_create(
            organization_id=org_id,
            defaults={"webhook_secret": "whsec_" + secrets.token_urlsafe(32)},
        )
        AlertRule.objects.bulk_create(
            [AlertRule(organization_id=org_id, kind=k, threshold=t) for k, t in DEFAULT_RULES],
            ignore_conflicts=True,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_alerts"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
