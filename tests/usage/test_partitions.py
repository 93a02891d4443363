"""Monthly partitions of the raw record tables, their key table, and retention
(usage/services/partitions.py, record_keys.py, retention.py). Against real PostgreSQL:
SQLite has no partitions."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from billing.selectors import credit_balance
from ingest.services.ingest import usage_records_ingest
from insights.selectors.panel import jobs_overview, queries_by_model
from insights.selectors.summaries import worker_runtime_by_model
from rollups.models import JobDaily, QueryDaily, RollupState
from rollups.services.days import rollup_day
from tests.factories import grant_credits, make_api_key, make_member, make_org
from usage.models import Job, MatchingRun, Query, RecordKey, RetainedMonth, WorkerSession
from usage.services.partitions import partitions_make_ahead, partitions_of
from usage.services.retention import retention_notice, usage_retention_run

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

JULY = date(2026, 7, 1)
DAY = date(2026, 7, 10)
TABLES = ("usage_query", "usage_workersession", "usage_matchingrun", "usage_job")


def july_batch(prefix: str = "") -> list[dict]:
    return [
        {
            "id": f"{prefix}q-1",
            "kind": "query",
            "occurred_at": "2026-07-10T10:00:00Z",
            "model": "llama-3.1-8b",
            "input_tokens": 1000,
            "output_tokens": 3000,
            "endpoint": "/v1/chat/completions",
        },
        {
            "id": f"{prefix}w-1",
            "kind": "worker_session",
            "model": "llama-3.1-8b",
            "started_at": "2026-07-10T08:00:00Z",
            "ended_at": "2026-07-10T09:30:00Z",
        },
        {
            "id": f"{prefix}m-1",
            "kind": "matching",
            "task": "IDR",
            "num_records": 5000,
            "started_at": "2026-07-10T08:00:00Z",
            "ended_at": "2026-07-10T08:02:00Z",
        },
        {
            "id": f"{prefix}j-1",
            "kind": "job",
            "status": "completed",
            "cores": 8,
            "submitted_at": "2026-07-10T07:59:00Z",
            "started_at": "2026-07-10T08:00:00Z",
            "ended_at": "2026-07-10T10:00:00Z",
        },
    ]


@pytest.fixture
def org(frozen):
    org = make_org()
    grant_credits(org=org, amount="1000")
    return org


def _partition_names(table: str) -> set[str]:
    return {p.name for p in partitions_of(table)}


def _figures(org) -> tuple:
    start, end = datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)
    return (
        jobs_overview(org=org, start=start, end=end),
        queries_by_model(org=org, start=start, end=end),
        worker_runtime_by_model(org=org, start=start, end=end),
    )


def test_the_record_tables_are_partitioned_by_month_with_a_default_partition():
    for table in TABLES:
        parts = partitions_of(table)
        assert parts[-1].month is None and parts[-1].name == f"{table}_pdefault"
        months = [p.month for p in parts[:-1]]
        assert date(2026, 7, 1) in months and months == sorted(months)


def test_each_stored_record_writes_its_key_in_the_same_statement(org):
    result = usage_records_ingest(org=org, records=july_batch())
    assert len(result.accepted) == 4
    keys = set(RecordKey.objects.filter(organization=org).values_list("kind", "client_id", "at"))
    assert keys == {
        ("q", "q-1", datetime(2026, 7, 10, 10, tzinfo=UTC)),
        ("w", "w-1", datetime(2026, 7, 10, 8, tzinfo=UTC)),
        ("m", "m-1", datetime(2026, 7, 10, 8, tzinfo=UTC)),
        ("j", "j-1", datetime(2026, 7, 10, 7, 59, tzinfo=UTC)),
    }
    # The rows sit in July's partitions.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM usage_query_p2026_07")
        assert cursor.fetchone()[0] == 1


def test_the_key_refuses_the_same_id_at_another_time_even_in_another_partition(org):
    usage_records_ingest(org=org, records=july_batch())
    query = Query.objects.get(organization=org, client_id="q-1")
    query.pk = None
    query.occurred_at = datetime(2026, 9, 1, tzinfo=UTC)  # September's partition
    with pytest.raises(IntegrityError), transaction.atomic():
        query.save()


def test_a_deleted_record_takes_its_key_with_it(org):
    usage_records_ingest(org=org, records=july_batch())
    Query.objects.filter(organization=org).delete()
    assert not RecordKey.objects.filter(organization=org, kind="q").exists()
    assert RecordKey.objects.filter(organization=org).count() == 3


def test_a_replay_at_another_time_is_a_duplicate_and_charges_nothing(org):
    usage_records_ingest(org=org, records=july_batch())
    balance = credit_balance(org=org)
    replay = [r | {"occurred_at": "2026-11-01T00:00:00Z"} for r in july_batch()[:1]]
    result = usage_records_ingest(org=org, records=replay)
    assert (result.accepted, result.duplicates) == ([], ["q-1"])
    assert credit_balance(org=org) == balance


def test_partitions_ahead_are_made_where_missing_and_only_once(frozen):
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE usage_job_p2027_01")
    made = partitions_make_ahead(now=datetime(2026, 11, 20, tzinfo=UTC))
    assert made == ["usage_job_p2027_01"]
    assert partitions_make_ahead(now=datetime(2026, 11, 20, tzinfo=UTC)) == []
    assert "usage_job_p2027_02" in _partition_names("usage_job")


def test_retention_is_off_without_keep_months(capsys):
    call_command("usage_retention")
    assert "Retention is off" in capsys.readouterr().out
    assert not RetainedMonth.objects.exists()


def test_retention_drops_a_rolled_up_month_and_its_figures_stay(org, frozen):
    usage_records_ingest(org=org, records=july_batch())
    rollup_day(org=org, day=DAY)
    before = _figures(org)
    daily_before = list(JobDaily.objects.filter(organization=org).values())
    balance = credit_balance(org=org)

    verdicts = usage_retention_run(keep_months=3)

    july = next(v for v in verdicts if v.month == JULY)
    assert july.dropped and july.records["usage_query"] == 1
    assert july.detach_ms < 1000
    assert verdicts[-1].month == JULY  # August is kept (3 full months before November)
    for table in TABLES:
        assert f"{table}_p2026_07" not in _partition_names(table)
        assert f"{table}_p2026_08" in _partition_names(table)
    assert not Query.objects.filter(organization=org).exists()
    assert not Job.objects.filter(organization=org).exists()
    assert RetainedMonth.objects.filter(month=JULY).exists()
    # Pages answer July from the rollups: the same figures.
    assert _figures(org) == before
    # A replay of a dropped record is still a duplicate (the job too), and charges nothing.
    result = usage_records_ingest(org=org, records=july_batch())
    assert sorted(result.duplicates) == ["j-1", "m-1", "q-1", "w-1"]
    assert credit_balance(org=org) == balance
    # A new record in a dropped month is refused, saying why.
    result = usage_records_ingest(org=org, records=july_batch(prefix="new-"))
    assert result.accepted == []
    assert {r.field for r in result.rejected} == {"occurred_at", "started_at", "submitted_at"}
    assert "no longer kept" in result.rejected[0].error
    # The verifier leaves the frozen day alone.
    rollup_day(org=org, day=DAY)
    assert list(JobDaily.objects.filter(organization=org).values()) == daily_before
    assert _figures(org) == before
    notice = retention_notice(start=datetime(2026, 7, 1, tzinfo=UTC))
    assert notice is not None and "2026-08-01" in notice
    assert retention_notice(start=datetime(2026, 8, 1, tzinfo=UTC)) is None


def test_a_month_with_days_not_rolled_up_is_kept_and_so_are_the_later_ones(org):
    usage_records_ingest(org=org, records=july_batch())  # July 10 marked dirty, not rolled up
    verdicts = usage_retention_run(keep_months=2)  # July and August due
    assert [v.month for v in verdicts][-1] == JULY
    assert not verdicts[-1].ready and not verdicts[-1].dropped
    assert "not rolled up" in verdicts[-1].reasons[0]
    assert "usage_query_p2026_07" in _partition_names("usage_query")
    assert "usage_query_p2026_08" in _partition_names("usage_query")
    assert Query.objects.filter(organization=org).count() == 1


def test_a_month_with_a_running_job_or_a_session_running_on_is_kept(org):
    usage_records_ingest(
        org=org,
        records=[
            july_batch()[3] | {"status": "running", "ended_at": None},
            july_batch()[1] | {"ended_at": "2026-08-02T00:00:00Z"},
        ],
    )
    for day in range(10, 32):
        rollup_day(org=org, day=date(2026, 7, day))
    for day in (1, 2):
        rollup_day(org=org, day=date(2026, 8, day))
    july = next(v for v in usage_retention_run(keep_months=3) if v.month == JULY)
    assert not july.dropped
    assert any("jobs still submitted or running" in r for r in july.reasons)
    assert any("run on into the next month" in r for r in july.reasons)


def test_the_command_reports_each_month(org, capsys):
    usage_records_ingest(org=org, records=july_batch())
    rollup_day(org=org, day=DAY)
    call_command("usage_retention", "--keep-months", "3", "--dry-run")
    out = capsys.readouterr().out
    assert "2026-07: ready, 4 records (dry run)" in out
    assert "usage_query_p2026_07" in _partition_names("usage_query")
    call_command("usage_retention", "--keep-months", "3")
    assert "2026-07: dropped 4 records" in capsys.readouterr().out


def test_rollup_state_of_the_dropped_day_stays_clean(org):
    usage_records_ingest(org=org, records=july_batch())
    rollup_day(org=org, day=DAY)
    usage_retention_run(keep_months=3)
    state = RollupState.objects.get(organization=org, day=DAY)
    assert state.clean
    by_model = QueryDaily.objects.get(organization=org, day=DAY, dimension="model", hour=None)
    assert by_model.queries == 1
    assert WorkerSession.objects.count() == MatchingRun.objects.count() == 0
    assert Decimal(0) < JobDaily.objects.get(organization=org, day=DAY).core_hours


def test_record_lists_of_the_api_say_when_detail_is_no_longer_kept(org, client):
    _key, secret = make_api_key(org=org)
    headers = {"Authorization": f"Bearer {secret}"}
    usage_records_ingest(org=org, records=july_batch())
    rollup_day(org=org, day=DAY)
    july = "start_date=2026-07-01&end_date=2026-07-31"
    before = client.get(f"/api/v1/usage/llm?{july}", headers=headers).json()
    assert before["count"] == 1 and before["detail_notice"] is None

    usage_records_ingest(org=org, records=july_batch())
    usage_retention_run(keep_months=3)

    after = client.get(f"/api/v1/usage/llm?{july}", headers=headers).json()
    assert after["count"] == 0
    assert "no longer kept" in after["detail_notice"]
    matching = client.get(f"/api/v1/usage/matching?{july}", headers=headers).json()
    assert "no longer kept" in matching["detail_notice"]
    sessions = client.get(
        "/api/v1/account/worker-sessions?start_date=1782864000000&end_date=1785542400000",
        headers=headers,
    ).json()
    assert "no longer kept" in sessions["detail_notice"]
    assert sessions["total_runtime_seconds"] == 5400  # the rollups' figure, unchanged
    summary = client.get(
        f"/api/v1/usage/llm/organization/{org.pk}/summary?{july}", headers=headers
    ).json()
    assert (summary["queries"], summary["total_tokens"]) == (1, 4000)
    recent = client.get("/api/v1/usage/llm", headers=headers).json()
    assert recent["detail_notice"] is None


def test_retention_keeps_at_least_two_full_months():
    with pytest.raises(ValueError, match="at least 2"):
        usage_retention_run(keep_months=1)


def test_a_dropped_batchs_charge_page_says_its_records_are_no_longer_kept(org, client, frozen):
    with time_machine.travel(datetime(2026, 7, 10, 12, tzinfo=UTC), tick=False):
        result = usage_records_ingest(org=org, records=july_batch())
    rollup_day(org=org, day=DAY)
    client.force_login(make_member(org=org).user)
    url = f"/o/{org.slug}/usage/charges/batch/{result.batch_id}/"
    assert "no longer kept" not in client.get(url).content.decode()
    usage_retention_run(keep_months=3)
    page = client.get(url).content.decode()
    assert 'data-testid="detail-notice"' in page and "no longer kept" in page
