"""Reconciliation: cached balances against the ledger, rollups against the raw records.

A clean organization reconciles with no issue; a tampered cached balance and each
tampered rollup table are reported (ERROR log, a ReconciliationIssue row, mail to the
operators) and left exactly as they were; `manage.py reconcile` prints a summary and
exits non-zero on a mismatch.
"""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization
from billing.models import CreditAccount, LedgerEntry, ReconciliationIssue
from billing.services.reconciliation import reconcile_all, reconcile_organization
from billing.tasks import reconcile_nightly
from ingest.services.ingest import usage_records_ingest
from rollups.models import JobDaily, MatchingDaily, QueryDaily, RollupState, WorkerDaily
from rollups.services.days import rollup_day
from rollups.services.dirty import rollup_days_mark_dirty
from tests.factories import grant_credits, make_api_key, make_org
from tests.reliability.faults import fault_injected, fault_summary  # noqa: F401

pytestmark = pytest.mark.django_db

MISMATCH = "billing.reconcile.mismatch"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _records(day_start: datetime, prefix: str) -> list[dict]:
    at = day_start + timedelta(hours=10)
    records = [
        {
            "id": f"{prefix}-q-{n}",
            "kind": "query",
            "occurred_at": _iso(at + timedelta(minutes=n)),
            "model": "llama-3.1-8b" if n % 2 else "llama-3.1-70b",
            "input_tokens": 1000 * (n + 1),
            "output_tokens": 500 * (n + 1),
            "endpoint": f"/v1/e{n % 2}",
            "member": f"m{n % 3}@example.com",
        }
        for n in range(6)
    ]
    records += [
        {
            "id": f"{prefix}-w-1",
            "kind": "worker_session",
            "model": "llama-3.1-8b",
            "started_at": _iso(at),
            "ended_at": _iso(at + timedelta(minutes=90)),
        },
        {
            "id": f"{prefix}-m-1",
            "kind": "matching",
            "task": "IDR",
            "num_records": 5000,
            "started_at": _iso(at),
            "ended_at": _iso(at + timedelta(minutes=2)),
        },
        {
            "id": f"{prefix}-j-1",
            "kind": "job",
            "status": "completed",
            "cores": 8,
            "submitted_at": _iso(at - timedelta(minutes=1)),
            "started_at": _iso(at),
            "ended_at": _iso(at + timedelta(hours=2)),
        },
        {
            "id": f"{prefix}-j-2",
            "kind": "job",
            "status": "failed",
            "cores": 2,
            "submitted_at": _iso(at),
            "started_at": _iso(at),
            "ended_at": _iso(at + timedelta(minutes=30)),
        },
    ]
    return records


@pytest.fixture
def rolled_up_org():
    """An organization with two closed days of ingested, charged and rolled-up usage."""
    org = make_org()
    grant_credits(org=org, amount="1000")
    key, _ = make_api_key(org=org)
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    for back in (3, 2):
        start = today - timedelta(days=back)
        result = usage_records_ingest(org=org, records=_records(start, f"d{back}"), api_key=key)
        assert len(result.accepted) == 10 and not result.rejected
        days.append(start.date())
    for day in days:
        rollup_day(org=org, day=day)
    return org, days


def _mismatch_logs(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == MISMATCH]


def test_a_clean_organization_reconciles_with_no_issue(rolled_up_org, caplog):
    org, days = rolled_up_org
    report = reconcile_organization(org=org, days=7)
    assert report.ok and report.issues == []
    assert (report.balances_checked, report.days_checked) == (1, 2)
    assert not ReconciliationIssue.objects.exists()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_tampered_cached_balance_is_reported_and_left_as_it_is(rolled_up_org, caplog, settings):
    org, _ = rolled_up_org
    settings.ADMINS = ["ops@example.com"]
    account = CreditAccount.objects.get(organization=org)
    true_balance = account.balance
    ledger = list(LedgerEntry.objects.filter(organization=org).values_list("pk", "amount"))
    CreditAccount.objects.filter(organization=org).update(balance=F("balance") + Decimal("5"))
    fault_injected("tampered balance")

    report = reconcile_all(days=7)

    (issue,) = report.issues
    assert issue.kind == "balance" and issue.organization_id == org.pk
    assert issue.expected == {"ledger_sum": format(true_balance.normalize(), "f")}
    assert issue.found == {"cached_balance": format((true_balance + 5).normalize(), "f")}
    assert "differs from the ledger sum" in issue.message
    assert ReconciliationIssue.objects.filter(organization=org).count() == 1
    (log,) = _mismatch_logs(caplog)
    assert log.levelno == logging.ERROR and log.issue == issue.pk
    # Never silently fixed: the cached balance keeps the wrong figure, the ledger is as it was.
    assert CreditAccount.objects.get(organization=org).balance == true_balance + 5
    assert list(LedgerEntry.objects.filter(organization=org).values_list("pk", "amount")) == ledger
    from django.core import mail

    (message,) = mail.outbox
    assert message.to == ["ops@example.com"] and "1 mismatch" in message.subject


def _day_rows(model, org, day, **filters):
    """The day's whole-day rollup rows (not its hour rows, where the table has them)."""
    if any(f.name == "hour" for f in model._meta.fields):
        filters["hour"] = None
    return model.objects.filter(organization=org, day=day, **filters)


def _first(model, org, day, **filters):
    rows = _day_rows(model, org, day, **filters)
    return model.objects.filter(pk=rows.order_by("pk").values("pk")[:1])


TAMPERS = {
    "query": lambda org, day: _first(QueryDaily, org, day, dimension="detail").update(
        queries=F("queries") + 1
    ),
    "query-model-row": lambda org, day: _first(QueryDaily, org, day, dimension="model").update(
        credits=F("credits") + Decimal("0.01")
    ),
    "job": lambda org, day: _day_rows(JobDaily, org, day).delete()[0],
    "worker": lambda org, day: _day_rows(WorkerDaily, org, day).update(
        runtime=F("runtime") + timedelta(seconds=1)
    ),
    "matching": lambda org, day: _day_rows(MatchingDaily, org, day).update(num_records=7),
}


@pytest.mark.parametrize("tamper", TAMPERS)
def test_a_tampered_rollup_row_is_reported_and_left_as_it_is(rolled_up_org, tamper, caplog):
    from tests.rollups.test_rollup import rows_of

    org, (day, other_day) = rolled_up_org
    assert TAMPERS[tamper](org, day) >= 1
    fault_injected("tampered rollup")
    tampered = rows_of(org)

    report = reconcile_organization(org=org, days=7)

    (issue,) = report.issues
    assert (issue.kind, issue.day, issue.rollup) == ("rollup", day, tamper.split("-")[0])
    assert issue.expected["differing_rows"] == 1
    (expected_row,) = issue.expected["rows"]
    (found_row,) = issue.found["rows"]
    assert expected_row["dimension"] == found_row["dimension"]
    assert expected_row["figures"] != found_row["figures"]
    if tamper == "job":  # the rows were deleted: found nothing where the raw records say jobs
        assert found_row["figures"] is None and expected_row["figures"]["submitted"] == 2
    (log,) = _mismatch_logs(caplog)
    assert log.levelno == logging.ERROR and log.day == day.isoformat()
    assert ReconciliationIssue.objects.get().pk == issue.pk
    # Not fixed: every rollup row is as tampered, the day still counts as clean.
    assert rows_of(org) == tampered
    assert not RollupState.objects.get(organization=org, day=day).dirty
    assert report.days_checked == 2  # the other day was compared and matched


def test_a_dirty_day_is_not_compared(rolled_up_org):
    """A day marked dirty reads raw until recomputed: its stale rows are not a mismatch."""
    org, (day, _) = rolled_up_org
    TAMPERS["matching"](org, day)
    rollup_days_mark_dirty(org=org, days=[day])
    report = reconcile_organization(org=org, days=7)
    assert report.ok and report.days_checked == 1


def test_days_outside_the_window_are_not_compared(rolled_up_org):
    org, (day, _) = rolled_up_org
    TAMPERS["matching"](org, day)  # three days back
    assert reconcile_organization(org=org, days=2).ok
    assert not reconcile_organization(org=org, days=3).ok


def test_the_command_prints_a_summary_and_exits_zero_when_everything_matches(rolled_up_org):
    out = StringIO()
    call_command("reconcile", "--days", "7", stdout=out)
    assert "Reconciled 1 organization(s): 1 balance(s), 2 rollup day(s) checked" in out.getvalue()
    assert "; 0 mismatch(es)" in out.getvalue()


def test_the_command_exits_non_zero_on_a_mismatch_and_changes_nothing(
    rolled_up_org, capsys, monkeypatch
):
    from billing.management.commands.reconcile import Command

    org, (day, _) = rolled_up_org
    other = make_org()
    grant_credits(org=other, amount="10")
    CreditAccount.objects.filter(organization=org).update(balance=Decimal("1"))
    TAMPERS["matching"](org, day)
    fault_injected("tampered balance")
    fault_injected("tampered rollup")

    with pytest.raises(CommandError) as raised:
        call_command("reconcile", stdout=StringIO(), stderr=StringIO())
    assert raised.value.returncode == 2
    # As an operator runs it: the process's exit status. (run_from_argv closes the
    # database connections when done, which would end this test's transaction.)
    from django.db import connections

    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "reconcile", "--org", org.slug])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert "Reconciled 1 organization(s): 1 balance(s), 2 rollup day(s) checked" in captured.out
    assert "; 2 mismatch(es)" in captured.out
    assert captured.err.count("MISMATCH") == 2
    assert "2 mismatch(es) found; nothing was changed" in captured.err
    assert CreditAccount.objects.get(organization=org).balance == Decimal("1")
    assert ReconciliationIssue.objects.filter(organization=org).count() == 4  # two runs
    assert not ReconciliationIssue.objects.filter(organization=other).exists()

    with pytest.raises(CommandError, match="no organization"):
        call_command("reconcile", "--org", "nope")


def test_the_nightly_task_reports_through_the_same_path(rolled_up_org, settings):
    org, _ = rolled_up_org
    assert settings.CELERY_BEAT_SCHEDULE["billing-reconcile"]["task"] == (
        "billing.tasks.reconcile_nightly"
    )
    # One reconciliation task per organization (each isolated from the others).
    assert reconcile_nightly.delay().get() == Organization.objects.count()
    assert not ReconciliationIssue.objects.filter(organization=org).exists()
    CreditAccount.objects.filter(organization=org).update(balance=Decimal("0"))
    fault_injected("tampered balance")
    reconcile_nightly.delay(days=7).get()
    assert ReconciliationIssue.objects.filter(organization=org, kind="balance").count() == 1


def test_issues_are_read_only_in_the_admin(rolled_up_org, admin_client):
    org, _ = rolled_up_org
    CreditAccount.objects.filter(organization=org).update(balance=Decimal("0"))
    (issue,) = reconcile_organization(org=org).issues
    listing = admin_client.get("/admin/billing/reconciliationissue/")
    assert listing.status_code == 200 and issue.message in listing.content.decode()
    page = admin_client.get(f"/admin/billing/reconciliationissue/{issue.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client.get("/admin/billing/reconciliationissue/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/billing/reconciliationissue/{issue.pk}/delete/").status_code
        == 403
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_false_alarm_while_batches_and_rollups_run_concurrently():
    """Reconciling while another connection ingests (today's records, and late ones on a
    closed day that mark it dirty) and the day is rolled up again: never a mismatch."""
    import threading
    import time

    from django.db import connection

    org = make_org()
    grant_credits(org=org, amount="1000")
    key, _ = make_api_key(org=org)
    day_start = timezone.now().astimezone(UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) - timedelta(days=1)
    usage_records_ingest(org=org, records=_records(day_start, "seed"), api_key=key)
    rollup_day(org=org, day=day_start.date())
    stop = threading.Event()
    sent = []

    def ingest_loop() -> None:
        try:
            n = 0
            while not stop.is_set() and n < 200:
                late = n % 10 == 0  # every tenth batch lands on the closed day
                at = day_start + timedelta(hours=20) if late else timezone.now()
                records = [
                    {
                        "id": f"c-{n}-{i}",
                        "kind": "query",
                        "occurred_at": _iso(at - timedelta(seconds=i + 1)),
                        "model": "llama-3.1-8b",
                        "input_tokens": 10,
                        "output_tokens": 10,
                    }
                    for i in range(5)
                ]
                usage_records_ingest(org=org, records=records, api_key=key)
                sent.append(n)
                n += 1
                time.sleep(0.005)
        finally:
            connection.close()

    thread = threading.Thread(target=ingest_loop)
    thread.start()
    try:
        checks = compared = 0
        # At least 60 checks and 10 batches (on a busy machine either can lag), within
        # two minutes.
        deadline = time.monotonic() + 120
        while thread.is_alive() and (checks < 60 or len(sent) <= 10):
            assert time.monotonic() < deadline, (checks, len(sent))
            rollup_day(org=org, day=day_start.date())
            report = reconcile_organization(org=org, days=3)
            assert report.ok, [i.message for i in report.issues]
            checks += 1
            compared += report.days_checked
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(sent) > 10 and checks > 5 and compared > 0
    print(f"reconcile under load: {checks} checks, {compared} clean days, {len(sent)} batches")
    rollup_day(org=org, day=day_start.date())
    report = reconcile_organization(org=org, days=3)
    assert report.ok and report.days_checked == 1
