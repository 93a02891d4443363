"""The charts' figures: tick labels at bucket starts in the organization's zone, one
colour per series shown (the smallest past the palette folded into "Other"), a unit on
every value axis."""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal as D

from billing.charts import usage_debits_by_month_figure
from billing.selectors import MonthDebits
from insights.charts import (
    OTHER_COLOUR,
    SERIES_COLOURS,
    explore_figure,
    timeline_figure,
    token_trend_figure,
)
from insights.selectors.panel import JobDay, TokenTrend


@dataclass
class _Group:
    label: str
    series: tuple


@dataclass
class _Report:
    """What explore_figure reads of a UsageReport."""

    buckets: tuple
    groups: list
    tz: str = "America/New_York"
    bucket: str = "1mo"
    metric: str = "credits"
    integral: bool = False


def _monthly_from_1_september() -> _Report:
    # Local month starts in New York (EDT until 1 Nov, EST after), as UTC instants.
    starts = [
        datetime(2026, 9, 1, 4, tzinfo=UTC),
        datetime(2026, 10, 1, 4, tzinfo=UTC),
        datetime(2026, 11, 1, 4, tzinfo=UTC),
        datetime(2026, 12, 1, 5, tzinfo=UTC),
    ]
    buckets = tuple(zip(starts, [*starts[1:], datetime(2026, 12, 8, 5, tzinfo=UTC)], strict=True))
    return _Report(buckets=buckets, groups=[_Group("llama-3.1-8b", (D(1), D(2), D(3), D(4)))])


def test_a_monthly_chart_from_1_september_labels_each_bar_with_its_month():
    figure = explore_figure(_monthly_from_1_september())
    xaxis = figure["layout"]["xaxis"]
    assert xaxis["ticktext"] == ["Sep 2026", "Oct 2026", "Nov 2026", "Dec 2026"]
    # Each label is the x of its bar: September's bar carries the "Sep" tick.
    bar = figure["data"][0]
    assert list(bar["x"]) == list(xaxis["tickvals"])
    assert list(bar["x"]) == ["September 2026", "October 2026", "November 2026", "December 2026"]
    assert list(bar["y"]) == [1.0, 2.0, 3.0, 4.0]


def test_hourly_and_daily_ticks_are_local_bucket_starts_and_at_most_eight():
    hours = [datetime(2026, 11, 1, h, tzinfo=UTC) for h in range(3, 9)]
    report = _Report(
        buckets=tuple((h, h.replace(hour=h.hour + 1)) for h in hours),
        groups=[_Group("a", (D(1),) * 6)],
        bucket="1h",
    )
    xaxis = explore_figure(report)["layout"]["xaxis"]
    # 03:00 UTC is 23:00 EDT on 31 Oct; 05:00 and 06:00 UTC are both 01:00 (DST ends):
    # the hover labels keep them apart with their offsets.
    assert xaxis["ticktext"] == [
        "31 Oct 23:00",
        "1 Nov 00:00",
        "1 Nov 01:00",
        "1 Nov 01:00",
        "1 Nov 02:00",
        "1 Nov 03:00",
    ]
    assert len(set(xaxis["tickvals"])) == 6
    days = [date(2026, 11, d) for d in range(1, 31)]
    daily = timeline_figure([JobDay(day=d) for d in days])["layout"]["xaxis"]
    assert len(daily["ticktext"]) <= 8
    assert daily["ticktext"][:2] == ["1 Nov", "5 Nov"]


def test_every_series_shown_has_its_own_colour_and_the_rest_are_other():
    groups = [_Group(f"model-{n}", (D(20 - n),)) for n in range(10)]
    report = _Report(buckets=_monthly_from_1_september().buckets[:1], groups=groups)
    data = explore_figure(report)["data"]
    colours = [trace["marker"]["color"] for trace in data]
    assert len(data) == len(SERIES_COLOURS) + 1
    assert len(set(colours[:-1])) == len(SERIES_COLOURS)
    assert colours[-1] == OTHER_COLOUR
    # The three smallest (model-7: 13, model-8: 12, model-9: 11) are added up.
    assert data[-1]["name"] == "Other (3 groups)" and list(data[-1]["y"]) == [36.0]
    # The three the issue saw in one light blue: three colours.
    trend = TokenTrend(
        days=[date(2026, 12, 1)],
        models=["phi-3-mini", "e5-large-v2", "(no model)"],
        tokens={"phi-3-mini": [3], "e5-large-v2": [2], "(no model)": [1]},
    )
    traces = token_trend_figure(trend)["data"]
    assert len({t["marker"]["color"] for t in traces}) == 3
    assert [t["meta"] for t in traces] == ["series-0", "series-1", "series-2"]


def test_every_value_axis_has_a_unit():
    assert explore_figure(_monthly_from_1_september())["layout"]["yaxis"]["title"]["text"] == (
        "Credits"
    )
    report = _monthly_from_1_september()
    report.metric = "worker_runtime"
    assert explore_figure(report)["layout"]["yaxis"]["title"]["text"] == ("Worker runtime (hours)")
    timeline = timeline_figure([JobDay(day=date(2026, 12, 1))])["layout"]
    assert timeline["yaxis"]["title"]["text"] == "Jobs"
    assert timeline["yaxis2"]["title"]["text"] == "Core-hours"
    trend = TokenTrend(days=[date(2026, 12, 1)], models=["m"], tokens={"m": [1]})
    assert token_trend_figure(trend)["layout"]["yaxis"]["title"]["text"] == "Tokens"
    month = usage_debits_by_month_figure([MonthDebits(month=date(2026, 9, 1), credits=D("1.5"))])
    assert month["layout"]["yaxis"]["title"]["text"] == "Credits"
    assert month["layout"]["xaxis"]["type"] == "category"


def test_legends_sit_above_the_plot_away_from_the_ticks():
    layout = timeline_figure([JobDay(day=date(2026, 12, 1))])["layout"]
    assert layout["legend"]["yanchor"] == "bottom" and layout["legend"]["y"] >= 1
