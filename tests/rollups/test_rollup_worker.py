"""A rollup task whose Celery worker is killed mid-run (SIGKILL), then run again, leaves
the same rows a clean run does (PostgreSQL and a real worker on Redis)."""

import signal
import time
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from rollups.models import RollupState
from rollups.services.days import rollup_day
from rollups.services.dirty import rollup_days_mark_dirty
from rollups.tasks import rollup_day_run
from tests.factories import make_api_key, make_job, make_org, make_query, make_worker_session
from tests.workers import celery_worker_start, current_database_url

from .test_rollup import rows_of

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

DAY = date(2026, 1, 10)


def _wait_for(predicate, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.1)


def _backends(dsn: str, waiting_in: str) -> int:
    """Sessions of the test database waiting on a lock in a statement starting so."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND starts_with(query, %s)",
            [waiting_in],
        ).fetchone()[0]


def _seed(org):
    key = make_api_key(org=org)[0]
    at = datetime(2026, 1, 10, 9, tzinfo=UTC)
    for n in range(30):
        make_job(
            org=org,
            submitted_at=at + timedelta(minutes=n),
            api_key=key if n % 2 else None,
            core_hours=n,
            credits="0.5",
            status="failed" if n % 7 == 0 else "completed",
        )
        make_query(
            org=org,
            occurred_at=at + timedelta(minutes=n),
            endpoint=f"/e{n % 3}",
            member=f"m{n % 4}",
            input_tokens=n,
            output_tokens=2 * n,
        )
    make_worker_session(org=org, started_at=at - timedelta(days=1), ended_at=at)


def test_a_worker_killed_mid_rollup_then_rerun_leaves_the_rows_of_a_clean_run(
    celery_worker_process,
):
    from console.celery import app

    org = make_org()
    _seed(org)
    rollup_day(org=org, day=DAY)
    before = rows_of(org)
    # A late record: the day is recomputed by the task below.
    make_query(org=org, occurred_at=datetime(2026, 1, 10, 23, tzinfo=UTC), member="late")
    rollup_days_mark_dirty(org=org, days=[DAY])
    dsn = current_database_url()
    # Hold a row the recomputation deletes after it has begun (its job rows are deleted
    # and written again by then): the task stops there, inside its transaction.
    blocker = psycopg.connect(dsn)
    blocker.execute(
        "SELECT id FROM usage_querydaily WHERE organization_id = %s LIMIT 1 FOR UPDATE", [org.pk]
    )
    delete = 'DELETE FROM "usage_querydaily"'
    try:
        rollup_day_run.delay(org.pk, DAY.isoformat())
        _wait_for(lambda: _backends(dsn, delete) == 1)
        celery_worker_process.send_signal(signal.SIGKILL)
        celery_worker_process.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
    _wait_for(lambda: _backends(dsn, delete) == 0)
    # The killed run's transaction rolled back: the day keeps its rows and stays dirty.
    assert rows_of(org) == before
    assert RollupState.objects.get(organization=org, day=DAY).dirty

    # Run it again on a fresh worker.
    worker = celery_worker_start(app.conf.task_default_queue)
    try:
        rows = rollup_day_run.delay(org.pk, DAY.isoformat()).get(timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)
    after_rerun = rows_of(org)
    assert after_rerun != before
    assert rows == sum(len(r) for r in after_rerun.values())
    assert not RollupState.objects.get(organization=org, day=DAY).dirty

    # A clean run gives the very same rows (nothing to restate).
    assert rollup_day(org=org, day=DAY).restatements == 0
    assert rows_of(org) == after_rerun
