"""Plotly figures for the usage panel: pure functions from selector output to a figure dict.

Templates embed the dict with json_script; static/js/console.js draws it with the
plotly.js served from static/. template "none" keeps each figure a few kilobytes.
"""

import zlib
from collections.abc import Sequence
from decimal import Decimal

import plotly.graph_objects as go

from usage.selectors.panel import JobDay, TokenTrend

# The light palette's chart colours; console.js swaps traces marked with meta "accent" or
# "line" to the page's palette (dark mode), so these are only the no-script default.
BAR = "#2456d6"
LINE = "#b35c00"
# Distinct, colour-blind friendly model colours (Okabe–Ito), reused in order.
MODEL_COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442"]


def _layout(**extra) -> dict:
    return {
        "template": "none",
        "height": 300,
        "margin": {"l": 56, "r": 56, "t": 16, "b": 40},
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        "hovermode": "x unified",
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, sans-serif", "size": 12},
        **extra,
    }


def timeline_figure(days: Sequence[JobDay]) -> dict:
    """Daily submitted jobs as bars, core-hours as a line on a second y axis."""
    x = [d.day.isoformat() for d in days]
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
            xaxis={"type": "date", "tickformat": "%-d %b", "dtick": 86_400_000 * 2},
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
    """Daily tokens per model, stacked bars (one trace per model)."""
    x = [day.isoformat() for day in trend.days]
    figure = go.Figure(
        data=[
            go.Bar(
                x=x,
                y=trend.tokens[model],
                name=model,
                marker={"color": MODEL_COLOURS[i % len(MODEL_COLOURS)]},
                hovertemplate="%{y:,} tokens<extra>%{fullData.name}</extra>",
            )
            for i, model in enumerate(trend.models)
        ],
        layout=_layout(
            barmode="stack",
            xaxis={"type": "date", "tickformat": "%-d %b"},
            yaxis={"title": {"text": "Tokens"}, "rangemode": "tozero", "gridcolor": "#eceff3"},
        ),
    )
    return figure.to_plotly_json()


# The explorer stacks at most this many groups; the rest are summed as "Other".
EXPLORE_TRACES = 12


def explore_figure(report) -> dict:
    """The explorer's groups stacked per bucket (usage.selectors.explorer.UsageReport)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(report.tz)
    x = [lo.astimezone(zone).isoformat() for lo, _hi in report.buckets]
    shown = list(report.groups[:EXPLORE_TRACES])
    rest = report.groups[EXPLORE_TRACES:]
    traces = [(g.label, g.series) for g in shown]
    if rest:
        summed = [sum(values) for values in zip(*(g.series for g in rest), strict=True)]
        traces.append((f"Other ({len(rest)})", summed))
    fmt = ",d" if report.integral else ",.4~f"
    data = [
        go.Bar(
            x=x,
            y=[float(v) for v in series],
            name=label,
            # A group keeps its colour whatever else is shown (by its name, not its rank).
            marker={"color": MODEL_COLOURS[zlib.crc32(label.encode()) % len(MODEL_COLOURS)]},
            # The group name shows as the trace name; never inside the template.
            hovertemplate=f"%{{y:{fmt}}}",
        )
        for label, series in traces
    ]
    tick = {"1h": "%-d %b %H:%M", "1d": "%-d %b", "1w": "%-d %b", "1mo": "%b %Y"}[report.bucket]
    figure = go.Figure(
        data=data,
        layout=_layout(
            barmode="stack",
            xaxis={"type": "date", "tickformat": tick},
            yaxis={"rangemode": "tozero", "gridcolor": "#eceff3", "tickformat": fmt},
            showlegend=len(traces) > 1,
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
