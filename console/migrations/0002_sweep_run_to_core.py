# SweepRun moved to core (core/migrations/0001_sweeps.py): its table stays, so this only
# removes the model from console's state.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_sweep_run"),
        ("core", "0001_sweeps"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SweepRun")],
            database_operations=[],
        ),
    ]
