"""The usage panel in chromium: htmx window switching, the CSV download, placeholders."""

import csv
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS
from tests.factories import (
    PASSWORD,
    make_api_key,
    make_controller,
    make_job,
    make_member,
    make_org,
    make_query,
    make_worker_session,
)

pytestmark = pytest.mark.django_db(transaction=True)


def seed_panel(org) -> None:
    """2 jobs in the last 24 h, 3 more in the last 30 days, 4 more before that."""
    now = timezone.now()
    key, _ = make_api_key(org=org, name="Lab workstation")
    controller, _ = make_controller(org=org, name="dgx-01")
    controller.last_heartbeat_at = now
    controller.save(update_fields=["last_heartbeat_at"])
    for hours, status, on_controller in [
        (1, "running", True),
        (2, "completed", False),
        (50, "failed", True),
        (100, "completed", False),
        (300, "cancelled", False),
        *[(24 * 60 + i, "completed", False) for i in range(4)],
    ]:
        make_job(
            org=org,
            submitted_at=now - timedelta(hours=hours),
            status=status,
            api_key=key if hours < 200 else None,
            controller=controller if on_controller else None,
            cores=8,
            core_hours=hours % 7 + 1.5,
            credits="0.25",
        )
    for hours, model in [(1, "llama-3.1-8b"), (30, "llama-3.1-70b"), (200, "e5-large-v2")]:
        make_query(
            org=org,
            occurred_at=now - timedelta(hours=hours),
            model=model,
            input_tokens=1200,
            output_tokens=3400,
            endpoint="/v1/chat/completions",
            member="ana@example.com",
        )
    for hours, length, model in [(3, 2.5, "llama-3.1-8b"), (5, 0.75, "phi-3-mini")]:
        start = now - timedelta(hours=hours)
        make_worker_session(
            org=org, model=model, started_at=start, ended_at=start + timedelta(hours=length)
        )


def test_switching_windows_swaps_the_figures_without_a_page_load(live_server, page, login):
    member = make_member(org=make_org(name="Acme Research", tier="developer"))
    seed_panel(member.organization)
    login(page, live_server.url, member.user.email, PASSWORD)
    page.goto(f"{live_server.url}/o/{member.organization.slug}/usage/")
    submitted = page.get_by_test_id("jobs-submitted")
    assert submitted.inner_text() == "5"  # 30 days by default
    page.wait_for_selector("#usage-window [data-plotly-figure=timeline-figure] .main-svg")
    page.evaluate("window.__panelMarker = 'still here'")
    switcher = page.get_by_role("navigation", name="Time window")

    switcher.get_by_role("link", name="24 hours").click()
    expect(submitted).to_have_text("2")
    assert page.url.endswith("?window=24h")
    assert page.evaluate("window.__panelMarker") == "still here"
    assert switcher.get_by_role("link", name="24 hours").get_attribute("aria-current") == "true"
    # The charts are drawn again after the swap.
    page.wait_for_selector("#usage-window [data-plotly-figure=timeline-figure] .main-svg")

    switcher.get_by_role("link", name="All time").click()
    expect(submitted).to_have_text("9")
    assert page.url.endswith("?window=all")
    assert page.evaluate("window.__panelMarker") == "still here"
    assert page.get_by_test_id("failure-pressure").inner_text() == "2"
    page.wait_for_selector("#usage-window [data-plotly-figure=token-figure] .main-svg")

    page.get_by_role("link", name="30 days").click()
    expect(submitted).to_have_text("5")
    page.wait_for_selector("#usage-window [data-plotly-figure=timeline-figure] .main-svg")
    page.wait_for_timeout(300)  # let plotly finish laying out before the picture
    page.screenshot(path=str(ARTIFACTS / "usage-panel.png"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_test_id("timeline-csv").click()
    download = download_info.value
    assert download.suggested_filename.startswith("usage-timeline-")
    with open(download.path(), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 14
    assert sum(int(row["submitted"]) for row in rows) == 5  # 2 + the ones 50 h, 100 h, 300 h ago
    assert rows[-1]["date"] == timezone.localdate().isoformat()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Main").click()
    summary = page.get_by_test_id("runtime-summary")
    assert "3 h 15 min" in summary.locator("tr[data-model=Total]").inner_text()
    page.screenshot(path=str(ARTIFACTS / "main-usage-summaries.png"), full_page=True)


def test_the_controller_placeholder_shows_for_an_organization_without_one(live_server, page, login):
    member = make_member()
    login(page, live_server.url, member.user.email, PASSWORD)
    page.goto(f"{live_server.url}/o/{member.organization.slug}/usage/?window=7d")
    placeholder = page.get_by_test_id("controller-placeholder")
    assert placeholder.is_visible()
    assert "No controllers connected yet" in placeholder.inner_text()
    page.get_by_role("link", name="24 hours").click()
    page.wait_for_url("**/usage/?window=24h")
    expect(page.get_by_test_id("controller-placeholder")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "usage-panel-empty.png"), full_page=True)


def test_the_switcher_works_without_javascript(live_server, browser):
    member = make_member()
    make_job(org=member.organization, submitted_at=timezone.now() - timedelta(days=3))
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Email").fill(member.user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{live_server.url}/o/{member.organization.slug}/usage/")
        assert page.get_by_test_id("jobs-submitted").inner_text() == "1"
        page.get_by_role("link", name="24 hours").click()
        page.wait_for_url("**/usage/?window=24h")
        assert page.get_by_test_id("jobs-submitted").inner_text() == "0"
    finally:
        context.close()
