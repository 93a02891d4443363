"""The price list the console ships with: the reference's models and prices."""

from decimal import Decimal

from django.db import migrations

# Credits per million tokens, input and output alike (reference/token-usage-tracking).
MODELS = [
    ("llama-3.1-8b", "0.10", "0.60"),
    ("llama-3.1-70b", "0.90", "2.40"),
    ("e5-large-v2", "0.01", "0.20"),
    ("phi-3-mini", "0.05", "0.30"),
]


def forwards(apps, schema_editor):
    PriceModel = apps.get_model("billing", "PriceModel")
    WorkerType = apps.get_model("billing", "WorkerType")
    CoreHourRate = apps.get_model("billing", "CoreHourRate")
    for name, per_million, worker_hour in MODELS:
        PriceModel.objects.update_or_create(
            name=name,
            defaults={
                "input_price_per_million": Decimal(per_million),
                "output_price_per_million": Decimal(per_million),
                "worker_hour_rate": Decimal(worker_hour),
            },
        )
    WorkerType.objects.update_or_create(
        name="standard", defaults={"hourly_rate": Decimal("0.50"), "cores": 4, "is_default": True}
    )
    CoreHourRate.objects.update_or_create(compute="managed", defaults={"rate": Decimal("0.12")})
    # BYOC: the customer brings the hardware; the platform bills a lower rate.
    CoreHourRate.objects.update_or_create(compute="controller", defaults={"rate": Decimal("0.03")})


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
