# SweepFailure moved to core (core/migrations/0001_sweeps.py): its table stays, so this
# only removes the model from billing's state.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_alerts_own_app"),
        ("core", "0001_sweeps"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SweepFailure")],
            database_operations=[],
        ),
    ]
