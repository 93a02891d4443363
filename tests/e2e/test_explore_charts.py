"""Usage → Explore in chromium, as a user sees it: a bad hourly range answered beside
the field (never the old chart under a changed form), a monthly chart from 1 September
with each month's label under its bar, and a colour of its own for every series, light
and dark."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_job, make_member, make_org, make_query

pytestmark = pytest.mark.django_db(transaction=True)

PARIS = ZoneInfo("Europe/Paris")


def _member(name):
    member = make_member(org=make_org(name=name, tier="developer", time_zone="Europe/Paris"))
    return member, member.organization


def _this_month_by_model(org):
    """Three series this month: two models and jobs, which have none."""
    now = timezone.now().astimezone(PARIS)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    at = first + (now - first) / 2
    make_query(org=org, occurred_at=at, model="phi-3-mini", credits="3")
    make_query(org=org, occurred_at=at, model="e5-large-v2", credits="2")
    make_job(org=org, submitted_at=at, credits="1")


def _explore(page, live_server, org):
    page.goto(f"{live_server.url}/o/{org.slug}/usage/explore/")
    expect(page.locator("#explore .legend .traces").first).to_be_visible()


def test_a_bad_hourly_range_shows_its_error_beside_granularity(live_server, page, login):
    member, org = _member("Hourly Labs")
    _this_month_by_model(org)
    login(page, live_server.url, member.user.email, PASSWORD)
    _explore(page, live_server, org)
    page.evaluate("window.__noReload = true")

    start = (timezone.now() - timedelta(days=90)).astimezone(PARIS)
    page.get_by_label("Start").fill(start.strftime("%Y-%m-%dT00:00"))
    page.get_by_label("Granularity").select_option("1h")
    # The old chart no longer matches the form: it says so before anything is sent.
    expect(page.get_by_test_id("explore-stale")).to_contain_text("previous settings")
    page.get_by_role("button", name="Show").click()

    error = page.get_by_test_id("error-bucket")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Hour is for ranges of up to 31 days")
    expect(error).to_contain_text("Choose Day")
    expect(page.get_by_test_id("explore-invalid")).to_be_visible()
    expect(page.locator("[data-plotly-figure]")).to_have_count(0)
    expect(page.get_by_test_id("explore-table")).to_have_count(0)
    assert page.evaluate("window.__noReload") is True  # swapped by htmx
    page.screenshot(path=str(ARTIFACTS / "explore-hourly-error.png"), full_page=True)

    # Without script: the same page, whole, with the same error.
    page.goto(page.url)
    expect(page.get_by_test_id("error-bucket")).to_contain_text("up to 31 days")


def _centres(page, selector):
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const b = e.getBoundingClientRect(); return b.x + b.width / 2; })",
    )


def test_a_monthly_chart_from_1_september_labels_each_bar_with_its_month(live_server, page, login):
    member, org = _member("Monthly Labs")
    now = timezone.now().astimezone(PARIS)
    year = now.year if now.month >= 10 else now.year - 1
    months = [datetime(year, 9, 1, tzinfo=PARIS)]
    while months[-1].month != now.month or months[-1].year != now.year:
        last = months[-1]
        months.append(last.replace(year=last.year + last.month // 12, month=last.month % 12 + 1))
    for month in months[:-1]:  # usage in every month but this one, on the 15th at noon
        make_query(org=org, occurred_at=month.replace(day=15, hour=12), credits="1")
    login(page, live_server.url, member.user.email, PASSWORD)
    page.goto(f"{live_server.url}/o/{org.slug}/usage/explore/?start={year}-09-01T00:00&bucket=1mo")
    ticks = page.locator("#explore .xtick text")
    expect(ticks.first).to_be_visible()
    expected = [m.strftime("%b %Y") for m in months]
    assert ticks.all_text_contents() == expected
    # Each month's label sits under that month's bar.
    tick_x = _centres(page, "#explore .xtick text")
    bar_x = _centres(page, "#explore .trace.bars .point path")
    assert len(bar_x) >= len(months) - 1
    for tick, bar in zip(tick_x[: len(months) - 1], bar_x, strict=False):
        assert abs(tick - bar) < 3, (tick_x, bar_x)
    page.screenshot(path=str(ARTIFACTS / "explore-monthly-ticks.png"), full_page=True)


def _legend(page):
    return page.eval_on_selector_all(
        "#explore .legend .traces",
        """els => els.map(e => [
            e.querySelector('.legendtext').textContent,
            getComputedStyle(e.querySelector('.legendpoints path')).fill,
        ])""",
    )


def test_every_series_has_its_own_colour_light_and_dark(live_server, page, login):
    member, org = _member("Colour Labs")
    _this_month_by_model(org)
    login(page, live_server.url, member.user.email, PASSWORD)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        _explore(page, live_server, org)
        legend = _legend(page)
        assert [name for name, _fill in legend] == ["phi-3-mini", "e5-large-v2", "(no model)"]
        fills = [fill for _name, fill in legend]
        assert len(set(fills)) == 3, fills
        bars = page.eval_on_selector_all(
            "#explore .trace.bars",
            "els => els.map(e => getComputedStyle(e.querySelector('.point path')).fill)",
        )
        assert sorted(bars) == sorted(fills)
        expect(page.locator("#explore .ytitle")).to_have_text(re.compile("Credits"))
        page.screenshot(path=str(ARTIFACTS / f"explore-colours-{scheme}.png"), full_page=True)
