"""A Celery worker killed with SIGKILL in the middle of alert work, then the work run
again on a fresh worker: the same notifications as a clean run and no duplicate email
(PostgreSQL and a real worker on Redis).

The rollup counterpart (a worker killed mid-rollup, rerun, same rows) is
tests/rollups/test_rollup_worker.py; it is not repeated here.

Where the worker stops is chosen with locks held by a second connection, so the kill
lands inside the task's transaction:
- evaluation: a trigger on alerts_alertnotification waits on an advisory lock the test
  holds, so the worker stops right after writing its first notification (uncommitted);
- delivery: the test holds the organization's row (FOR NO KEY UPDATE, which the
  notification's row lock taken with its organization conflicts with), so the email
  task waits before sending anything.
"""

import signal
import subprocess
import time
from datetime import timedelta
from email import message_from_bytes

import psycopg
import pytest
from django.utils import timezone

from accounts.services import organization_create
from alerts.models import AlertDelivery, AlertNotification
from alerts.services import alerts_evaluate
from alerts.tasks import alert_email_deliver, alerts_evaluate_org
from tests.factories import grant_credits, make_member, make_query
from tests.reliability.faults import fault_injected, fault_summary, timed  # noqa: F401
from tests.workers import celery_worker_start, current_database_url

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

ADVISORY_KEY = 874_211


@pytest.fixture
def mail_dir(tmp_path, monkeypatch, settings):
    """Workers write mail to files here (they are other processes)."""
    folder = tmp_path / "mail"
    folder.mkdir()
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    monkeypatch.setenv("EMAIL_FILE_PATH", str(folder))
    settings.ALERT_EVALUATE_DEBOUNCE_SECONDS = 1
    return folder


def _mail(folder) -> list:
    return [
        message_from_bytes(chunk.strip() + b"\n")
        for path in sorted(folder.iterdir())
        for chunk in path.read_bytes().split(b"-" * 79)
        if chunk.strip()
    ]


def _wait_for(predicate, seconds: float = 45) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.1)


def _backends(dsn: str, *, query_start: str, waiting: bool) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND starts_with(query, %s) AND state = 'active' "
            "AND (NOT %s OR wait_event_type = 'Lock')",
            [query_start, waiting],
        ).fetchone()[0]


def _kill(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    fault_injected("celery worker SIGKILL")


def _crossing_org():
    """An organization past 80% of its monthly tokens and below 10 credits: two of its
    default rules (tokens 80%, balance 10) hold; the third (tokens 100%) does not."""
    org = organization_create(name="Acme", tier="free", owner_email="ana@example.com").organization
    make_member(org=org, role="admin")
    grant_credits(org=org, amount="5")
    make_query(
        org=org,
        occurred_at=timezone.now() - timedelta(minutes=5),
        input_tokens=80_000,
        output_tokens=4_000,
    )  # 84,000 of the free tier's 100,000
    return org


def _assert_once_each(org, folder) -> None:
    """Two notifications, each mailed exactly once, to the owner and the admin."""
    notifications = AlertNotification.objects.filter(organization=org)
    sent = AlertDelivery.objects.filter(
        notification__organization=org, channel="email", status="sent"
    )
    _wait_for(lambda: sent.count() == 2 and len(_mail(folder)) == 2)
    assert sorted((n.kind, n.figures["threshold"]) for n in notifications) == [
        ("balance", "10"),
        ("tokens", "80"),
    ]
    assert sorted(sent.values_list("notification_id", flat=True)) == sorted(
        notifications.values_list("pk", flat=True)
    )
    subjects = sorted(m["Subject"] for m in _mail(folder))
    assert subjects == [
        "[Usage Console] Acme: credit balance below 10",
        "[Usage Console] Acme: monthly tokens reached 80% of the allocation",
    ]


def test_a_worker_killed_mid_evaluation_then_rerun_mails_each_crossing_once(request, mail_dir):
    from console.celery import app

    worker = request.getfixturevalue("celery_worker_process")
    org = _crossing_org()
    dsn = current_database_url()
    insert = 'INSERT INTO "alerts_alertnotification"'
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            "CREATE OR REPLACE FUNCTION reliability_hold() RETURNS trigger AS $$ BEGIN "
            f"PERFORM pg_advisory_xact_lock({ADVISORY_KEY}); RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        admin.execute(
            "CREATE TRIGGER reliability_hold AFTER INSERT ON alerts_alertnotification "
            "FOR EACH ROW EXECUTE FUNCTION reliability_hold()"
        )
    holder = psycopg.connect(dsn, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
        alerts_evaluate_org.delay(org.pk)
        # The worker has locked the rules, computed the figures and written its first
        # notification; its trigger now waits for our advisory lock.
        _wait_for(lambda: _backends(dsn, query_start=insert, waiting=True) == 1)
        _kill(worker)
        holder.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
        # The orphaned backend finds its client gone and rolls back.
        _wait_for(lambda: _backends(dsn, query_start=insert, waiting=False) == 0)
    finally:
        holder.close()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("DROP TRIGGER IF EXISTS reliability_hold ON alerts_alertnotification")
            admin.execute("DROP FUNCTION IF EXISTS reliability_hold()")
    assert not AlertNotification.objects.filter(organization=org).exists()
    assert not AlertDelivery.objects.filter(notification__organization=org).exists()
    assert _mail(mail_dir) == []

    fresh = celery_worker_start(app.conf.task_default_queue)
    try:
        with timed("alert evaluation rerun after SIGKILL, until both mailed"):
            alerts_evaluate_org.delay(org.pk).get(timeout=60)
            _assert_once_each(org, mail_dir)
        # Evaluating again (the beat would, every five minutes): nothing new, no mail.
        assert alerts_evaluate_org.delay(org.pk).get(timeout=60) == 0
        time.sleep(1)
        _assert_once_each(org, mail_dir)
    finally:
        fresh.send_signal(signal.SIGTERM)
        fresh.wait(timeout=15)


def test_a_worker_killed_while_delivering_an_alert_email_then_rerun_mails_once(request, mail_dir):
    from console.celery import app

    worker = request.getfixturevalue("celery_worker_process")
    org = _crossing_org()
    dsn = current_database_url()
    select = 'SELECT "alerts_alertnotification"'
    blocker = psycopg.connect(dsn)
    try:
        blocker.execute(
            "SELECT 1 FROM accounts_organization WHERE id = %s FOR NO KEY UPDATE", [org.pk]
        )
        # Evaluated here; committing enqueues one email task per notification.
        fired = alerts_evaluate(org=org)
        assert len(fired) == 2
        _wait_for(lambda: _backends(dsn, query_start=select, waiting=True) == 1)
        _kill(worker)
    finally:
        blocker.rollback()
        blocker.close()
    _wait_for(lambda: _backends(dsn, query_start=select, waiting=False) == 0)
    assert not AlertDelivery.objects.filter(notification__organization=org).exists()
    assert _mail(mail_dir) == []

    fresh = celery_worker_start(app.conf.task_default_queue)
    try:
        # The killed task runs again (as its redelivery or a retry would), and once more
        # for good measure; the other task was still queued and runs as well.
        with timed("alert email rerun after SIGKILL, until both mailed"):
            for notification in fired:
                alert_email_deliver.delay(notification.pk)
            _assert_once_each(org, mail_dir)
        for notification in fired:
            assert alert_email_deliver.delay(notification.pk).get(timeout=60) is None
        _assert_once_each(org, mail_dir)
    finally:
        fresh.send_signal(signal.SIGTERM)
        fresh.wait(timeout=15)
