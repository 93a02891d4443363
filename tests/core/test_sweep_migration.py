"""The sweeps' rows moved to core without moving their tables: a database migrated
before the move, with rows in both, migrates on and core reads the same rows; their
content types follow, so admin's history and permissions still point at them."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.models import SweepFailure, SweepRun
from tests.factories import make_org

pytestmark = [pytest.mark.django_db(transaction=True)]

BEFORE = [("billing", "0011_alerts_own_app"), ("console", "0001_sweep_run"), ("core", None)]


@pytest.fixture
def executor():
    yield MigrationExecutor(connection)
    # Whatever happened, later tests find the database at its latest migrations.
    latest = MigrationExecutor(connection)
    latest.migrate(latest.loader.graph.leaf_nodes())


def test_rows_written_before_the_move_are_core_rows_after_it(executor):
    executor.migrate(BEFORE)
    old = MigrationExecutor(connection).loader.project_state(BEFORE[:2]).apps
    org = make_org(name="Acme", slug="acme")  # accounts stays at its latest migration
    old.get_model("billing", "SweepFailure").objects.create(
        organization_id=org.pk, sweep="rollup", target="2026-01-10", error="boom", final=True
    )
    old.get_model("console", "SweepRun").objects.create(
        task="usage.rollup_sweep", failures_in_a_row=2
    )
    assert set(
        ContentType.objects.filter(model__in=["sweepfailure", "sweeprun"]).values_list(
            "app_label", "model"
        )
    ) == {("billing", "sweepfailure"), ("console", "sweeprun")}

    after = MigrationExecutor(connection)
    after.migrate(after.loader.graph.leaf_nodes())

    failure = SweepFailure.objects.get()
    assert (failure.organization.slug, failure.sweep, failure.target, failure.final) == (
        "acme",
        "rollup",
        "2026-01-10",
        True,
    )
    assert SweepRun.objects.get().failures_in_a_row == 2
    ContentType.objects.clear_cache()
    assert set(
        ContentType.objects.filter(model__in=["sweepfailure", "sweeprun"]).values_list(
            "app_label", "model"
        )
    ) == {("core", "sweepfailure"), ("core", "sweeprun")}
