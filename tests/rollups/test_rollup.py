"""Daily rollups: rollups plus raw records give exactly what raw records alone give;
recomputation is idempotent; late records and job moves restate closed days."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.services.ingest import usage_records_ingest
from ingest.services.jobs import job_transition
from insights.selectors import finance as finance_selectors
from insights.selectors import panel as sel
from insights.selectors import panel_controllers, panel_keys
from insights.selectors import summaries as summaries_selectors
from rollups.models import JobDaily, QueryDaily, Restatement, RollupHour, RollupState, WorkerDaily
from rollups.selectors.coverage import raw_only, rollup_coverage
from rollups.services.build import KINDS
from rollups.services.days import rollup_day, rollup_due
from rollups.services.hours import rollup_hour
from rollups.tasks import rollup_sweep
from tests.factories import (
    grant_credits,
    make_api_key,
    make_controller,
    make_job,
    make_org,
    make_query,
    make_worker_session,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
MODELS = ["llama-3.1-8b", "llama-3.1-70b", "e5-large-v2"]


def rows_of(org) -> dict[str, list]:
    """Every rollup row of the organization without its surrogate id, in a stable order."""
    out = {}
    for kind in KINDS:
        rows = kind.model.objects.filter(organization=org).values("day", *kind.dimensions)
        rows = rows.values(*[f.name for f in kind.model._meta.fields if f.name != "id"])
        out[kind.name] = sorted((tuple(sorted(r.items())) for r in rows), key=repr)
    return out


def figures(org, start, end, coverage) -> dict:
    """Every figure the panel and main page show for [start, end), through `coverage`."""
    tz = org.time_zone
    return {
        "overview": sel.jobs_overview(org=org, start=start, end=end, coverage=coverage),
        "keys": panel_keys.api_key_activity(org=org, start=start, end=end, coverage=coverage),
        "controllers": panel_controllers.controller_load(
            org=org, start=start, end=end, now=NOW, coverage=coverage
        ),
        "models": sel.queries_by_model(org=org, start=start, end=end, coverage=coverage),
        "spend": finance_selectors.credits_by_model(
            org=org, start=start, end=end, coverage=coverage
        ),
        "endpoints": sel.top_endpoints(org=org, start=start, end=end, coverage=coverage),
        "members": sel.usage_by_member(org=org, start=start, end=end, coverage=coverage),
        "trend": sel.token_trend(org=org, start=start, end=end, tz=tz, coverage=coverage),
        "runtime": summaries_selectors.worker_runtime_by_model(
            org=org, start=start, end=end, coverage=coverage
        ),
        "timeline": sel.job_timeline(org=org, now=NOW, tz=tz, coverage=coverage),
        "month": sel.tokens_month_to_date(org=org, now=NOW, tz=tz, coverage=coverage),
        "summaries": summaries_selectors.usage_summaries(
            org=org, now=NOW, tz=tz, coverage=coverage
        ),
    }


# Record times: minutes from 8 days before NOW to 1 hour after it (the open day and a
# little of the clock-skew future included).
minutes = st.integers(min_value=-8 * 24 * 60, max_value=60)
job_st = st.tuples(
    minutes,
    st.sampled_from(["submitted", "running", "completed", "failed", "cancelled"]),
    st.sampled_from([None, "k1", "k2"]),
    st.sampled_from([None, "c1"]),
    st.integers(0, 40),
)
query_st = st.tuples(
    minutes,
    st.sampled_from(MODELS),
    st.integers(0, 500),
    st.integers(0, 500),
    st.sampled_from(["", "/v1/chat/completions", "/v1/embeddings"]),
    st.sampled_from(["", "ana@example.com", "bo@example.com"]),
    st.sampled_from([None, "k1"]),
)
session_st = st.tuples(minutes, st.integers(0, 3 * 24 * 60), st.sampled_from(MODELS))
window_st = st.tuples(
    st.one_of(st.none(), minutes), st.integers(min_value=0, max_value=9 * 24 * 60)
)
# Windows on the organization's hour grid (hours from the open day's first instant, then
# a length in hours), nudged off it by a few minutes or not: windows starting and ending
# on hour edges, inside an hour, at midnight, in the open day's current hour.
edge_window_st = st.tuples(
    st.integers(min_value=-8 * 24, max_value=13),
    st.integers(min_value=0, max_value=9 * 24),
    st.sampled_from([0, 0, 1, 30, -1]),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tz=st.sampled_from(ZONES),
    jobs=st.lists(job_st, max_size=12),
    queries=st.lists(query_st, max_size=12),
    sessions=st.lists(session_st, max_size=6),
    windows=st.lists(window_st, min_size=1, max_size=2),
    edge_windows=st.lists(edge_window_st, min_size=1, max_size=2),
    left_dirty=st.sets(st.integers(1, 8), max_size=3),
    dirty_hours=st.sets(st.integers(0, 47), max_size=3),
)
def test_rollups_plus_raw_equal_raw_alone(
    tz, jobs, queries, sessions, windows, edge_windows, left_dirty, dirty_hours
):
    with transaction.atomic():
        org = make_org(time_zone=tz)
        keys = {"k1": make_api_key(org=org, name="k1")[0], "k2": make_api_key(org=org)[0]}
        controllers = {"c1": make_controller(org=org, name="c1")[0]}
        for at, status, key, controller, tenths in jobs:
            make_job(
                org=org,
                submitted_at=NOW + timedelta(minutes=at),
                status=status,
                api_key=keys.get(key),
                controller=controllers.get(controller),
                core_hours=D(tenths) / 10,
                credits=D(tenths) / 100,
            )
        for at, model, tokens_in, tokens_out, endpoint, member, key in queries:
            make_query(
                org=org,
                occurred_at=NOW + timedelta(minutes=at),
                model=model,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                endpoint=endpoint,
                member=member,
                api_key=keys.get(key),
                credits=D(tokens_in + tokens_out) / 1000,
            )
        for at, length, model in sessions:
            started = min(NOW + timedelta(minutes=at), NOW)
            make_worker_session(
                org=org,
                started_at=started,
                ended_at=min(started + timedelta(minutes=length), NOW),
                model=model,
            )
        today = rollup_coverage(org=org).today
        for back in range(1, 10):
            rollup_day(org=org, day=today - timedelta(days=back))
        # The open day's finished hours, as the hourly beat leaves them.
        today_start = sel.local_day_start(today, tz=tz)
        for hour in range(int((NOW - today_start) / timedelta(hours=1))):
            rollup_hour(org=org, day=today, hour=hour)
        # Some days and hours stay dirty (as after late records): they must be read raw.
        RollupState.objects.filter(
            organization=org, day__in=[today - timedelta(days=n) for n in left_dirty]
        ).update(dirty=True)
        recent = list(
            RollupHour.objects.filter(organization=org, day__gte=today - timedelta(days=1))
            .order_by("day", "hour")
            .values_list("pk", flat=True)
        )
        RollupHour.objects.filter(pk__in=[recent[n % len(recent)] for n in dirty_hours]).update(
            dirty=True
        )
        coverage = rollup_coverage(org=org)
        assert len(coverage.clean_days) == 9 - len(left_dirty)
        assert coverage.clean_hours
        ranges = []
        for start_minutes, length in windows:
            start = None if start_minutes is None else NOW + timedelta(minutes=start_minutes)
            ranges.append((start, (start or NOW - timedelta(days=8)) + timedelta(minutes=length)))
        for start_hours, length, nudge in edge_windows:
            start = today_start + timedelta(hours=start_hours, minutes=nudge)
            ranges.append((start, start + timedelta(hours=length)))
        for start, end in ranges:
            assert figures(org, start, end, coverage) == figures(org, start, end, raw_only(org=org))
        transaction.set_rollback(True)


@pytest.mark.parametrize("tz", ZONES)
def test_whole_day_windows_read_only_rollups_for_closed_days(tz):
    org = make_org(time_zone=tz)
    day_start = sel.local_day_start(date(2026, 11, 18), tz=tz)
    make_query(org=org, occurred_at=day_start + timedelta(hours=3), input_tokens=5)
    rollup_day(org=org, day=date(2026, 11, 18))
    split = rollup_coverage(org=org).split(day_start, day_start + timedelta(days=1))
    assert split.days == [(date(2026, 11, 18), date(2026, 11, 19))]
    assert split.raw == []
    # The rollup answers even with the raw record gone (proof it is not read).
    org_queries = sel.Query.objects.filter(organization=org)
    org_queries.delete()
    models = sel.queries_by_model(org=org, start=day_start, end=day_start + timedelta(days=1))
    assert [(m.model, m.input_tokens) for m in models] == [("llama-3.1-8b", 5)]


def test_recomputing_twice_gives_identical_rows_and_no_restatement():
    org = make_org()
    make_job(org=org, submitted_at=NOW - timedelta(days=2), core_hours="2", credits="0.3")
    make_query(org=org, occurred_at=NOW - timedelta(days=2), endpoint="/x", member="m")
    make_worker_session(
        org=org, started_at=NOW - timedelta(days=3, hours=1), ended_at=NOW - timedelta(days=2)
    )
    day = date(2026, 11, 18)
    rollup_day(org=org, day=day)
    first = rows_of(org)
    # A job row, a worker row, and the query's detail, model, endpoint and member rows
    # for the day; its hours' rows besides (the day is among the hours kept).
    day_rows = [r for rows in first.values() for r in rows if dict(r)["hour"] is None]
    assert len(day_rows) == 6
    assert sum(len(rows) for rows in first.values()) > 6
    rollup_day(org=org, day=day)
    assert rows_of(org) == first
    assert not Restatement.objects.exists()
    worker = WorkerDaily.objects.get(organization=org, hour=None)
    assert (worker.sessions_carried_in, worker.runtime) == (1, timedelta(hours=12))


def test_a_late_record_for_a_closed_day_changes_it_after_the_next_run_and_is_restated():
    org = make_org()
    grant_credits(org=org, amount="100")
    day = date(2026, 11, 18)
    record = {
        "kind": "query",
        "occurred_at": "2026-11-18T10:00:00Z",
        "model": "llama-3.1-8b",
        "input_tokens": 100,
        "output_tokens": 50,
        "endpoint": "/v1/chat/completions",
    }
    usage_records_ingest(org=org, records=[record | {"id": "q-1"}])
    assert RollupState.objects.get(organization=org, day=day).dirty
    rollup_sweep.delay()
    assert (
        QueryDaily.objects.get(organization=org, day=day, hour=None, dimension="model").queries == 1
    )
    assert not RollupState.objects.get(organization=org, day=day).dirty

    # The late record: the day is dirty again and read raw until the next run.
    usage_records_ingest(org=org, records=[record | {"id": "q-late", "input_tokens": 7}])
    assert RollupState.objects.get(organization=org, day=day).dirty
    assert (
        QueryDaily.objects.get(organization=org, day=day, hour=None, dimension="model").queries == 1
    )
    start = datetime(2026, 11, 18, tzinfo=UTC)
    total = sel.queries_by_model(org=org, start=start, end=start + timedelta(days=1))
    assert total[0].queries == 2  # exact meanwhile (the dirty day is read raw)

    rollup_sweep.delay()
    daily = QueryDaily.objects.get(organization=org, day=day, hour=None, dimension="model")
    assert (daily.queries, daily.input_tokens, daily.output_tokens) == (2, 107, 100)
    # One restatement per changed dimension: the detail row, the model, endpoint, member.
    assert Restatement.objects.filter(organization=org, day=day).count() == 4
    restated = Restatement.objects.get(organization=org, day=day, dimension__dimension="model")
    assert restated.kind == "query"
    assert restated.before["queries"] == 1 and restated.after["queries"] == 2
    assert restated.before["input_tokens"] == 100 and restated.after["input_tokens"] == 107


def test_a_job_moving_forward_marks_its_submission_day_dirty():
    org = make_org()
    grant_credits(org=org, amount="100")
    job = {
        "id": "j-1",
        "kind": "job",
        "status": "running",
        "cores": 2,
        "submitted_at": "2026-11-18T08:00:00Z",
        "started_at": "2026-11-18T08:00:00Z",
    }
    usage_records_ingest(org=org, records=[job])
    rollup_sweep.delay()
    assert JobDaily.objects.get(organization=org, hour=None).running == 1
    job_transition(org=org, client_id="j-1", status="completed")
    assert RollupState.objects.get(organization=org, day=date(2026, 11, 18)).dirty
    overview = sel.jobs_overview(org=org, start=None, end=NOW)
    assert (overview.running, overview.completed) == (0, 1)
    rollup_sweep.delay()
    daily = JobDaily.objects.get(organization=org, hour=None)
    # 52 hours on 2 cores.
    assert (daily.running, daily.completed, daily.core_hours) == (0, 1, D("104"))
    assert Restatement.objects.filter(organization=org, kind="job").count() == 1


def test_records_for_the_open_day_mark_nothing():
    org = make_org()
    grant_credits(org=org, amount="100")
    usage_records_ingest(
        org=org,
        records=[
            {
                "id": "m-1",
                "kind": "matching",
                "task": "IDR",
                "num_records": 10,
                "started_at": "2026-11-20T08:00:00Z",
                "ended_at": "2026-11-20T08:01:00Z",
            }
        ],
    )
    assert not RollupState.objects.filter(organization=org).exists()


def test_the_sweep_rolls_up_each_organizations_yesterday_in_its_own_zone(frozen):
    tokyo = make_org(time_zone="Asia/Tokyo")  # 20 Nov 21:00 there
    honolulu = make_org(time_zone="Pacific/Honolulu")  # 20 Nov 02:00 there
    due = {(org_id, day) for org_id, day in rollup_due() if org_id in {tokyo.pk, honolulu.pk}}
    assert due == {(tokyo.pk, date(2026, 11, 19)), (honolulu.pk, date(2026, 11, 19))}
    rollup_sweep.delay()
    assert not {(o, d) for o, d in rollup_due() if o in {tokyo.pk, honolulu.pk}}
    state = RollupState.objects.get(organization=tokyo)
    assert (state.day, state.time_zone, state.dirty) == (date(2026, 11, 19), "Asia/Tokyo", False)


def test_a_changed_time_zone_reads_raw_until_recomputed():
    org = make_org(time_zone="UTC")
    make_query(org=org, occurred_at=datetime(2026, 11, 18, 2, tzinfo=UTC))
    rollup_day(org=org, day=date(2026, 11, 18))
    org.time_zone = "America/New_York"
    org.save()
    assert rollup_coverage(org=org).clean_days == ()
    assert (org.pk, date(2026, 11, 18)) in rollup_due()
    # In New York the query happened on the 17th.
    trend = sel.token_trend(
        org=org, start=datetime(2026, 11, 15, tzinfo=UTC), end=NOW, tz=org.time_zone
    )
    assert trend.tokens["llama-3.1-8b"][trend.days.index(date(2026, 11, 17))] == 30
    rollup_sweep.delay()
    state = RollupState.objects.get(organization=org, day=date(2026, 11, 18))
    assert (state.time_zone, state.dirty) == ("America/New_York", False)
    assert date(2026, 11, 18) in rollup_coverage(org=org).clean_days
    assert not QueryDaily.objects.filter(organization=org, day=date(2026, 11, 18)).exists()


def test_the_open_day_cannot_be_rolled_up():
    with pytest.raises(ValueError, match="not closed"):
        rollup_day(org=make_org(), day=date(2026, 11, 20))


def test_the_rollup_command_recomputes_a_range_with_progress(capsys):
    org = make_org(slug="acme")
    make_query(org=org, occurred_at=datetime(2026, 11, 10, 5, tzinfo=UTC))
    call_command("rollup", "--from", "2026-11-09", "--to", "2026-11-21", "--org", "acme")
    out = capsys.readouterr().out
    assert "11/11" in out and "skipped 2 not closed yet" in out
    assert RollupState.objects.filter(organization=org, dirty=False).count() == 11
    assert set(QueryDaily.objects.filter(organization=org).values_list("day", flat=True)) == {
        date(2026, 11, 10)
    }
    call_command("rollup", "--day", "2026-11-10", "--org", "acme")
    assert "4 rows, 0 restatements" in capsys.readouterr().out
