"""Spend controls in chromium: set a budget, watch its card fill as usage arrives, pause
and resume a key, and use the estimator page. Screenshots in tests/e2e/artifacts/."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ingest.services.ingest import usage_records_ingest
from spend.models import KeyPause
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, grant_credits, make_api_key, make_member, make_org

pytestmark = pytest.mark.django_db(transaction=True)


def test_budget_card_fills_pause_resume_and_estimate(page, live_server, login):
    org = make_org(name="Spendwell")
    grant_credits(org=org, amount="50")
    owner = make_member(org=org).user
    key, _ = make_api_key(org=org, name="Gateway key")
    login(page, live_server.url, owner.email, PASSWORD)

    # Settings → Budgets: set a daily budget on the key.
    page.goto(f"{live_server.url}/o/{org.slug}/settings/")
    page.get_by_role("link", name="Budgets").click()
    expect(page.get_by_role("heading", name="Budgets", level=1)).to_be_visible()
    form = page.get_by_test_id("budget-form")
    form.get_by_label("Scope").select_option("api_key")
    form.get_by_label("API key").select_option(label="Gateway key")
    form.get_by_label("Period").select_option("day")
    form.get_by_label("Soft level (alert)").fill("0.01")
    form.get_by_label("Hard level (refuse)").fill("0.02")
    form.get_by_role("button", name="Save budget").click()
    card = page.get_by_test_id("budget-card")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("budget-spent")).to_have_text("0.00")
    page.screenshot(path=str(ARTIFACTS / "spend-budget-empty.png"), full_page=True)

    # Usage arrives: the card refreshes itself (htmx, every 5 s) without a reload.
    record = {"id": "q-1", "kind": "query", "occurred_at": timezone.now().isoformat(),
              "model": "llama-3.1-8b", "input_tokens": 60_000, "output_tokens": 0}  # fmt: skip
    usage_records_ingest(org=org, records=[record], api_key=key)
    expect(card.get_by_test_id("budget-spent")).to_have_text(re.compile(r"0\.006"), timeout=12_000)
    page.screenshot(path=str(ARTIFACTS / "spend-budget-filled.png"), full_page=True)

    # Pause the key from its card, then resume it.
    key_card = page.get_by_test_id("spend-key-card")
    key_card.get_by_test_id("key-pause").click()
    page.get_by_role("dialog").get_by_role("button", name="Pause key").click()
    expect(page.get_by_test_id("key-paused")).to_be_visible()
    assert KeyPause.objects.filter(api_key=key).exists()
    page.screenshot(path=str(ARTIFACTS / "spend-key-paused.png"), full_page=True)
    page.get_by_test_id("key-resume").click()
    expect(page.get_by_test_id("key-paused")).to_have_count(0)
    assert not KeyPause.objects.filter(api_key=key).exists()

    # Usage → Estimate.
    page.goto(f"{live_server.url}/o/{org.slug}/usage/")
    page.get_by_test_id("estimate-link").click()
    estimate = page.get_by_test_id("estimate-form")
    estimate.get_by_label("Model").select_option("llama-3.1-8b")
    estimate.get_by_label("Prompt").fill("Explain quantum computing.")
    estimate.get_by_label("Max output tokens").fill("500")
    estimate.get_by_label("API key").select_option(label="Gateway key")
    estimate.get_by_role("button", name="Estimate").click()
    expect(page.get_by_test_id("estimate-input")).to_have_text("9 tokens")
    expect(page.get_by_test_id("estimate-budgets")).to_be_visible()
    assert "prompt=" in page.url  # every estimate is a URL
    page.screenshot(path=str(ARTIFACTS / "spend-estimate.png"), full_page=True)
