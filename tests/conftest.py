import os
from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings

# The instant tests of usage run at unless their module sets its own NOW: record times
# are then never "in the future". A Friday.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# Shared seeded data, as fixtures any test may ask for.
pytest_plugins = ["tests.insights.explorer_seed"]


def pytest_collection_modifyitems(config, items):
    """Say why a test skips when the service it is about is not configured."""
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    # Browser tests last: they are the slowest, and a failure elsewhere shows sooner.
    items.sort(key=lambda item: "tests/e2e/" in str(item.fspath).replace(os.sep, "/"))
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL (CI does)"))
        if "celery_worker" in item.keywords and not os.environ.get("REDIS_URL"):
            item.add_marker(
                pytest.mark.skip(reason="needs Redis for a real Celery worker: set REDIS_URL")
            )


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings):
    """Fast password hashing; Celery eager in-process (the worker tests opt out)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture(autouse=True)
def _price_list(request):
    """The shipped price list (data migration), even after a transactional test's flush.

    A transactional test (live server, threads) ends by flushing every table, data
    migrations' rows included; without this, tests after it would find no models.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    import importlib

    from django.apps import apps

    from billing.models import PriceModel

    if not PriceModel.objects.exists():
        importlib.import_module("billing.migrations.0002_price_list").forwards(apps, None)


@pytest.fixture(scope="session", autouse=True)
def _run_cache_prefix():
    """A key prefix of this run's own, under the per-test one below: what a module-scoped
    fixture writes to Redis (a seeded demo's spend counters) never meets what an earlier
    run left there for an organization with the same id."""
    import uuid

    from django.conf import settings

    default = dict(settings.CACHES["default"])
    default["KEY_PREFIX"] = f"run-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {**settings.CACHES, "default": default}


@pytest.fixture(autouse=True)
def _isolated_cache(settings):
    """A cache no other test has touched: a fresh key prefix, never a flush (on Redis a
    flush would also empty the Celery broker's queues)."""
    import uuid

    default = dict(settings.CACHES["default"])
    default["KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {**settings.CACHES, "default": default}
    yield


@pytest.fixture
def celery_worker_process(settings, transactional_db):
    """A real Celery worker on Redis, in its own process, using the test database.

    For the few tests that are about Celery itself: tasks go through the broker
    (CELERY_TASK_ALWAYS_EAGER off) and run in the worker, which sees only committed rows.
    """
    import signal
    import subprocess
    import time

    from django.db import connection

    from console.celery import app
    from tests.workers import celery_worker_start

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url or connection.vendor != "postgresql":
        pytest.skip("a real Celery worker needs REDIS_URL and PostgreSQL (DATABASE_URL)")
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    proc = celery_worker_start(queue)
    try:
        deadline = time.monotonic() + 30
        while not app.control.ping(timeout=0.5, destination=None):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("the Celery worker did not start within 30 s")
        yield proc
    finally:
        app.conf.task_always_eager = True
        app.conf.task_default_queue = "celery"
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(autouse=True)
def _spend_counters_after_commit(request, monkeypatch):
    """Spend controls' counters move after a commit; a test case's transaction never
    commits, so there they move at once (transactional tests commit for real)."""
    from spend.api import common

    common.models_kept.clear()  # the price list as the last test left it, not as cached
    marker = request.node.get_closest_marker("django_db")
    if marker is None or marker.kwargs.get("transaction"):
        return
    from spend.services import counter_keys, spend_counters

    for module in (counter_keys, spend_counters):
        monkeypatch.setattr(module, "after_commit", lambda run: run())


@pytest.fixture
def frozen(request):
    """Time stands still at the test module's NOW (this file's NOW if it sets none); the
    traveller it yields moves it (`frozen.shift(...)`, `frozen.move_to(...)`)."""
    with time_machine.travel(getattr(request.module, "NOW", NOW), tick=False) as traveller:
        yield traveller
