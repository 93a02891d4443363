"""The usage explorer's figures against sums worked out by hand.

The organization is in New York, where DST ended on 2026-11-01 at 02:00 (01:00-02:00
happened twice). The range starts and ends mid-hour, crosses that change and the
October/November month boundary. Every expected figure below is added up by hand
from the explorer_seeded records, and each case runs twice: on raw records only, and with the
days (and the hours of the DST night) rolled up.
"""

from datetime import UTC, date, datetime

import pytest
from django.db import connection

from insights.selectors.explorer import usage_report
from rollups.selectors.coverage import raw_only
from rollups.services.days import rollup_day
from rollups.services.hours import rollup_hour
from tests.insights.explorer_seed import END, NOW, START, D

pytestmark = pytest.mark.django_db


def _roll_up(org):
    for day in (date(2026, 10, 29), date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1)):
        rollup_day(org=org, day=day)
    rollup_day(org=org, day=date(2026, 11, 2))
    for hour in range(5):
        rollup_hour(org=org, day=date(2026, 11, 1), hour=hour)


@pytest.fixture(params=["raw", "rollups"])
def source(request, explorer_seeded):
    if request.param == "rollups":
        _roll_up(explorer_seeded["org"])
    return request.param


def _report(explorer_seeded, source, **kwargs):
    org = explorer_seeded["org"]
    kwargs.setdefault("start", START)
    kwargs.setdefault("end", END)
    coverage = raw_only(org=org, now=NOW) if source == "raw" else None
    return usage_report(org=org, now=NOW, coverage=coverage, **kwargs)


def _by_label(report):
    return {g.label: g.total for g in report.groups}


def test_credits_per_local_day_across_dst_and_month_end(explorer_seeded, source):
    report = _report(explorer_seeded, source, metric="credits", bucket="1d")
    assert [lo for lo, _hi in report.buckets] == [
        START,
        datetime(2026, 11, 1, 4, tzinfo=UTC),  # midnight EDT
        datetime(2026, 11, 2, 5, tzinfo=UTC),  # midnight EST: Nov 1 had 25 hours
    ]
    (group,) = report.groups
    # Oct 31: 1.50 query + 0.48 job + 1.00 worker; Nov 1: 2.25 + 0.75 + 0.30; Nov 2: 0.10
    assert list(group.series) == [D("2.98"), D("3.30"), D("0.10")]
    assert report.total == D("6.38")
    assert report.previous_total == D("2.00")
    assert report.change == D("219.0")


@pytest.mark.parametrize(
    ("metric", "group_by", "filters", "expected"),
    [
        (
            "credits",
            ("kind",),
            {},
            {"Queries": D("4.60"), "Jobs": D("0.78"), "Worker sessions": D("1.00")},
        ),
        (
            "credits",
            ("model",),
            {},
            {"llama-3.1-8b": D("3.35"), "llama-3.1-70b": D("2.25"), "(no model)": D("0.78")},
        ),
        ("tokens", ("member",), {}, {"ana@x.example": 121, "bo@x.example": 220, "(no member)": 55}),
        ("input_tokens", ("endpoint",), {}, {"/v1/chat": 100, "(no endpoint)": 260}),
        ("queries", (), {}, {"All usage": 4}),
        ("jobs", ("controller",), {}, {"dgx-01": 1, "Managed": 1}),
        ("core_hours", ("controller",), {}, {"dgx-01": D("2.5"), "Managed": D("4")}),
        ("worker_runtime", ("model",), {}, {"llama-3.1-8b": D("2")}),
        ("credits", (), {"api_key": "a"}, {"All usage": D("2.90")}),
        ("credits", ("kind",), {"controller": "dgx"}, {"Jobs": D("0.30")}),
        ("credits", ("model",), {"kind": ["query"], "model": "70b"}, {"llama-3.1-70b": D("2.25")}),
    ],
)
def test_metric_by_grouping_with_filters(
    explorer_seeded, source, metric, group_by, filters, expected
):
    resolved = {}
    for dim, value in filters.items():
        if dim in ("api_key", "controller"):
            resolved[dim] = [explorer_seeded[value].pk]
        elif dim == "model":
            from billing.models import PriceModel

            resolved[dim] = [PriceModel.objects.get(name=f"llama-3.1-{value}").pk]
        else:
            resolved[dim] = value
    report = _report(explorer_seeded, source, metric=metric, group_by=group_by, filters=resolved)
    assert _by_label(report) == expected


def test_keys_are_labelled_by_name_and_masked_secret_and_unattributed(explorer_seeded, source):
    report = _report(
        explorer_seeded,
        source,
        metric="credits",
        group_by=("api_key",),
        filters={"kind": ["query"]},
    )
    got = _by_label(report)
    a, b = explorer_seeded["a"], explorer_seeded["b"]
    assert got == {
        f"Alpha ({a.display})": D("1.60"),
        f"Beta ({b.display})": D("2.25"),
        "Unattributed": D("0.75"),
    }
    shares = {g.label: g.share for g in report.groups}
    assert shares[f"Beta ({b.display})"] == D("48.9")  # 2.25 / 4.60


def test_hours_across_the_repeated_hour_keep_both_0130s_apart(explorer_seeded, source):
    # 2026-11-01 00:15 EDT to 03:00 EST: 00:15-01:00, 01:00 EDT, 01:00 EST, 02:00 EST.
    start = datetime(2026, 11, 1, 4, 15, tzinfo=UTC)
    end = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    tokens = _report(explorer_seeded, source, metric="tokens", bucket="1h", start=start, end=end)
    assert len(tokens.buckets) == 4
    (group,) = tokens.groups
    assert list(group.series) == [0, 220, 55, 0]
    runtime = _report(
        explorer_seeded, source, metric="worker_runtime", bucket="1h", start=start, end=end
    )
    (group,) = runtime.groups
    assert list(group.series) == [D("0.75"), 0, 0, 0]


def test_weeks_and_months_are_local_calendar_buckets(explorer_seeded, source):
    weekly = _report(explorer_seeded, source, metric="credits", bucket="1w")
    # Sat Oct 31 starts the range; Monday Nov 2 (00:00 EST) starts the next week.
    assert [lo for lo, _ in weekly.buckets] == [START, datetime(2026, 11, 2, 5, tzinfo=UTC)]
    assert list(weekly.groups[0].series) == [D("6.28"), D("0.10")]
    monthly = _report(explorer_seeded, source, metric="credits", bucket="1mo")
    assert [lo for lo, _ in monthly.buckets] == [START, datetime(2026, 11, 1, 4, tzinfo=UTC)]
    assert list(monthly.groups[0].series) == [D("2.98"), D("3.40")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bucket": "5m"}, "bucket must be one of"),
        ({"end": START}, "end must be after start"),
        ({"bucket": "1h", "start": datetime(2026, 9, 1, tzinfo=UTC)}, "up to 31 days"),
        ({"metric": "dollars"}, "metric must be one of"),
        ({"group_by": ("team",)}, "group_by must be among"),
    ],
)
def test_bad_parameters_say_which(explorer_seeded, kwargs, message):
    kwargs.setdefault("metric", "credits")
    with pytest.raises(ValueError, match=message):
        _report(explorer_seeded, "raw", **kwargs)


def test_a_year_by_day_grouped_by_model_costs_a_bounded_number_of_queries(
    explorer_seeded, django_assert_max_num_queries
):
    _roll_up(explorer_seeded["org"])
    # On PostgreSQL the report runs in a transaction of its own (its statement timeout):
    # inside the test's, that is a savepoint and its release.
    transaction = 2 if connection.vendor == "postgresql" else 0
    with django_assert_max_num_queries(16 + transaction):
        report = usage_report(
            org=explorer_seeded["org"],
            start=datetime(2025, 11, 20, 5, tzinfo=UTC),
            end=NOW,
            metric="credits",
            group_by=("model", "api_key"),
            bucket="1d",
            now=NOW,
        )
    assert len(report.buckets) == 366
    # All seeded: the range's 6.38, the previous period's 2.00 and the 9.00 after END.
    assert report.total == D("17.38")
