"""The console with a keyboard alone: log in, skip to the content, switch the usage window,
open a key's card link, choose the dark scheme in the session chip, and add credit.

Only key presses drive the pages; the test reads the DOM to check where focus is, that
it is visible (a focus ring), and what the page announced.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.seed import seed_console
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

_FOCUSED = """() => {
  const e = document.activeElement, style = getComputedStyle(e), box = e.getBoundingClientRect();
  const name = (e.getAttribute('aria-label') || e.innerText || e.value || '').trim();
  return {name, tag: e.tagName, outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
          visible: box.width > 0 && box.height > 0 && box.bottom > 0 && box.top < innerHeight};
}"""


def focused(page) -> dict:
    return page.evaluate(_FOCUSED)


def tab_to(page, name: str | re.Pattern, *, limit: int = 60) -> None:
    """Press Tab until the focused element is called `name`; it must show a focus ring."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        seen.append(now["name"][:30])
        if name == now["name"] if isinstance(name, str) else name.search(now["name"]):
            assert now["visible"], f"{name!r} has focus but is not on screen"
            assert now["outline"] != "none" and now["width"] >= 2, f"no focus ring on {name!r}"
            return
    pytest.fail(f"Tab never reached {name!r}; it went through {seen}")


def test_the_console_with_the_keyboard_alone(live_server, browser):
    seeded = seed_console()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)

    # Log in: the email field has focus when the page opens.
    page.goto(f"{live_server.url}/accounts/login/")
    # Typing before autofocus lands would lose the first keys on a busy machine.
    expect(page.locator("#id_username")).to_be_focused()
    page.keyboard.type(seeded.email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("chip-balance")).to_be_visible()

    # The first Tab reaches the skip link, shown on focus; it moves focus to the content.
    page.keyboard.press("Tab")
    skip = focused(page)
    assert skip["name"] == "Skip to main content" and skip["visible"]
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # The session chip: choose the dark scheme; it is remembered for this user.
    page.keyboard.press("Shift+Tab")  # back up from the content to the chip
    tab_to(page, re.compile(r"account menu$"))
    page.keyboard.press("Enter")
    tab_to(page, "Dark")
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")

    # Usage, from the navigation; switch the window with the keyboard.
    tab_to(page, "Usage")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/usage/$"))
    expect(page.get_by_test_id("jobs-submitted")).to_have_text("5")
    page.wait_for_selector("[data-plotly-figure=timeline-figure] .main-svg")
    # The chart takes the dark palette: its bars are the page's dark accent colour.
    bar = page.locator("[data-plotly-figure=timeline-figure] .point path").first
    assert bar.evaluate("e => getComputedStyle(e).fill") == "rgb(143, 176, 255)"
    tab_to(page, "24 hours")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("jobs-submitted")).to_have_text("2")
    assert page.url.endswith("?window=24h")
    # Focus stays on the switcher after the swap, and the change is announced.
    assert focused(page)["name"] == "24 hours"
    expect(page.locator("#announcer")).to_contain_text("Usage for 24 hours: 2 jobs submitted")

    # A key's card link opens the key's row on the API keys page.
    tab_to(page, "Key settings: Lab workstation")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/settings/keys/#key-\d+$"))
    expect(page.locator("tr:target")).to_contain_text("Lab workstation")

    # Add Credit: amount (arrow keys in the radio group), card details, confirm, result.
    tab_to(page, "Finance")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/finance/$"))
    tab_to(page, "Add Credit")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/finance/add/$"))
    page.wait_for_load_state()
    tab_to(page, "25")  # the ticked preset ($25) holds the radio group's focus
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.value") == "50"
    tab_to(page, "Continue")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("Payment details for"))).to_contain_text(
        "$50"
    )
    tab_to(page, "")  # the first (empty) field: name on card
    page.keyboard.type("Ana Example")
    page.keyboard.press("Tab")
    page.keyboard.type("4242 4242 4242 4242")
    page.keyboard.press("Tab")
    page.keyboard.type("12/34")
    page.keyboard.press("Tab")
    page.keyboard.type("123")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("confirm")).to_be_visible()
    tab_to(page, re.compile(r"^Pay \$50"))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("payment-result")).to_contain_text("Payment succeeded")
    assert "1,075.00 credits" in page.get_by_test_id("chip-balance").inner_text()
    context.close()
