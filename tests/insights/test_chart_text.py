"""Every chart's text alternative: a sentence a screen reader reads (the figure itself is
hidden from assistive technology; its table or sentence carries the numbers)."""

from datetime import date
from decimal import Decimal as D

import pytest

from insights.charts import timeline_summary, token_trend_summary
from insights.selectors.panel import JobDay, TokenTrend

pytestmark = pytest.mark.django_db


def test_the_timeline_sentence_gives_the_totals_and_the_busiest_day():
    days = [
        JobDay(day=date(2026, 11, 18), submitted=1, core_hours_managed=D("1.25")),
        JobDay(day=date(2026, 11, 19)),
        JobDay(day=date(2026, 11, 20), submitted=3, core_hours_byoc=D("4")),
    ]
    assert timeline_summary(days) == (
        "4 jobs submitted and 5.2 core-hours billed over the last 3 days; "
        "the busiest day was Fri 20 Nov with 3 jobs."
    )
    assert timeline_summary([JobDay(day=date(2026, 11, 20))]) == (
        "0 jobs submitted and 0.0 core-hours billed over the last 1 day."
    )


def test_the_token_sentence_gives_each_models_share_largest_first():
    trend = TokenTrend(
        days=[date(2026, 11, 19), date(2026, 11, 20)],
        models=["e5-large-v2", "llama-3.1-8b"],
        tokens={"e5-large-v2": [100, 150], "llama-3.1-8b": [500, 250]},
    )
    assert token_trend_summary(trend) == (
        "1,000 tokens over 2 days: llama-3.1-8b 750 (75%), e5-large-v2 250 (25%)."
    )


def test_the_panel_and_finance_draw_each_chart_with_its_text_beside_it(client):
    from tests.e2e.seed import seed_console

    seeded = seed_console()
    client.force_login(seeded.membership.user)
    panel = client.get(f"/o/{seeded.slug}/usage/").content.decode()
    assert 'data-plotly-figure="timeline-figure" aria-hidden="true"' in panel
    assert "5 jobs submitted" in panel and "the busiest day was" in panel
    assert 'data-testid="token-summary">Daily tokens by model, stacked: ' in panel
    finance = client.get(f"/o/{seeded.slug}/finance/").content.decode()
    assert 'data-testid="spend-month-table"' in finance
    assert 'data-testid="spend-model-table"' in finance
