"""spend 0002's data step: on a database with reservations made before budgets and
reservations had a project, each reservation takes the project of the key that made it
(keys in two projects, in two organizations), so the project's budgets hold it too."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

SPEND_BEFORE = ("spend", "0001_initial")
AFTER = [("spend", "0002_budget_and_reservation_project")]
AT = datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_existing_reservations_take_their_keys_project():
    executor = MigrationExecutor(connection)
    # Keys have projects already (accounts as today): only spend steps back.
    before = [SPEND_BEFORE, *executor.loader.graph.leaf_nodes("accounts")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Organization = old.get_model("accounts", "Organization")
    Project = old.get_model("accounts", "Project")
    APIKey = old.get_model("accounts", "APIKey")
    Reservation = old.get_model("spend", "Reservation")
    model = old.get_model("billing", "PriceModel").objects.get(name="llama-3.1-8b")
    expected: dict[str, int] = {}
    for n in range(2):
        org = Organization.objects.create(name=f"R{n}", slug=f"r-{n}")
        default = Project.objects.create(organization=org, name="Default", is_default=True)
        research = Project.objects.create(organization=org, name="Research")
        for project in (default, research):
            key = APIKey.objects.create(
                organization=org, project=project, name=project.name, prefix="sk-av",
                last_four="0000", secret_hash=f"{n}{project.pk:063}",
            )  # fmt: skip
            for status in ("held", "settled", "expired"):
                public_id = f"rsv_{n}_{project.name}_{status}"
                Reservation.objects.create(
                    organization=org, public_id=public_id, api_key=key, model=model,
                    credits=Decimal("0.25"), tokens=900, status=status, created_at=AT,
                    expires_at=AT + timedelta(minutes=10),
                )  # fmt: skip
                expected[public_id] = project.pk

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    rows = new.get_model("spend", "Reservation").objects.filter(public_id__in=list(expected))
    assert dict(rows.values_list("public_id", "project_id")) == expected
    assert len(set(expected.values())) == 4  # two projects in each of two organizations

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to today's schema
