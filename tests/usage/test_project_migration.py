"""The migration that gives usage a project: on a database with an organization's
records (in partitioned tables on PostgreSQL), controllers and batches, every row sent
with a key lands in the key's project, every other row in its organization's Default
project, and the column is required after."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("usage", "0012_models_moved"), ("accounts", "0012_apikey_project_required")]
AFTER = [("usage", "0015_records_project_required")]
AT = datetime(2026, 11, 20, 10, tzinfo=UTC)
TABLES = [
    "usage_controller",
    "usage_ingestbatch",
    "usage_job",
    "usage_query",
    "usage_workersession",
    "usage_matchingrun",
]


def _populate(apps, org) -> None:
    model = apps.get_model("billing", "PriceModel").objects.get(name="llama-3.1-8b")
    controller = apps.get_model("usage", "Controller").objects.create(
        organization=org,
        name="dgx",
        cores=8,
        memory_gb=8,
        token_hash="h" * 64,
        token_last_four="hhhh",
    )
    batch = apps.get_model("usage", "IngestBatch").objects.create(organization=org)
    common = {"organization": org, "batch": batch, "credits": Decimal("0.5")}
    apps.get_model("usage", "Job").objects.create(
        client_id="j",
        status="submitted",
        cores=1,
        controller=controller,
        submitted_at=AT,
        **common,
    )
    apps.get_model("usage", "Query").objects.create(
        client_id="q",
        model=model,
        occurred_at=AT,
        input_tokens=1,
        output_tokens=2,
        total_tokens=3,
        **common,
    )
    apps.get_model("usage", "WorkerSession").objects.create(
        client_id="w",
        model=model,
        started_at=AT,
        ended_at=AT,
        runtime_seconds=0,
        **common,
    )
    apps.get_model("usage", "MatchingRun").objects.create(
        client_id="m", task="IDR", num_records=5, started_at=AT, ended_at=AT,
        run_time_seconds=0, **common,
    )  # fmt: skip


def _projects(table: str, org_ids: list[int]) -> set[tuple[int, int | None]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT organization_id, project_id FROM {table} "  # noqa: S608
            "WHERE organization_id = ANY(%s)"
            if connection.vendor == "postgresql"
            else f"SELECT organization_id, project_id FROM {table} "  # noqa: S608
            f"WHERE organization_id IN ({', '.join(map(str, org_ids))})",
            [org_ids] if connection.vendor == "postgresql" else [],
        )
        return set(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_existing_usage_lands_in_each_organizations_default_project():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Organization = old.get_model("accounts", "Organization")
    Project = old.get_model("accounts", "Project")
    orgs = [Organization.objects.create(name=f"O{n}", slug=f"o-{n}") for n in range(2)]
    defaults = {
        org.pk: Project.objects.create(organization=org, name="Default", is_default=True).pk
        for org in orgs
    }
    keyed = {}
    for org in orgs:
        other = Project.objects.create(organization=org, name="Other")
        _populate(old, org)
        # A record sent (before the migration) with a key of another project is that
        # project's; everything without a key the Default's.
        key = old.get_model("accounts", "APIKey").objects.create(
            organization=org, project=other, name="k", prefix="sk-av", last_four="0000",
            secret_hash=f"{org.pk:064}",
        )  # fmt: skip
        query = old.get_model("usage", "Query").objects.get(organization=org)
        old.get_model("usage", "Query").objects.create(
            organization=org, api_key=key, client_id="q-keyed", model_id=query.model_id,
            occurred_at=AT, input_tokens=1, output_tokens=1, total_tokens=2,
        )  # fmt: skip
        keyed[org.pk] = other.pk

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    for table in TABLES:
        expected = set(defaults.items()) | (set(keyed.items()) if table == "usage_query" else set())
        assert _projects(table, list(defaults)) == expected, table
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE usage_query SET project_id = NULL")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to today's schema
