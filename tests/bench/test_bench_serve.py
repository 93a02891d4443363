"""manage.py bench_serve, briefly: the production stack starts, takes batches and page
loads at once, and its checks (records, ledger, reconcile) pass. Only the checks are
asserted: timings say nothing in a test."""

import io
import os

import pytest
from django.conf import global_settings
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_serve_refuses_sqlite():
    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip("about SQLite: run without DATABASE_URL")
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("bench_serve", "--seconds", "1")


@pytest.mark.postgres
def test_bench_serve_refuses_to_run_without_redis(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("bench_serve", "--seconds", "1")


@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL")
def test_a_short_bench_serve_run_loses_and_duplicates_nothing(settings):
    # The stack's processes check the owner's password with the real hashers.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    out = io.StringIO()
    call_command(
        "bench_serve",
        *("--seconds", "3", "--writers", "1", "--readers", "1", "--workers", "2"),
        *("--idle-seconds", "1", "--reader-pause", "0.2", "--copy-batches", "2"),
        stdout=out,
    )
    lines = {line.split(":", 1)[0]: line for line in out.getvalue().splitlines()}
    records = lines["verify records"]
    assert records.endswith("OK") and "missing 0, unexpected or duplicated 0" in records
    assert lines["verify ledger"].endswith("OK")
    assert (
        lines["verify reconcile"].endswith("OK") and "0 mismatch(es)" in lines["verify reconcile"]
    )
    assert "error:" not in out.getvalue()
