"""Bucket aggregates kept current at ingestion: for any sequence of batches (late records,
replays, jobs moving forward by record or through the jobs service) every figure a page,
the explorer or the API shows equals what the raw records alone give for the same range
with its edges moved to bucket ends, and the rollups' verifier finds nothing to change."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.test.utils import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.services.ingest import usage_records_ingest
from ingest.services.jobs import job_transition
from insights.selectors import panel as sel
from insights.selectors.explorer import usage_report
from rollups.models import (
    JobBucket,
    JobDaily,
    MatchingDaily,
    QueryBucket,
    QueryDaily,
    Restatement,
    RollupState,
    WorkerBucket,
    WorkerDaily,
)
from rollups.selectors.coverage import raw_only, rollup_coverage
from rollups.services.aggregates import HOUR_DAYS, bucket_ceil, bucket_floor
from rollups.services.days import rollup_day
from rollups.services.hours import rollup_hour
from tests.factories import grant_credits, make_api_key, make_controller, make_org
from tests.rollups.test_rollup import figures
from usage.models import WorkerSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

# Mid-minute, so a window ending "now" ends inside the open bucket.
NOW = datetime(2026, 11, 20, 12, 7, 30, tzinfo=UTC)
ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
MODELS = ["llama-3.1-8b", "llama-3.1-70b", "e5-large-v2"]


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# Record times in seconds before NOW: mostly the open hour and day, some days back, and
# some past the days buckets are kept (those are read raw until rolled up).
seconds_ago = st.one_of(
    st.integers(0, 3600),
    st.integers(0, 3 * 86400),
    st.integers((HOUR_DAYS + 1) * 86400, (HOUR_DAYS + 3) * 86400),
)
query_st = st.fixed_dictionaries(
    {
        "kind": st.just("query"),
        "ago": seconds_ago,
        "model": st.sampled_from(MODELS),
        "input_tokens": st.integers(0, 900),
        "output_tokens": st.integers(0, 900),
        "endpoint": st.sampled_from(["/v1/chat/completions", "/v1/embeddings"]),
        "member": st.sampled_from(["", "ana@example.com", "bo@example.com"]),
    }
)
session_st = st.fixed_dictionaries(
    {
        "kind": st.just("worker_session"),
        "ago": seconds_ago,
        "length": st.integers(0, 5 * 3600),
        "model": st.sampled_from(MODELS),
    }
)
matching_st = st.fixed_dictionaries(
    {
        "kind": st.just("matching"),
        "ago": seconds_ago,
        "task": st.sampled_from(["IDR", "CDM"]),
        "num_records": st.integers(0, 5000),
    }
)
job_st = st.fixed_dictionaries(
    {
        "kind": st.just("job"),
        "ago": seconds_ago,
        "status": st.sampled_from(["submitted", "running", "completed", "failed", "cancelled"]),
        "controller": st.sampled_from([None, "c1"]),
        "cores": st.integers(1, 16),
    }
)
# A later step for a job of an earlier batch: (job index, how, status).
move_st = st.tuples(
    st.integers(0, 50),
    st.sampled_from(["record", "service"]),
    st.sampled_from(["running", "completed", "failed", "cancelled"]),
)
batch_st = st.tuples(
    st.sampled_from([None, "k1", "k2"]),
    st.lists(st.one_of(query_st, session_st, matching_st, job_st), max_size=8),
    st.lists(move_st, max_size=2),
)
# Windows: start seconds before NOW (None: all time) and a length in seconds.
window_st = st.tuples(
    st.one_of(st.none(), st.integers(0, 4 * 86400), st.integers(0, 7200)),
    st.integers(0, 5 * 86400),
)


def _wire(n: int, spec: dict, jobs: list) -> dict:
    at = NOW - timedelta(seconds=spec["ago"])
    record = {"id": f"r{n}", "kind": spec["kind"]}
    if spec["kind"] == "query":
        record.update(
            {k: spec[k] for k in ("model", "input_tokens", "output_tokens", "endpoint", "member")}
        )
        record["occurred_at"] = iso(at)
    elif spec["kind"] == "worker_session":
        end = min(at + timedelta(seconds=spec["length"]), NOW)
        record.update(model=spec["model"], started_at=iso(at), ended_at=iso(end))
    elif spec["kind"] == "matching":
        record.update(
            task=spec["task"],
            num_records=spec["num_records"],
            started_at=iso(at),
            ended_at=iso(at + timedelta(seconds=30)),
        )
    else:
        record.update(status=spec["status"], cores=spec["cores"], submitted_at=iso(at))
        if spec["controller"]:
            record["controller"] = spec["controller"]
        if spec["status"] != "submitted":
            record["started_at"] = iso(at + timedelta(seconds=1))
        if spec["status"] in ("completed", "failed", "cancelled"):
            record["ended_at"] = iso(at + timedelta(seconds=90))
        jobs.append(record)
    return record


def _move(org, keys, moves, jobs) -> None:
    """Jobs of earlier batches taking a later step: by a record with the same id (and
    maybe a controller now), or through the jobs service."""
    for index, how, status in moves:
        if not jobs:
            return
        job = jobs[index % len(jobs)]
        if job["status"] == "submitted" and status == "completed" and how == "service":
            status = "running"
        if STEP[status] <= STEP[job["status"]]:
            continue
        at = datetime.fromisoformat(job["submitted_at"]) + timedelta(seconds=5)
        if how == "service":
            job_transition(org=org, client_id=job["id"], status=status, at=at)
        else:
            moved = {**job, "status": status, "started_at": iso(at), "controller": "c1"}
            if status != "running":
                moved["ended_at"] = iso(at + timedelta(seconds=60))
            usage_records_ingest(org=org, records=[moved], api_key=keys["k1"])
        job["status"] = status


STEP = {"submitted": 0, "running": 1, "completed": 2, "failed": 2, "cancelled": 2}


def bucket_rows(org) -> set:
    rows = set()
    for model in (JobBucket, QueryBucket, WorkerBucket):
        names = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
        queryset = model.objects.filter(organization=org)
        if model is JobBucket:
            queryset = queryset.exclude(submitted=0)
        rows.update((model.__name__, *values) for values in queryset.values_list(*names))
    return rows


def report(org, start, end, coverage, metric, group_by):
    """The report's groups, figures to 12 places (runtime hours are a division)."""
    groups = usage_report(
        org=org,
        start=start,
        end=end,
        metric=metric,
        group_by=group_by,
        bucket="1h",
        now=NOW,
        coverage=coverage,
    ).groups
    places = Decimal("1e-12")
    return [
        (
            g.key,
            g.total.quantize(places),
            g.previous.quantize(places),
            [v.quantize(places) for v in g.series],
        )
        for g in groups
    ]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tz=st.sampled_from(ZONES),
    batches=st.lists(batch_st, min_size=1, max_size=4),
    windows=st.lists(window_st, min_size=1, max_size=3),
    roll_yesterday=st.booleans(),
)
def test_figures_from_aggregates_equal_figures_from_raw_records(
    tz, batches, windows, roll_yesterday
):
    with transaction.atomic():
        org = make_org(time_zone=tz, tier="enterprise")
        grant_credits(org=org, amount="100000")
        keys = {"k1": make_api_key(org=org, name="k1")[0], "k2": make_api_key(org=org)[0]}
        keys[None] = None
        make_controller(org=org, name="c1")
        jobs: list = []
        n = 0
        for key, specs, moves in batches:
            records = []
            for spec in specs:
                records.append(_wire(n, spec, jobs))
                n += 1
            # Replayed in part: a replay changes nothing.
            usage_records_ingest(org=org, records=records + records[:2], api_key=keys[key])
            _move(org, keys, moves, jobs)
        coverage = rollup_coverage(org=org)
        if roll_yesterday:  # some of it rolled up: day rows, hour rows and buckets mixed
            rollup_day(org=org, day=coverage.today - timedelta(days=1))
            coverage = rollup_coverage(org=org)
        for back, length in windows:
            start = None if back is None else NOW - timedelta(seconds=back)
            end = NOW if start is None else min(start + timedelta(seconds=length), NOW)
            # The raw reference reads the same range with its edges moved to bucket ends.
            ref_start = None if start is None else bucket_ceil(start)
            ref_end = bucket_ceil(end)
            got = figures(org, start, end, coverage)
            want = figures(org, ref_start, ref_end, raw_only(org=org))
            assert got == want
            # The explorer on whole minutes (its previous period has the range's length).
            lo, hi = bucket_floor(start or NOW - timedelta(days=4)), bucket_floor(end)
            if hi > lo:
                for metric, group_by in (("tokens", ("model",)), ("worker_runtime", ())):
                    assert report(org, lo, hi, coverage, metric, group_by) == report(
                        org, lo, hi, raw_only(org=org), metric, group_by
                    )
        before = bucket_rows(org)
        # The verifier: recomputing every day and finished hour changes no bucket.
        today = coverage.today
        for back in range(0, 4):
            day = today - timedelta(days=back)
            if back:
                assert rollup_day(org=org, day=day).bucket_rows_restated == 0
        today_start = sel.local_day_start(today, tz=tz)
        for hour in range(int((NOW - today_start) / timedelta(hours=1))):
            assert rollup_hour(org=org, day=today, hour=hour).bucket_rows_restated == 0
        assert bucket_rows(org) == before
        assert not Restatement.objects.filter(organization=org, kind="buckets").exists()
        transaction.set_rollback(True)


def rollup_rows(org) -> set:
    """Every day and hour rollup row of the organization, without its surrogate id."""
    rows = set()
    for model in (JobDaily, QueryDaily, WorkerDaily, MatchingDaily):
        names = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
        queryset = model.objects.filter(organization=org)
        rows.update((model.__name__, *values) for values in queryset.values_list(*names))
    return rows


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tz=st.sampled_from(ZONES),
    steps=st.lists(
        st.tuples(batch_st, st.lists(st.integers(1, HOUR_DAYS + 3), max_size=2)),
        min_size=1,
        max_size=4,
    ),
    window=window_st,
)
def test_rollups_between_batches_then_the_verifier_settles_and_changes_nothing_twice(
    tz, steps, window
):
    """Days rolled up between batches (so later late records and job moves dirty them):
    pages still equal the raw records, and once the verifier has run over every day and
    hour, running it again restates nothing and leaves every rollup and bucket row as is."""
    with transaction.atomic():
        org = make_org(time_zone=tz, tier="enterprise")
        grant_credits(org=org, amount="100000")
        keys = {"k1": make_api_key(org=org, name="k1")[0], "k2": make_api_key(org=org)[0]}
        keys[None] = None
        make_controller(org=org, name="c1")
        jobs: list = []
        n = 0
        today = rollup_coverage(org=org).today
        for (key, specs, moves), days_back in steps:
            records = []
            for spec in specs:
                records.append(_wire(n, spec, jobs))
                n += 1
            usage_records_ingest(org=org, records=records + records[-1:], api_key=keys[key])
            _move(org, keys, moves, jobs)
            for back in days_back:
                rollup_day(org=org, day=today - timedelta(days=back))
        back, length = window
        start = None if back is None else NOW - timedelta(seconds=back)
        end = NOW if start is None else min(start + timedelta(seconds=length), NOW)
        ref_start = None if start is None else bucket_ceil(start)
        want = figures(org, ref_start, bucket_ceil(end), raw_only(org=org))
        assert figures(org, start, end, rollup_coverage(org=org)) == want

        def verify() -> None:  # every day ingestion marked or a rollup computed, as sweeps do
            for day in RollupState.objects.filter(organization=org).values_list("day", flat=True):
                rollup_day(org=org, day=day)
            today_start = sel.local_day_start(today, tz=tz)
            for hour in range(int((NOW - today_start) / timedelta(hours=1))):
                rollup_hour(org=org, day=today, hour=hour)

        verify()
        restated = Restatement.objects.filter(organization=org).count()
        settled = (rollup_rows(org), bucket_rows(org))
        assert figures(org, start, end, rollup_coverage(org=org)) == want
        verify()
        assert Restatement.objects.filter(organization=org).count() == restated
        assert (rollup_rows(org), bucket_rows(org)) == settled
        assert figures(org, start, end, rollup_coverage(org=org)) == want
        transaction.set_rollback(True)


def test_pages_read_the_open_hour_from_buckets_not_records():
    org = make_org(tier="enterprise")
    grant_credits(org=org, amount="1000")
    records = [
        {
            "id": f"q{n}",
            "kind": "query",
            "model": "llama-3.1-8b",
            "occurred_at": iso(NOW - timedelta(minutes=n)),
            "input_tokens": 10,
            "output_tokens": 5,
        }
        for n in range(30)
    ]
    usage_records_ingest(org=org, records=records)
    start = NOW - timedelta(hours=1)
    # The records gone behind the aggregates' back: the page still shows them (it reads
    # the buckets), and the verifier puts the figures back in line with the records.
    sel.Query.objects.filter(organization=org).delete()
    [model] = sel.queries_by_model(org=org, start=start, end=NOW)
    assert (model.queries, model.total_tokens) == (30, 450)
    today = rollup_coverage(org=org).today
    assert rollup_hour(org=org, day=today, hour=11).bucket_rows_restated > 0
    assert Restatement.objects.filter(organization=org, kind="buckets").count() == 1
    [model] = sel.queries_by_model(org=org, start=start, end=NOW)
    assert model.queries == 8  # 12:00-12:07 still from buckets; hour 11 from its hour rows


def test_a_window_edge_inside_a_minute_moves_to_the_minutes_end():
    org = make_org(tier="enterprise")
    grant_credits(org=org, amount="1000")
    at = datetime(2026, 11, 20, 11, 0, 20, tzinfo=UTC)
    usage_records_ingest(
        org=org,
        records=[
            {
                "id": "q",
                "kind": "query",
                "model": "llama-3.1-8b",
                "occurred_at": iso(at),
                "input_tokens": 1,
                "output_tokens": 1,
            }
        ],
    )

    def count(start, end):
        return sum(m.queries for m in sel.queries_by_model(org=org, start=start, end=end))

    # [11:00:10, …) starts inside the minute 11:00: that minute belongs to the range
    # before it, so the record at 11:00:20 is not in this one, and is in [10:59:30, 11:00:10).
    assert count(datetime(2026, 11, 20, 11, 0, 10, tzinfo=UTC), NOW) == 0
    assert count(datetime(2026, 11, 20, 10, 59, 30, tzinfo=UTC), at - timedelta(seconds=10)) == 1
    assert count(datetime(2026, 11, 20, 11, 0, tzinfo=UTC), NOW) == 1


@override_settings(USAGE_BUCKETS=False)
def test_with_aggregates_off_ingestion_writes_none_and_pages_read_records():
    org = make_org(tier="enterprise")
    grant_credits(org=org, amount="1000")
    record = {
        "id": "q",
        "kind": "query",
        "model": "llama-3.1-8b",
        "occurred_at": iso(NOW - timedelta(minutes=3)),
        "input_tokens": 4,
        "output_tokens": 1,
    }
    usage_records_ingest(org=org, records=[record])
    assert not QueryBucket.objects.filter(organization=org).exists()
    [model] = sel.queries_by_model(org=org, start=NOW - timedelta(hours=1), end=NOW)
    assert model.total_tokens == 5


def test_overlapping_worker_sessions_fill_each_minute_they_run_through():
    """Figures worked out by hand: a session's first minute has its start, its part of
    the minute and its credits; every minute after has it carried in, with the time it
    ran there; one of zero length counts where it starts."""
    org = make_org(tier="enterprise")
    grant_credits(org=org, amount="1000")
    base = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

    def session(name: str, start: timedelta, end: timedelta) -> dict:
        return {
            "id": name,
            "kind": "worker_session",
            "model": "llama-3.1-8b",
            "started_at": iso(base + start),
            "ended_at": iso(base + end),
        }

    usage_records_ingest(
        org=org,
        records=[
            session("a", timedelta(seconds=30), timedelta(minutes=4)),  # 10:00:30-10:04
            session("b", timedelta(minutes=1, seconds=15), timedelta(minutes=3, seconds=5)),
            session("c", timedelta(minutes=2, seconds=10), timedelta(minutes=2, seconds=10)),
        ],
    )
    rows = {
        row.bucket.astimezone(UTC).strftime("%H:%M"): (
            row.sessions_started,
            row.sessions_carried_in,
            row.runtime,
        )
        for row in WorkerBucket.objects.filter(organization=org)
    }
    s = timedelta(seconds=1)
    assert rows == {
        "10:00": (1, 0, 30 * s),  # a starts
        "10:01": (1, 1, 60 * s + 45 * s),  # a through, b starts
        "10:02": (1, 2, 60 * s + 60 * s),  # a and b through, c starts and stops
        "10:03": (0, 2, 60 * s + 5 * s),  # a through, b ends at :05
    }
    credits = WorkerBucket.objects.filter(organization=org).values_list("credits", flat=True)
    assert sum(credits) == sum(
        WorkerSession.objects.filter(organization=org).values_list("credits", flat=True)
    )
