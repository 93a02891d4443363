"""Browser tests: Playwright for Python driving Debian's chromium (never a downloaded build).

Fixtures: `page` (a fresh browser page), `login(page, live_server_url, email, password)`.
Screenshots and other artifacts go to tests/e2e/artifacts/ (ignored by git).
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if os.environ.get("CI"):
            pytest.fail(f"chromium not found at {CHROMIUM}: .ci/run installs Debian's chromium")
        pytest.skip(
            f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread while the browser is
    # open; the tests' own ORM calls are still synchronous, so Django's async guard
    # stands down while this module's browser is open, and only then.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def login():
    def do_login(page, base_url: str, email: str, password: str) -> None:
        page.goto(f"{base_url}/accounts/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_selector("[data-testid=chip-email]")

    return do_login


# ---- screens: width, axe-core and the dark palette (tests/e2e/test_screens.py)

# WCAG 2.0-2.2 A and AA, and axe's best practices (landmarks, one h1, regions, …).
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}
NARROWEST = 360  # the narrowest phone the console is laid out for
_CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-plotly-figure]')]
    .every(el => el.querySelector('.main-svg'))"""
_TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
# The body's background and text colours, their contrast ratio and the background's
# relative luminance (WCAG 2 formulas).
_PALETTE = """() => {
  const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const style = getComputedStyle(document.body);
  const bg = lum(rgb(style.backgroundColor)), fg = lum(rgb(style.color));
  const ratio = (Math.max(bg, fg) + 0.05) / (Math.min(bg, fg) + 0.05);
  return {background: style.backgroundColor, luminance: bg, contrast: ratio};
}"""


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as it is now (the script ships in the package)."""
    from axe_playwright_python.sync_playwright import Axe

    return Axe().run(page, options=AXE_OPTIONS).response["violations"]


class Screen:
    """Checks one page state in each colour scheme and collects what is wrong."""

    def __init__(self, page, viewport: str, *, screenshots: bool = True):
        self.page = page
        self.viewport = viewport
        self.screenshots = screenshots
        self.problems: list[str] = []

    def check(self, name: str, schemes: tuple[str, ...] = ("light", "dark")) -> None:
        page = self.page
        page.wait_for_function(_CHARTS_DRAWN)
        for scheme in schemes:
            where = f"{self.viewport} {scheme} {name}"
            page.emulate_media(color_scheme=scheme)
            page.evaluate(_TWO_FRAMES)
            scroll, inner = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            if scroll > inner:
                self.problems.append(f"{where}: scrollWidth {scroll} > innerWidth {inner}")
            for v in axe_violations(page):
                targets = ", ".join(str(n["target"]) for n in v["nodes"][:4])
                self.problems.append(
                    f"{where}: axe {v['id']} ({v['impact']}) x{len(v['nodes'])}: {targets}"
                )
            palette = page.evaluate(_PALETTE)
            if scheme == "dark" and palette["luminance"] > 0.05:
                self.problems.append(f"{where}: body background {palette['background']} not dark")
            if palette["contrast"] < 4.5:
                self.problems.append(f"{where}: body text contrast {palette['contrast']:.2f}")
            if self.screenshots:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(
                    path=ARTIFACTS / f"{self.viewport}-{scheme}-{name}.png", full_page=True
                )
        page.emulate_media(color_scheme="light")
        if self.viewport == "phone":
            self._fits_at(NARROWEST, name)

    def _fits_at(self, width: int, name: str) -> None:
        """No sideways scrolling at the narrowest phone either (a resize, no reload)."""
        page = self.page
        size = page.viewport_size
        page.set_viewport_size({"width": width, "height": size["height"]})
        page.evaluate(_TWO_FRAMES)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            self.problems.append(f"{width}px {name}: scrollWidth {scroll} > {width}")
        page.set_viewport_size(size)
