"""Rollup rows and bucket aggregates carry the project (docs/projects.md): records sent
through three projects' keys (and a keyless job on a controller of a fourth) sum per
project, in the buckets and in the day and hour rollups, to what that project's records
alone give; the projects together equal the organization; a recompute changes nothing."""

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ingest.services.ingest import usage_records_ingest
from rollups.models import (
    JobBucket,
    JobDaily,
    MatchingBucket,
    MatchingDaily,
    QueryBucket,
    QueryDaily,
    Restatement,
    WorkerBucket,
    WorkerDaily,
)
from rollups.services.days import rollup_day
from tests.factories import grant_credits, make_api_key, make_controller, make_org, make_project
from usage.models import Job, MatchingRun, Query, WorkerSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

DAY = date(2026, 11, 19)  # closed at the frozen now (2026-11-20)


def _records(n: int) -> list[dict]:
    at = datetime(2026, 11, 19, 9 + n, 15, tzinfo=UTC).isoformat()
    end = datetime(2026, 11, 19, 10 + n, 45, tzinfo=UTC).isoformat()
    return [
        {"id": f"q-{n}", "kind": "query", "occurred_at": at, "model": "llama-3.1-8b",
         "input_tokens": 100 * (n + 1), "output_tokens": 7 * (n + 1)},
        {"id": f"q-{n}b", "kind": "query", "occurred_at": at, "model": "llama-3.1-70b",
         "input_tokens": 11, "output_tokens": 13 * (n + 1), "member": "ana@example.com"},
        {"id": f"w-{n}", "kind": "worker_session", "model": "phi-3-mini",
         "started_at": at, "ended_at": end},
        {"id": f"m-{n}", "kind": "matching", "task": "IDR", "num_records": 1000 * (n + 1),
         "started_at": at, "ended_at": at},
        {"id": f"j-{n}", "kind": "job", "status": "completed", "cores": n + 1,
         "submitted_at": at, "started_at": at, "ended_at": end},
    ]  # fmt: skip


@pytest.fixture
def sent():
    """An organization whose usage came through three projects' keys, plus a keyless
    job on a controller of a fourth project; returns (org, projects)."""
    org = make_org()
    grant_credits(org=org, amount="1000")
    projects = [make_project(org=org, name=f"P{n}") for n in range(4)]
    for n, project in enumerate(projects[:3]):
        key, _ = make_api_key(org=org, project=project)
        usage_records_ingest(org=org, records=_records(n), api_key=key)
    make_controller(org=org, name="dgx", project=projects[3])
    job = {**_records(3)[-1], "id": "j-ctl", "controller": "dgx"}
    usage_records_ingest(org=org, records=[job], api_key=None)
    return org, projects


def _independent(org) -> dict[int, dict[str, Decimal]]:
    """Per project, straight from the records."""
    out: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for q in Query.objects.filter(organization=org):
        out[q.project_id]["queries"] += 1
        out[q.project_id]["tokens"] += q.total_tokens
        out[q.project_id]["query_credits"] += q.credits
    for w in WorkerSession.objects.filter(organization=org):
        out[w.project_id]["worker_credits"] += w.credits
    for m in MatchingRun.objects.filter(organization=org):
        out[m.project_id]["records_matched"] += m.num_records
    for j in Job.objects.filter(organization=org):
        out[j.project_id]["jobs"] += 1
        out[j.project_id]["core_hours"] += j.core_hours
    return out


def _from(query, job, worker, matching) -> dict[int, dict[str, Decimal]]:
    out: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in query.filter(dimension="detail"):
        out[r.project_id]["queries"] += r.queries
        out[r.project_id]["tokens"] += r.total_tokens
        out[r.project_id]["query_credits"] += r.credits
    for r in worker:
        out[r.project_id]["worker_credits"] += r.credits
    for r in matching:
        out[r.project_id]["records_matched"] += r.num_records
    for r in job:
        out[r.project_id]["jobs"] += r.submitted
        out[r.project_id]["core_hours"] += r.core_hours
    return out


def _by_model(org, **rows) -> dict[tuple[int, int], int]:
    """Queries per (project, model) from the "model" dimension rows."""
    out: dict[tuple[int, int], int] = defaultdict(int)
    for r in QueryDaily.objects.filter(organization=org, dimension="model", **rows):
        out[(r.project_id, r.model_id)] += r.queries
    return dict(out)


def _clean(figures: dict) -> dict:
    return {p: {k: v for k, v in f.items() if v} for p, f in figures.items()}


def test_buckets_carry_each_records_project(sent):
    org, projects = sent
    expected = _clean(_independent(org))
    assert set(expected) == {p.pk for p in projects}  # every project has usage
    by = {"organization": org}
    buckets = _from(
        QueryBucket.objects.filter(**by),
        JobBucket.objects.filter(**by),
        WorkerBucket.objects.filter(**by),
        MatchingBucket.objects.filter(**by),
    )
    assert _clean(buckets) == expected
    # The keyless job sits in its controller's project only.
    assert expected[projects[3].pk] == {"jobs": 1, "core_hours": Decimal("6")}  # 4 cores × 1.5 h


def test_day_and_hour_rollups_carry_it_and_a_recompute_changes_nothing(sent):
    org, projects = sent
    expected = _clean(_independent(org))
    result = rollup_day(org=org, day=DAY)
    assert result.bucket_rows_restated == 0  # ingestion kept the buckets exact, per project
    day = {"organization": org, "day": DAY, "hour": None}
    days = _from(
        QueryDaily.objects.filter(**day),
        JobDaily.objects.filter(**day),
        WorkerDaily.objects.filter(**day),
        MatchingDaily.objects.filter(**day),
    )
    assert _clean(days) == expected
    hours = {"organization": org, "day": DAY, "hour__isnull": False}
    assert _clean(
        _from(
            QueryDaily.objects.filter(**hours),
            JobDaily.objects.filter(**hours),
            WorkerDaily.objects.filter(**hours).none(),  # sessions span hours: not summed
            MatchingDaily.objects.filter(**hours),
        )
    ) == {p: {k: v for k, v in f.items() if k != "worker_credits"} for p, f in expected.items()}
    # The per-model rows are per project too, and sum to the detail rows.
    detail: dict[tuple[int, int], int] = defaultdict(int)
    for r in QueryDaily.objects.filter(dimension="detail", **day):
        detail[(r.project_id, r.model_id)] += r.queries
    assert _by_model(org, day=DAY, hour=None) == dict(detail)
    assert len({project for project, _model in detail}) == 3

    rollup_day(org=org, day=DAY)
    assert not Restatement.objects.filter(organization=org).exists()
