"""Hour rollups: the open day's finished hours (and the hours of the days kept) read from
rollup rows, late records marking an hour dirty, the hourly sweep, pruning, and the
lock per org-hour."""

import threading
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from accounts.projects import project_default_for
from core.calendar import local_hours
from ingest.services.ingest import usage_records_ingest
from insights.selectors import panel as sel
from rollups.models import QueryDaily, RollupHour, RollupState, WorkerDaily
from rollups.selectors.coverage import rollup_coverage
from rollups.services.aggregates import HOUR_DAYS
from rollups.services.days import rollup_day
from rollups.services.hours import rollup_hour, rollup_hours_due, rollup_hours_prune
from rollups.tasks import rollup_hours_sweep
from tests.factories import grant_credits, make_org, make_query, make_worker_session

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

NOW = datetime(2026, 11, 20, 14, 40, tzinfo=UTC)
TODAY = date(2026, 11, 20)


def _model_queries(org, day, hour) -> int:
    return QueryDaily.objects.get(organization=org, day=day, hour=hour, dimension="model").queries


@pytest.mark.parametrize(
    ("tz", "day", "count", "last"),
    [
        ("UTC", date(2026, 11, 20), 24, (23, 0)),
        ("Europe/Berlin", date(2026, 3, 29), 23, (22, 0)),  # spring forward
        ("Europe/Berlin", date(2026, 10, 25), 25, (24, 0)),  # fall back
        ("Australia/Lord_Howe", date(2026, 4, 5), 25, (24, 30)),  # back half an hour
    ],
)
def test_a_day_has_its_hours_counted_from_its_first_instant(tz, day, count, last):
    hours = local_hours(day, tz=tz)
    assert len(hours) == count
    start, end = hours[-1]
    assert ((end - start).total_seconds() // 60, len(hours) - 1) == (last[1] or 60, last[0])
    assert all(a[1] == b[0] for a, b in zip(hours, hours[1:], strict=False))


def test_the_open_days_finished_hours_are_read_from_their_rollups():
    org = make_org()
    make_query(org=org, occurred_at=datetime(2026, 11, 20, 3, 10, tzinfo=UTC), input_tokens=4)
    make_query(org=org, occurred_at=datetime(2026, 11, 20, 14, 5, tzinfo=UTC), input_tokens=6)
    for hour in range(14):
        rollup_hour(org=org, day=TODAY, hour=hour)
    assert _model_queries(org, TODAY, 3) == 1
    coverage = rollup_coverage(org=org)
    split = coverage.split(datetime(2026, 11, 20, tzinfo=UTC), NOW)
    assert split.hours == [(TODAY, 0, 14)]
    # The open hour comes from the bucket aggregates, not the records.
    assert split.raw == []
    assert split.buckets == [(datetime(2026, 11, 20, 14, tzinfo=UTC), NOW)]
    # The rollup answers with the finished hour's record gone (proof it is not read).
    sel.Query.objects.filter(organization=org, occurred_at__hour=3).delete()
    models = sel.queries_by_model(org=org, start=datetime(2026, 11, 20, tzinfo=UTC), end=NOW)
    assert [(m.model, m.input_tokens) for m in models] == [("llama-3.1-8b", 10)]


def test_the_current_hour_cannot_be_rolled_up_and_twice_gives_the_same_rows():
    org = make_org()
    with pytest.raises(ValueError, match="not ended"):
        rollup_hour(org=org, day=TODAY, hour=14)
    with pytest.raises(ValueError, match="no hour 24"):
        rollup_hour(org=org, day=TODAY, hour=24)
    with pytest.raises(ValueError, match="older than"):
        rollup_hour(org=org, day=TODAY - timedelta(days=HOUR_DAYS + 1), hour=1)
    make_query(org=org, occurred_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    make_worker_session(
        org=org,
        started_at=datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
        ended_at=datetime(2026, 11, 20, 10, 15, tzinfo=UTC),
    )
    first = rollup_hour(org=org, day=TODAY, hour=9)
    rows = sorted(QueryDaily.objects.filter(organization=org).values_list("dimension", "queries"))
    assert (
        rollup_hour(org=org, day=TODAY, hour=9).rows == first.rows == 5
    )  # 4 query rows, 1 worker row
    assert rows == sorted(
        QueryDaily.objects.filter(organization=org).values_list("dimension", "queries")
    )
    worker = WorkerDaily.objects.get(organization=org, hour=9)
    assert (worker.runtime, worker.sessions_carried_in, worker.sessions_started) == (
        timedelta(hours=1),
        1,
        0,
    )


def test_a_late_record_for_a_finished_hour_marks_it_dirty_until_the_next_sweep(frozen):
    org = make_org()
    grant_credits(org=org, amount="100")
    record = {
        "kind": "query",
        "occurred_at": "2026-11-20T10:20:00Z",
        "model": "llama-3.1-8b",
        "input_tokens": 100,
        "output_tokens": 50,
    }
    usage_records_ingest(org=org, records=[record | {"id": "q-1"}])
    rollup_hours_sweep.delay()
    assert _model_queries(org, TODAY, 10) == 1
    assert not RollupHour.objects.get(organization=org, day=TODAY, hour=10).dirty
    # Records in the current hour mark nothing (the hour is not rolled up yet).
    usage_records_ingest(
        org=org, records=[record | {"id": "q-now", "occurred_at": "2026-11-20T14:30:00Z"}]
    )
    assert not RollupHour.objects.filter(organization=org, day=TODAY, hour=14).exists()

    usage_records_ingest(org=org, records=[record | {"id": "q-late", "input_tokens": 7}])
    assert RollupHour.objects.get(organization=org, day=TODAY, hour=10).dirty
    assert not RollupState.objects.filter(organization=org, day=TODAY).exists()
    start = datetime(2026, 11, 20, tzinfo=UTC)
    # Exact meanwhile: the dirty hour is read raw.
    assert sel.queries_by_model(org=org, start=start, end=NOW)[0].queries == 3
    assert _model_queries(org, TODAY, 10) == 1

    rollup_hours_sweep.delay()
    assert _model_queries(org, TODAY, 10) == 2
    assert not RollupHour.objects.get(organization=org, day=TODAY, hour=10).dirty
    assert sel.queries_by_model(org=org, start=start, end=NOW)[0].queries == 3


def test_the_hourly_sweep_rolls_up_each_organizations_finished_hours_once_settled(frozen):
    kolkata = make_org(time_zone="Asia/Kolkata")  # 20:10 there; the day began 18:30 UTC
    utc = make_org()
    due = {(o, d, h) for o, d, h in rollup_hours_due() if o in {kolkata.pk, utc.pk}}
    # Today's finished hours and yesterday's (all of them: nothing rolled up yet).
    assert (utc.pk, TODAY, 13) in due and (utc.pk, TODAY, 14) not in due
    assert (kolkata.pk, TODAY, 19) in due and (kolkata.pk, TODAY, 20) not in due
    assert (utc.pk, TODAY - timedelta(days=1), 23) in due
    assert len(due) == 24 + 14 + 24 + 20
    rollup_hours_sweep.delay()
    assert not [t for t in rollup_hours_due() if t[0] in {kolkata.pk, utc.pk}]
    # 15:03: hour 14 ended three minutes ago, not settled yet; at 15:05 it is due.
    frozen.move_to(datetime(2026, 11, 20, 15, 3, tzinfo=UTC))
    assert not [t for t in rollup_hours_due() if t[0] == utc.pk]
    frozen.move_to(datetime(2026, 11, 20, 15, 5, tzinfo=UTC))
    assert [t for t in rollup_hours_due() if t[0] == utc.pk] == [(utc.pk, TODAY, 14)]


def test_a_closed_days_hours_serve_a_window_starting_inside_it():
    org = make_org()
    yesterday = TODAY - timedelta(days=1)
    make_query(org=org, occurred_at=datetime(2026, 11, 19, 16, 5, tzinfo=UTC))
    make_query(org=org, occurred_at=datetime(2026, 11, 19, 14, 50, tzinfo=UTC))
    assert rollup_day(org=org, day=yesterday).hour_rows == 8  # two hours of 4 query rows
    assert RollupHour.objects.filter(organization=org, day=yesterday, dirty=False).count() == 24
    split = rollup_coverage(org=org).split(NOW - timedelta(hours=24), NOW)
    assert split.hours == [(yesterday, 15, 24)]
    assert split.raw == []
    assert split.buckets == [
        (NOW - timedelta(hours=24), datetime(2026, 11, 19, 15, tzinfo=UTC)),
        (datetime(2026, 11, 20, tzinfo=UTC), NOW),
    ]
    last_24h = sel.queries_by_model(org=org, start=NOW - timedelta(hours=24), end=NOW)
    assert last_24h[0].queries == 2


def test_hours_past_the_days_kept_are_pruned_and_no_longer_read():
    org = make_org()
    old = TODAY - timedelta(days=HOUR_DAYS + 3)
    RollupHour.objects.create(
        organization=org, day=old, hour=3, time_zone="UTC", dirty=False, computed_at=NOW
    )
    QueryDaily.objects.create(
        organization=org,
        project=project_default_for(org=org),
        day=old,
        hour=3,
        dimension="model",
        queries=5,
    )
    assert rollup_coverage(org=org).clean_hours == ()
    assert rollup_hours_prune() == 1
    assert not QueryDaily.objects.filter(organization=org).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_of_one_hour_queue_behind_its_lock_and_leave_the_same_rows():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL (CI does)")
    org = make_org()
    make_query(org=org, occurred_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    rollup_hour(org=org, day=TODAY, hour=9)
    before = sorted(QueryDaily.objects.filter(organization=org).values_list("dimension", "queries"))
    db = connection.settings_dict
    dsn = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    blocker = psycopg.connect(dsn)
    blocker.execute(
        "SELECT id FROM usage_rolluphour WHERE organization_id = %s AND hour = 9 FOR UPDATE",
        [org.pk],
    )
    done = []

    def run():
        done.append(rollup_hour(org=org, day=TODAY, hour=9).rows)
        connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    threads[0].join(timeout=1)
    assert done == []  # both wait for the held lock
    blocker.rollback()
    blocker.close()
    for thread in threads:
        thread.join(timeout=30)
    assert done == [4, 4]
    after = sorted(QueryDaily.objects.filter(organization=org).values_list("dimension", "queries"))
    assert after == before
