"""Concurrent ingestion on PostgreSQL: overlapping batches from 8 workers."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from billing.models import LedgerEntry
from billing.selectors import credit_balance, ledger_sum
from ingest.services.ingest import usage_records_ingest
from tests.factories import grant_credits, make_api_key, make_org
from usage.models import Job, Query

# Transactional: the threads need committed rows. tests/conftest.py reloads the price
# list that the flush after such a test removes.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 8


def query(n: int) -> dict:
    return {
        "id": f"q-{n}",
        "kind": "query",
        "occurred_at": "2026-01-10T10:00:00Z",
        "model": "llama-3.1-70b",
        "input_tokens": 1000 + n,
        "output_tokens": 10,
    }


def job(n: int, status: str) -> dict:
    record = {"id": f"j-{n}", "kind": "job", "cores": 2, "submitted_at": "2026-01-10T08:00:00Z"}
    if status != "submitted":
        record["started_at"] = "2026-01-10T09:00:00Z"
    if status == "completed":
        record["ended_at"] = "2026-01-10T10:00:00Z"
    return record | {"status": status}


def test_overlapping_batches_from_8_workers_store_each_record_once_and_charge_exactly():
    org = make_org()
    grant_credits(org=org, amount="1000")
    key, _ = make_api_key(org=org)
    # Worker w sends queries [w*150, w*150 + 300): every id is sent by two workers.
    # Every worker also sends the same 20 jobs, at different points of their lifecycle.
    statuses = ["submitted", "running", "completed"]
    batches = [
        [query(n) for n in range(w * 150, w * 150 + 300)]
        + [job(n, statuses[(w + n) % 3]) for n in range(20)]
        for w in range(WORKERS)
    ]
    results: list = [None] * WORKERS
    errors: list = []
    barrier = threading.Barrier(WORKERS)

    def work(w: int) -> None:
        try:
            barrier.wait()
            results[w] = usage_records_ingest(org=org, records=batches[w], api_key=key)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    all_queries = {f"q-{n}" for n in range(WORKERS * 150 + 150)}
    accepted_queries = [i for r in results for i in r.accepted if i.startswith("q-")]
    assert len(accepted_queries) == len(set(accepted_queries)) == len(all_queries)
    assert Query.objects.filter(organization=org).count() == len(all_queries)

    # Queries by hand: (1000 + n + 10) tokens at 0.90 per million.
    expected = sum(Decimal(1010 + n) * Decimal("0.90") / 10**6 for n in range(WORKERS * 150 + 150))
    # Every job reaches "completed" (some worker sends it), charged once: 2 cores × 1 h × 0.12.
    assert set(Job.objects.filter(organization=org).values_list("status", flat=True)) == {
        "completed"
    }
    expected += 20 * Decimal("0.24")
    assert sum(r.credits for r in results) == expected
    debits = LedgerEntry.objects.filter(organization=org, kind="usage")
    assert -sum(debits.values_list("amount", flat=True)) == expected
    assert credit_balance(org=org) == ledger_sum(org=org) == Decimal("1000") - expected
