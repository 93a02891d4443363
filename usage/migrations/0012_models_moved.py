"""The rollups' and spend controls' models now live in their own apps (rollups/ and
spend/, whose 0001 migrations take them over): drop them from usage's state. State only:
their tables keep their names and their rows (docs/architecture.md)."""

from django.db import migrations

MOVED = [
    # Spend controls; those pointing at Budget first.
    "overcap",
    "reservation",
    "keypause",
    "spendday",
    "spendhold",
    "ratelimitrefusal",
    "budget",
    # Rollups and aggregates.
    "jobdaily",
    "querydaily",
    "workerdaily",
    "matchingdaily",
    "restatement",
    "rolluphour",
    "rollupstate",
    "jobbucket",
    "querybucket",
    "workerbucket",
    "matchingbucket",
]


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0011_spend_keys_lead_with_organization"),
        ("rollups", "0001_initial"),
        ("spend", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name=name) for name in MOVED],
            database_operations=[],
        ),
    ]
