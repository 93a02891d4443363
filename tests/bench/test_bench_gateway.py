"""manage.py bench_gateway, briefly: the deployed stack starts, wrk loads every call in
the table and every answer is a success. Timings say nothing in a test."""

import io
import os
import shutil

import pytest
from django.conf import global_settings
from django.core.management import call_command

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL")
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (Debian's package)")
def test_a_short_bench_gateway_run_prints_every_row_with_no_errors(settings):
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # the stack logs in for real
    out = io.StringIO()
    call_command(
        "bench_gateway",
        *("--seconds", "1", "--ingest-seconds", "2", "--idle-seconds", "1", "--orgs", "2"),
        *("--writers", "1", "--batch-size", "20", "--workers", "2"),
        stdout=out,
    )
    text = out.getvalue()
    rows = [line for line in text.splitlines() if line[:1].isalpha()]
    for name in (
        "GET /healthz (floor)",
        "POST authorize, 1 org",
        "POST authorize, 2 orgs",
        "GET /api/v1/account",
        "ingestion",
        "usage panel, idle",
        "usage panel, under ingestion",
    ):
        assert any(row.startswith(name) for row in rows), (name, text)
    assert "panel p95 under load ÷ idle" in text
    # What the run left is checked, and was right: nothing lost, doubled or mispriced.
    for check in ("verify records:", "verify ledger:", "verify reconcile:"):
        (line,) = [row for row in text.splitlines() if row.startswith(check)]
        assert line.endswith(": OK"), text
