"""Usage → Explore in chromium: a range from the date pickers, group by model, filter
by a key, switch to hours, back with the browser, and the CSV."""

import csv
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_api_key, make_member, make_org, make_query

pytestmark = pytest.mark.django_db(transaction=True)


def test_explore_range_grouping_filter_hours_back_and_csv(live_server, page, login):
    member = make_member(org=make_org(name="Explorer Labs", tier="developer"))
    org = member.organization
    lab, _ = make_api_key(org=org, name="Lab workstation")
    ci, _ = make_api_key(org=org, name="CI runner")
    now = timezone.now()
    day = (now - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    for hours, model, key, credits in [
        (0, "llama-3.1-8b", lab, "1.25"),
        (1, "llama-3.1-70b", lab, "2.50"),
        (3, "llama-3.1-8b", ci, "4.00"),
    ]:
        make_query(
            org=org,
            occurred_at=day + timedelta(hours=hours, minutes=15),
            model=model,
            api_key=key,
            credits=credits,
        )
    login(page, live_server.url, member.user.email, PASSWORD)
    page.goto(f"{live_server.url}/o/{org.slug}/usage/explore/")
    expect(page.get_by_test_id("explore-heading")).to_have_text("Credits by Model")
    page.evaluate("window.__noReload = true")

    # The calendar: native date-time pickers, no script of ours needed.
    page.get_by_label("Start").fill(day.strftime("%Y-%m-%dT00:00"))
    page.get_by_label("End").fill((day + timedelta(days=1)).strftime("%Y-%m-%dT00:00"))
    page.get_by_label("Group by").select_option("model")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("explore-total")).to_have_text("7.75")
    rows = page.get_by_test_id("explore-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("llama-3.1-8b")
    expect(page).to_have_url(re.compile(r"group_by=model"))
    assert page.evaluate("window.__noReload") is True  # swapped by htmx, no page load
    daily_url = page.url
    page.screenshot(path=str(ARTIFACTS / "explore-by-model.png"), full_page=True)

    page.get_by_text("Filters").click()
    page.get_by_label("Lab workstation").check()
    page.get_by_label("Granularity").select_option("1h")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("explore-total")).to_have_text("3.75")
    expect(page.get_by_test_id("explore-range")).to_contain_text("24 buckets")
    expect(page).to_have_url(
        re.compile(rf"bucket=1h.*api_key={lab.pk}|api_key={lab.pk}.*bucket=1h")
    )
    page.screenshot(path=str(ARTIFACTS / "explore-hours-one-key.png"), full_page=True)

    page.go_back()
    expect(page.get_by_test_id("explore-total")).to_have_text("7.75")
    expect(page.get_by_test_id("explore-range")).to_contain_text("1 bucket")
    assert page.url == daily_url

    with page.expect_download() as download_info:
        page.get_by_test_id("explore-csv").click()
    path = download_info.value.path()
    with open(path, newline="", encoding="utf-8") as downloaded:
        rows = list(csv.reader(downloaded))
    assert rows[0] == ["bucket", "group", "value", "unit"]
    assert {(r[1], r[2]) for r in rows[1:]} == {("llama-3.1-8b", "5.25"), ("llama-3.1-70b", "2.5")}
