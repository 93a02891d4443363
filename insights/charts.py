"""Plotly figures for the usage panel: pure functions from selector output to a figure dict.

Templates embed the dict with json_script; static/js/console.js draws it with the
plotly.js served from static/. template "none" keeps each figure a few kilobytes.
"""

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

from insights.selectors.panel import JobDay, TokenTrend
from insights.selectors.report_sources import METRICS

# The light palette's chart colours; console.js swaps traces marked with meta "accent" or
# "line" to the page's palette (dark mode), so these are only the no-script default.
BAR = "#2456d6"
LINE = "#b35c00"
# Series colours: Okabe–Ito's colour-blind-safe set without its black (unreadable in
# dark mode), yellow last (weakest on white). A chart with more groups than colours
# shows the largest and adds the rest up as "Other", in grey. Traces carry meta
# "series-N" / "other" and console.js gives them the page's --chart-series-N /
# --chart-other (static/css/console.css has the light and dark values), so these are
# the no-script default.
SERIES_COLOURS = ["#0072b2", "#e69f00", "#009e73", "#d55e00", "#56b4e9", "#cc79a7", "#f0e442"]
OTHER_COLOUR = "#8c939d"
# At most this many tick labels on a time axis (readable at 390 px).
MAX_TICKS = 8


def _layout(**extra) -> dict:
    return {
        "template": "none",
        "height": 300,
        "margin": {"l": 56, "r": 56, "t": 40, "b": 48},
        # Above the plot: the tick labels below never run into it, at any width.
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.02,
            "yanchor": "bottom",
            "traceorder": "normal",  # largest first, as the table reads
        },
        "hovermode": "x unified",
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, sans-serif", "size": 12},
        **extra,
    }


def series_colour(index: int) -> tuple[str, str]:
    """The colour and meta of the index-th series shown (distinct for every index
    below len(SERIES_COLOURS))."""
    return SERIES_COLOURS[index % len(SERIES_COLOURS)], f"series-{index % len(SERIES_COLOURS)}"


def fold_series(
    series: Sequence[tuple[str, Sequence]], *, size: int = len(SERIES_COLOURS)
) -> list[tuple[str, list, str, str]]:
    """[(name, values)] largest first as [(name, values, colour, meta)]: one colour each;
    past the palette's size, the smallest groups are one grey "Other" series."""
    shown = list(series)
    rest: list = []
    if len(shown) > size:
        shown, rest = shown[:size], shown[size:]
    out = [
        (name, list(values), *series_colour(index)) for index, (name, values) in enumerate(shown)
    ]
    if rest:
        summed = [sum(column) for column in zip(*(values for _name, values in rest), strict=True)]
        count = sum(_group_count(name) for name, _values in rest)
        label = f"Other ({count} group{'s' if count != 1 else ''})"
        out.append((label, summed, OTHER_COLOUR, "other"))
    return out


def _group_count(name: str) -> int:
    """How many groups a series stands for ("Other (12 groups)" from the report: 12)."""
    if name.startswith("Other (") and name.endswith(")"):
        number = name[len("Other (") :].split(" ")[0]
        if number.isdigit():
            return int(number)
    return 1


def _ticks(labels: Sequence[str], short: Sequence[str] | None = None) -> dict:
    """A category axis whose tick labels sit under the bar of each labelled bucket: every
    step-th bucket, from the first, at most MAX_TICKS of them."""
    short = list(short if short is not None else labels)
    step = max(1, -(-len(labels) // MAX_TICKS))
    picked = range(0, len(labels), step)
    return {
        "type": "category",
        "tickmode": "array",
        "tickvals": [labels[i] for i in picked],
        "ticktext": [short[i] for i in picked],
        "automargin": True,
    }


def _unique(labels: list[str], fallback: Sequence[str]) -> list[str]:
    """Labels as they are, or where two are the same (a DST hour twice), the fallback."""
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return [fallback[i] if seen[label] > 1 else label for i, label in enumerate(labels)]


def day_labels(days: Sequence[date]) -> list[str]:
    """A day per bucket, as the hover shows it ("Mon 7 Dec"; with the year across years)."""
    years = {d.year for d in days}
    fmt = "%a %-d %b" if len(years) <= 1 else "%a %-d %b %Y"
    return _unique([d.strftime(fmt) for d in days], [d.isoformat() for d in days])


def _short_day(day: date) -> str:
    return f"{day.day} {day:%b}"


def timeline_figure(days: Sequence[JobDay]) -> dict:
    """Daily submitted jobs as bars, core-hours as a line on a second y axis."""
    x = day_labels([d.day for d in days])
    most = max((d.submitted for d in days), default=0)
    # Jobs are whole: small counts get a tick per job rather than 0.5 steps.
    jobs_axis = {"dtick": 1} if most <= 6 else {}
    figure = go.Figure(
        data=[
            go.Bar(
                x=x,
                y=[d.submitted for d in days],
                name="Submitted jobs",
                marker={"color": BAR},
                meta="accent",
                hovertemplate="%{y:,} jobs<extra></extra>",
            ),
            go.Scatter(
                x=x,
                y=[round(float(d.core_hours), 2) for d in days],
                name="Core-hours",
                yaxis="y2",
                mode="lines+markers",
                line={"color": LINE, "width": 2},
                marker={"color": LINE},
                meta="line",
                hovertemplate="%{y:,.2f} core-hours<extra></extra>",
            ),
        ],
        layout=_layout(
            xaxis=_ticks(x, [_short_day(d.day) for d in days]),
            yaxis={
                "title": {"text": "Jobs"},
                "rangemode": "tozero",
                "gridcolor": "#eceff3",
                "tickformat": ",d",
                **jobs_axis,
            },
            yaxis2={
                "title": {"text": "Core-hours"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
                "tickmode": "auto",
                "nticks": 6,
                "tickformat": ",.3~f",
            },
            bargap=0.25,
        ),
    )
    return figure.to_plotly_json()


def token_trend_figure(trend: TokenTrend) -> dict:
    """Daily tokens per model, stacked bars (one trace per model, largest first)."""
    x = day_labels(trend.days)
    ranked = sorted(trend.models, key=lambda model: (-sum(trend.tokens[model]), model))
    folded = fold_series([(model, trend.tokens[model]) for model in ranked])
    figure = go.Figure(
        data=[
            go.Bar(
                x=x,
                y=values,
                name=name,
                marker={"color": colour},
                meta=meta,
                hovertemplate="%{y:,} tokens",
            )
            for name, values, colour, meta in folded
        ],
        layout=_layout(
            barmode="stack",
            xaxis=_ticks(x, [_short_day(d) for d in trend.days]),
            yaxis={
                "title": {"text": "Tokens"},
                "rangemode": "tozero",
                "gridcolor": "#eceff3",
                "tickformat": "~s",
            },
        ),
    )
    return figure.to_plotly_json()


# How each bucket width names its buckets: in the hover (whole) and under its tick.
_BUCKET_FORMATS = {
    "1h": ("%a %-d %b %H:%M", "%-d %b %H:%M"),
    "1d": ("%a %-d %b", "%-d %b"),
    "1w": ("Week of %-d %b", "%-d %b"),
    "1mo": ("%B %Y", "%b %Y"),
}


def bucket_labels(report) -> tuple[list[str], list[str]]:
    """Each bucket's start in the report's zone: (hover labels, tick labels). A bucket is
    named by where it starts, so the monthly bucket from 1 Sep is "Sep"."""
    zone = ZoneInfo(report.tz)
    starts = [lo.astimezone(zone) for lo, _hi in report.buckets]
    whole, short = _BUCKET_FORMATS[report.bucket]
    years = {s.year for s in starts}
    if len(years) > 1 and report.bucket in ("1d", "1w"):
        whole, short = whole + " %Y", short + " %Y"
    hover = _unique([s.strftime(whole) for s in starts], [s.isoformat() for s in starts])
    ticks = [s.strftime(short) for s in starts]
    return hover, ticks


def explore_figure(report) -> dict:
    """The explorer's groups stacked per bucket (insights.selectors.explorer.UsageReport)."""
    x, ticks = bucket_labels(report)
    fmt = ",d" if report.integral else ",.4~f"
    folded = fold_series([(g.label, [float(v) for v in g.series]) for g in report.groups])
    data = [
        go.Bar(
            x=x,
            y=values,
            name=name,
            marker={"color": colour},
            meta=meta,
            # The group name shows as the trace name; never inside the template.
            hovertemplate=f"%{{y:{fmt}}}",
        )
        for name, values, colour, meta in folded
    ]
    figure = go.Figure(
        data=data,
        layout=_layout(
            barmode="stack",
            xaxis=_ticks(x, ticks),
            yaxis={
                "title": {"text": METRICS[report.metric]},
                "rangemode": "tozero",
                "gridcolor": "#eceff3",
                "tickformat": fmt,
            },
            showlegend=len(folded) > 1,
        ),
    )
    return figure.to_plotly_json()


def timeline_summary(days: Sequence[JobDay]) -> str:
    """The timeline in one sentence, for screen readers (the daily table has the rest)."""
    submitted = sum(d.submitted for d in days)
    core_hours = sum((d.core_hours for d in days), start=Decimal(0))
    text = (
        f"{submitted:,} job{'s' if submitted != 1 else ''} submitted and "
        f"{core_hours:,.1f} core-hours billed over the last "
        f"{len(days)} day{'s' if len(days) != 1 else ''}"
    )
    busiest = max(days, key=lambda d: (d.submitted, d.day), default=None)
    if busiest is not None and busiest.submitted:
        text += f"; the busiest day was {busiest.day:%a} {busiest.day.day} {busiest.day:%b}"
        text += f" with {busiest.submitted:,} job{'s' if busiest.submitted != 1 else ''}"
    return text + "."


def token_trend_summary(trend: TokenTrend) -> str:
    """Daily tokens by model in one sentence: the total and each model's share, largest first."""
    totals = {model: sum(trend.tokens[model]) for model in trend.models}
    total = sum(totals.values())
    parts = (
        [
            f"{model} {count:,} ({count * 100 / total:.0f}%)"
            for model, count in sorted(totals.items(), key=lambda item: -item[1])
        ]
        if total
        else []
    )
    days = len(trend.days)
    text = f"{total:,} tokens over {days} day{'s' if days != 1 else ''}"
    return text + (": " + ", ".join(parts) if parts else "") + "."
