"""A poisoned tenant, with a real Celery worker on Redis against PostgreSQL: one
organization whose rollup, hour rollup, alert evaluation and reconciliation always raise
(patched in the worker's process: tests/poisoned_worker.py) and three healthy ones. The
sweeps enqueue one task per organization; the healthy three are processed on time, the
poisoned one is recorded (SweepFailure) and its retry scheduled with backoff."""

import os
import signal
import subprocess
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.models import AlertNotification
from alerts.services import alert_defaults_create
from alerts.tasks import alerts_evaluate_due
from billing.models import CreditAccount, ReconciliationIssue
from billing.tasks import reconcile_nightly
from core.models import SweepFailure
from rollups.models import RollupHour, RollupState
from rollups.tasks import rollup_hours_sweep, rollup_sweep
from tests.factories import grant_credits, make_member, make_org, make_query
from tests.workers import celery_worker_start

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]


def wait_for(condition, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def poisoned_worker(settings):
    """Four organizations (the first poisoned) and a worker that knows which."""
    from django.db import connection

    from console.celery import app

    if not os.environ.get("REDIS_URL") or connection.vendor != "postgresql":
        pytest.skip("a real Celery worker needs REDIS_URL and PostgreSQL (DATABASE_URL)")
    orgs = [make_org(name=f"Tenant {n}") for n in range(4)]
    for org in orgs:
        make_member(org=org)
        make_query(org=org, occurred_at=timezone.now() - timedelta(days=1))
        alert_defaults_create(org=org)  # low balance: they have none, so it fires
        grant_credits(org=org, amount="5")
        CreditAccount.objects.filter(organization=org).update(balance=Decimal("1"))
    queue = f"test-poison-{os.getpid()}-{time.monotonic_ns()}"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    proc = celery_worker_start(
        queue, app="tests.poisoned_worker", env={"TEST_POISONED_ORG": str(orgs[0].pk)}
    )
    try:
        deadline = time.monotonic() + 30
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("the Celery worker did not start within 30 s")
        yield orgs[0], orgs[1:]
    finally:
        app.conf.task_always_eager = True
        app.conf.task_default_queue = "celery"
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_healthy_tenants_are_processed_on_time_past_a_poisoned_one(poisoned_worker):
    bad, healthy = poisoned_worker
    started = time.monotonic()
    rollup_sweep.delay()
    rollup_hours_sweep.delay()
    alerts_evaluate_due.delay()
    reconcile_nightly.delay()

    def healthy_done() -> bool:
        return all(
            RollupState.objects.filter(organization=org, dirty=False).exists()
            and RollupHour.objects.filter(organization=org, dirty=False).exists()
            and AlertNotification.objects.filter(organization=org).exists()
            and ReconciliationIssue.objects.filter(organization=org, kind="balance").exists()
            for org in healthy
        )

    assert wait_for(healthy_done, 90), "the healthy organizations were not all processed"
    assert time.monotonic() - started < 90
    sweeps = {"rollup", "rollup_hours", "alerts", "reconcile"}
    assert wait_for(
        lambda: (
            sweeps
            <= set(SweepFailure.objects.filter(organization=bad).values_list("sweep", flat=True))
        )
    )
    # Recorded as a first attempt with retries to come (backoff: a minute first).
    first = SweepFailure.objects.filter(organization=bad, sweep="rollup").earliest("failed_at")
    assert first.attempt == 1 and not first.final
    assert "Poisoned" in first.error
    assert not SweepFailure.objects.exclude(organization=bad).exists()
    assert not RollupState.objects.filter(organization=bad, dirty=False).exists()
    assert not AlertNotification.objects.filter(organization=bad).exists()
