"""Plotly figures for the finance dashboard: pure functions of selector output."""

import json
from collections.abc import Sequence

import plotly.graph_objects as go

from billing.selectors import ModelDebits, MonthDebits

UNATTRIBUTED_MODEL = "Not attributed to a model"
_LAYOUT = {
    "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
    "height": 280,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "yaxis": {"title": {"text": "Credits"}, "rangemode": "tozero"},
}


def _plain(figure: go.Figure) -> dict:
    # Through JSON so json_script receives plain lists and numbers, never numpy arrays.
    return json.loads(figure.to_json())


def usage_debits_by_month_figure(months: Sequence[MonthDebits]) -> dict | None:
    """Bars of usage debits per month; None when nothing was debited (the page says so)."""
    if not any(m.credits for m in months):
        return None
    figure = go.Figure(
        go.Bar(
            x=[m.month.strftime("%b %Y") for m in months],
            y=[float(m.credits) for m in months],
            marker_color="#2456d6",
            meta="accent",  # console.js colours it with the page's palette
            hovertemplate="%{x}: %{y:,.2f} credits<extra></extra>",
        )
    )
    figure.update_layout(**_LAYOUT)
    # One bar per month, its label under it ("Sep 2026" must never be read as a date
    # and moved to a tick of plotly's choosing).
    figure.update_layout(xaxis={"type": "category", "automargin": True})
    return _plain(figure)


def usage_debits_by_model_figure(models: Sequence[ModelDebits]) -> dict | None:
    """Horizontal bars of usage debits per model, largest on top; None when empty."""
    rows = [m for m in models if m.credits]
    if not rows:
        return None
    rows = sorted(rows, key=lambda m: m.credits)  # plotly draws the last bar on top
    figure = go.Figure(
        go.Bar(
            x=[float(m.credits) for m in rows],
            y=[m.model_name or UNATTRIBUTED_MODEL for m in rows],
            orientation="h",
            marker_color="#067647",
            meta="good",
            hovertemplate="%{y}: %{x:,.2f} credits<extra></extra>",
        )
    )
    figure.update_layout(**_LAYOUT)
    figure.update_layout(
        xaxis={"title": {"text": "Credits"}, "rangemode": "tozero"},
        yaxis={"automargin": True},
        margin={"l": 10, "r": 10, "t": 10, "b": 40},
    )
    return _plain(figure)
