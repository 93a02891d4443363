"""A PostgreSQL connection dropped in the middle of an ingestion batch: all or nothing,
and the same batch sent again afterwards is stored and charged exactly once.

The backend serving the batch is terminated for real (pg_terminate_backend from a second
connection) at chosen points: while the batch waits for the organization's credit
account lock with its records already written (no patching: a second connection holds
the lock), right after the organization lock, just before the ledger debit, and after
everything is written but before COMMIT; through the service and through the HTTP
endpoint.
"""

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from billing.models import CoreHourRate, CreditAccount, LedgerEntry
from ingest.services import ingest, write
from rollups.models import RollupState
from tests.factories import grant_credits, make_api_key, make_org
from tests.reliability.faults import fault_injected, fault_summary, timed  # noqa: F401
from tests.workers import current_database_url
from usage.models import IngestBatch, Job, MatchingRun, Query, WorkerSession

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

QUERIES = 20  # 25 input + 100 output tokens each, llama-3.1-8b at 0.10 per million


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _batch(prefix: str = "b") -> list[dict]:
    """Queries and a job on yesterday (a closed day: the batch also marks it dirty)."""
    at = timezone.now() - timedelta(days=1)
    records: list[dict] = [
        {
            "id": f"{prefix}-q-{n}",
            "kind": "query",
            "occurred_at": _iso(at + timedelta(seconds=n)),
            "model": "llama-3.1-8b",
            "input_tokens": 25,
            "output_tokens": 100,
            "endpoint": "/v1/chat/completions",
        }
        for n in range(QUERIES)
    ]
    records.append(
        {
            "id": f"{prefix}-j-1",
            "kind": "job",
            "status": "completed",
            "cores": 4,
            "core_hours": 2,
            "submitted_at": _iso(at),
            "started_at": _iso(at),
            "ended_at": _iso(at + timedelta(minutes=30)),
        }
    )
    return records


def _expected_charge() -> Decimal:
    """By hand: 20 × 125 tokens × 0.10 / 1M, plus 2 core-hours at the managed rate."""
    managed = CoreHourRate.objects.get(compute="managed").rate
    return Decimal(QUERIES * 125) * Decimal("0.10") / 1_000_000 + 2 * managed


def _state(org) -> dict:
    return {
        "queries": Query.objects.filter(organization=org).count(),
        "jobs": Job.objects.filter(organization=org).count(),
        "workers": WorkerSession.objects.filter(organization=org).count(),
        "matching": MatchingRun.objects.filter(organization=org).count(),
        "batches": IngestBatch.objects.filter(organization=org).count(),
        "ledger": list(
            LedgerEntry.objects.filter(organization=org).order_by("pk").values_list("pk", "amount")
        ),
        "balance": CreditAccount.objects.get(organization=org).balance,
        "dirty_days": RollupState.objects.filter(organization=org, dirty=True).count(),
    }


def _terminate(pid: int) -> None:
    """Kill a backend from another connection, and wait until it is gone."""
    with psycopg.connect(current_database_url(), autocommit=True) as killer:
        assert killer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        deadline = time.monotonic() + 10
        while killer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the backend did not go away"
            time.sleep(0.01)
    fault_injected("postgres backend terminated")


def _terminate_own_backend() -> None:
    _terminate(connection.connection.info.backend_pid)


@pytest.fixture
def funded_org():
    org = make_org()
    grant_credits(org=org, amount="1000")
    key, secret = make_api_key(org=org)
    return org, key, secret


def _assert_exactly_once(org, key, before: dict) -> None:
    """The retry stores and charges the batch once; a second retry changes nothing."""
    with timed("ingest retry after the drop"):
        retried = ingest.usage_records_ingest(org=org, records=_batch(), api_key=key)
    assert len(retried.accepted) == QUERIES + 1 and not retried.duplicates
    charge = _expected_charge()
    assert retried.credits == charge
    after = _state(org)
    assert after["queries"] == QUERIES and after["jobs"] == 1 and after["batches"] == 1
    assert after["ledger"][:-1] == before["ledger"]
    assert after["ledger"][-1][1] == -charge
    assert after["balance"] == before["balance"] - charge == Decimal("1000") - charge
    assert after["dirty_days"] == 1

    again = ingest.usage_records_ingest(org=org, records=_batch(), api_key=key)
    assert not again.accepted and len(again.duplicates) == QUERIES + 1
    assert _state(org) == after


def _hook(monkeypatch, module, name: str, *, kill_before: bool) -> None:
    real = getattr(module, name)

    def dropped(*args, **kwargs):
        if kill_before:
            _terminate_own_backend()
        result = real(*args, **kwargs)
        if not kill_before:
            _terminate_own_backend()
        return result

    monkeypatch.setattr(module, name, dropped)


KILL_POINTS = {
    # After the organization's row lock, before anything is written.
    "after the organization lock": (ingest, "organization_usage_lock", False),
    # Records, the batch and the dirty days written; the debit not yet.
    "before the ledger debit": (write, "ledger_post", True),
    # Everything written; the connection dies before COMMIT.
    "before commit": (write, "ledger_post", False),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_connection_dropped_mid_batch_writes_nothing_and_a_retry_is_exactly_once(
    funded_org, monkeypatch, point
):
    org, key, _ = funded_org
    before = _state(org)
    module, name, kill_before = KILL_POINTS[point]
    _hook(monkeypatch, module, name, kill_before=kill_before)
    with pytest.raises(OperationalError):
        ingest.usage_records_ingest(org=org, records=_batch(), api_key=key)
    monkeypatch.undo()
    assert _state(org) == before  # Django reconnects for this read: nothing was kept
    _assert_exactly_once(org, key, before)


def test_a_connection_dropped_between_two_copies_writes_nothing(funded_org, monkeypatch):
    """The batch's queries are COPYed; the connection dies before its job's COPY."""
    org, key, _ = funded_org
    before = _state(org)
    real = write._copy
    copies: list = []

    def dropped(model, rows):
        copies.append(model)
        if len(copies) == 2:
            _terminate_own_backend()
        return real(model, rows)

    monkeypatch.setattr(write, "_copy", dropped)
    with pytest.raises(OperationalError):
        ingest.usage_records_ingest(org=org, records=_batch(), api_key=key)
    monkeypatch.undo()
    assert copies == [Query, Job]
    assert _state(org) == before
    _assert_exactly_once(org, key, before)


def _waiting_on_lock(pid: int, table: str) -> bool:
    with psycopg.connect(current_database_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
    return row is not None and row[0] == "Lock" and table in row[1]


def test_a_batch_killed_from_outside_while_it_waits_for_a_lock_writes_nothing(funded_org):
    """No patching: a second connection holds the credit account's row, so the batch
    (records already inserted) waits for it inside its transaction; it is terminated
    there, as an operator or a failover would."""
    org, key, _ = funded_org
    before = _state(org)
    outcome: dict = {}

    def send() -> None:
        outcome["pid"] = connection.cursor().connection.info.backend_pid
        try:
            outcome["result"] = ingest.usage_records_ingest(org=org, records=_batch(), api_key=key)
        except Exception as exc:  # the test inspects it
            outcome["error"] = exc
        finally:
            connection.close()

    blocker = psycopg.connect(current_database_url())
    try:
        blocker.execute(
            "SELECT 1 FROM billing_creditaccount WHERE organization_id = %s FOR UPDATE", [org.pk]
        )
        thread = threading.Thread(target=send)
        thread.start()
        deadline = time.monotonic() + 20
        while "pid" not in outcome or not _waiting_on_lock(outcome["pid"], "billing_creditaccount"):
            assert time.monotonic() < deadline and thread.is_alive(), outcome
            time.sleep(0.02)
        # Its records are in, uncommitted: the batch is mid-way.
        with psycopg.connect(current_database_url(), autocommit=True) as peek:
            locks = peek.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND mode = 'RowExclusiveLock' "
                "AND relation = 'usage_query'::regclass",
                [outcome["pid"]],
            ).fetchone()[0]
        assert locks == 1
        _terminate(outcome["pid"])
    finally:
        blocker.rollback()
        blocker.close()
    thread.join(timeout=20)
    assert isinstance(outcome.get("error"), OperationalError), outcome
    assert _state(org) == before
    _assert_exactly_once(org, key, before)


@pytest.mark.parametrize("point", ["before the ledger debit", "before commit"])
def test_through_the_http_endpoint_a_dropped_connection_is_a_5xx_and_the_retry_counts_once(
    funded_org, client, monkeypatch, point
):
    org, key, secret = funded_org
    before = _state(org)
    module, name, kill_before = KILL_POINTS[point]
    _hook(monkeypatch, module, name, kill_before=kill_before)
    client.raise_request_exception = False

    def post():
        return client.post(
            "/api/v1/usage/records",
            data=json.dumps({"records": _batch()}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )

    failed = post()
    assert failed.status_code == 500
    monkeypatch.undo()
    assert _state(org) == before

    with timed("HTTP retry after the drop"):
        retried = post()
    assert retried.status_code == 200, retried.content
    body = retried.json()
    assert len(body["accepted"]) == QUERIES + 1 and body["duplicates"] == []
    charge = _expected_charge()
    assert Decimal(body["credits"]) == charge
    after = _state(org)
    assert after["queries"] == QUERIES and after["batches"] == 1
    assert after["balance"] == Decimal("1000") - charge
    assert len(after["ledger"]) == len(before["ledger"]) + 1

    replay = post().json()
    assert replay["accepted"] == [] and len(replay["duplicates"]) == QUERIES + 1
    assert _state(org) == after
