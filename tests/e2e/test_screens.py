"""Every screen, on a phone (390 px, and 360 px for width) and a desktop, light and dark:
no sideways scrolling, zero axe-core violations (WCAG 2.2 AA and best practices), and
the dark palette applied.

One browser, one seeded organization and one login per viewport; each screen is checked
in both colour schemes without reloading (emulated prefers-color-scheme), and all the
problems found are reported together. Screenshots land in tests/e2e/artifacts/.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ARTIFACTS, Screen
from tests.e2e.seed import seed_console
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

VIEWPORTS = {"phone": (390, 844), "desktop": (1400, 900)}


def _pages(slug: str, batch_id: int) -> list[tuple[str, str]]:
    org = f"/o/{slug}"
    return [
        ("main", f"{org}/"),
        ("usage", f"{org}/usage/"),
        ("usage-24h", f"{org}/usage/?window=24h"),
        ("usage-all", f"{org}/usage/?window=all"),
        ("explore", f"{org}/usage/explore/?group_by=api_key"),
        ("explore-hours", f"{org}/usage/explore/?group_by=model&bucket=1h"),
        ("explore-errors", f"{org}/usage/explore/?start=2026-11-02T10:30&end=2026-10-31T12:45"),
        ("finance", f"{org}/finance/"),
        ("auto-recharge", f"{org}/finance/auto-recharge/"),
        ("charge-breakdown", f"{org}/usage/charges/batch/{batch_id}/"),
        ("settings", f"{org}/settings/"),
        ("api-keys", f"{org}/settings/keys/"),
        ("session-tokens", f"{org}/settings/tokens/"),
        ("security", f"{org}/settings/security/"),
        ("controllers", f"{org}/usage/controllers/"),
        ("alerts", f"{org}/settings/alerts/"),
        ("alert-rule-new", f"{org}/settings/alerts/new/"),
        ("notifications", f"{org}/settings/alerts/notifications/"),
        ("password-change", "/accounts/password_change/"),
    ]


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_screen_fits_passes_axe_and_goes_dark(live_server, browser, viewport):
    width, height = VIEWPORTS[viewport]
    seeded = seed_console()
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    screen = Screen(page, viewport)
    base = live_server.url

    page.goto(f"{base}/accounts/sso/")
    screen.check("sso-login")
    page.goto(f"{base}/accounts/login/")
    screen.check("login")
    page.get_by_label("Email").fill(seeded.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("[data-testid=chip-balance]")

    for name, path in _pages(seeded.slug, seeded.batch_id):
        page.goto(f"{base}{path}")
        screen.check(name)

    # States: the menus open, forms with errors, and the Add Credit steps in order.
    page.goto(f"{base}/o/{seeded.slug}/usage/")
    if viewport == "phone":
        page.get_by_role("button", name="Menu").click()
        expect(page.get_by_role("link", name="Finance", exact=True)).to_be_visible()
        screen.check("nav-menu-open")
        page.keyboard.press("Escape")
    page.locator("#session-chip summary").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    screen.check("session-chip-open")

    page.goto(f"{base}/o/{seeded.slug}/settings/alerts/new/")
    page.get_by_label("Threshold").fill("-5")
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator(".field-error, .form-errors").first).to_be_visible()
    screen.check("alert-rule-errors")

    page.goto(f"{base}/o/{seeded.slug}/finance/add/")
    screen.check("add-credit-amount")
    page.get_by_label("Custom amount (USD)").fill("1")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    screen.check("add-credit-amount-errors")
    page.get_by_label("Custom amount (USD)").fill("")
    page.get_by_label("$25", exact=True).check()
    page.get_by_role("button", name="Continue").click()
    screen.check("add-credit-details")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("error-number")).to_be_visible()
    screen.check("add-credit-details-errors")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("confirm")).to_be_visible()
    screen.check("add-credit-confirm")
    page.get_by_role("button", name=re.compile("^Pay")).click()
    expect(page.get_by_test_id("payment-result")).to_contain_text("Payment succeeded")
    screen.check("add-credit-result")

    context.close()
    assert not screen.problems, "\n".join(screen.problems)
    assert ARTIFACTS.joinpath(f"{viewport}-dark-usage.png").exists()


def test_page_check_helper_reports_sideways_scrolling(live_server, browser):
    """The check itself notices a page wider than the window (so a pass means something)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page: Page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<div style=\"width:900px\">x</div>')"
    )
    screen = Screen(page, "phone", screenshots=False)
    screen.check("widened-login", schemes=("light",))
    context.close()
    assert any("scrollWidth 9" in p for p in screen.problems), screen.problems
