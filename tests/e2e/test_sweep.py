"""The sweep: every console page reachable from the navigation, on the demo's data, at
1280, 1400 and 390 px, light and dark.

On every page: no table wider than its box at desktop widths (a column hidden behind a
scroll is a column lost); on the phone, no page wider than the screen, and a table wider
than its box only inside a labelled, focusable scroll region; axe-core finds nothing
serious or critical (WCAG 2.2 AA and best practices). A screenshot of each page at each
width and scheme lands in tests/e2e/artifacts/sweep/.

Affordable: one browser, one login, one page; the pages are found by following links
from the main navigation (two levels deep, one page per kind of address), measured once
(a module fixture) and reported one test per page.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import _CHARTS_DRAWN, _TWO_FRAMES, ARTIFACTS, axe_violations

SWEEP_ARTIFACTS = ARTIFACTS / "sweep"
DESKTOPS = (1280, 1400)
PHONE = 390
WIDTHS = (*DESKTOPS, PHONE)
SCHEMES = ("light", "dark")
# axe reads the same markup at 1280 and 1400: it runs at the wider and the phone.
AXE_WIDTHS = (1400, PHONE)
SERIOUS = {"serious", "critical"}
MAX_PAGES = 40

# Tables wider than their box, with their box's width (content, inside padding), whether
# they sit in a labelled focusable scroll region, and a name to report them by.
_TABLES = """() => [...document.querySelectorAll('main table')]
  .filter(t => t.getClientRects().length && t.offsetWidth)
  .map(t => {
    const box = t.parentElement, style = getComputedStyle(box);
    const inner = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const region = t.closest('[role=region][aria-label][tabindex="0"]');
    const named = t.closest('[aria-label]');
    const caption = t.querySelector('caption');
    return {
      name: (caption && caption.textContent.trim()) || (named && named.getAttribute('aria-label'))
            || t.id || 'table',
      width: Math.ceil(t.getBoundingClientRect().width), box: Math.floor(inner),
      region: !!region,
    };
  })
  .filter(t => t.width > t.box + 1)"""
# Links a person can follow from the page's own content: same origin, not a download.
_LINKS = """() => [...document.querySelectorAll('#mainnav a[href], main a[href]')]
  .filter(a => !a.hasAttribute('download') && a.origin === location.origin)
  .map(a => a.pathname + a.search)"""
_SKIP = re.compile(r"\.(csv|pdf|json)$|/(csv|pdf|download|export|logout)/?$|/api/|/admin/", re.I)


def page_name(path: str, slug: str) -> str:
    """A page's kind: its path inside the organization, ids as N, without the query."""
    path = urlsplit(path).path
    path = path.removeprefix(f"/o/{slug}").strip("/") or "main"
    return re.sub(r"/\d+(?=/|$)", "/N", path).replace("/", "-")


@dataclass
class Measured:
    path: str
    problems: dict[int, list[str]] = field(default_factory=dict)


@dataclass
class Sweep:
    pages: dict[str, Measured]
    errors: list[str]


def _settle(page) -> None:
    page.wait_for_function(_CHARTS_DRAWN)
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.evaluate(_TWO_FRAMES)


def _measure(page, name: str, measured: Measured) -> None:
    for width in WIDTHS:
        problems = measured.problems.setdefault(width, [])
        page.set_viewport_size({"width": width, "height": 900})
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            page.evaluate(_TWO_FRAMES)
            if scheme == "light":
                for table in page.evaluate(_TABLES):
                    if width in DESKTOPS or not table["region"]:
                        problems.append(
                            f"table {table['name']!r} is {table['width']} px in a "
                            f"{table['box']} px box"
                            + ("" if table["region"] else " (no scroll region)")
                        )
                scroll = page.evaluate("document.documentElement.scrollWidth")
                if width == PHONE and scroll > PHONE:
                    problems.append(f"page is {scroll} px wide on a {PHONE} px phone")
            if width in AXE_WIDTHS:
                for v in axe_violations(page):
                    if v["impact"] in SERIOUS:
                        where = ", ".join(str(n["target"]) for n in v["nodes"][:3])
                        problems.append(
                            f"{scheme}: axe {v['id']} ({v['impact']}) x{len(v['nodes'])}: {where}"
                        )
            page.screenshot(path=SWEEP_ARTIFACTS / f"{name}-{width}-{scheme}.png", full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": DESKTOPS[-1], "height": 900})


@pytest.fixture(scope="module")
def sweep(browser, live_server, django_db_setup, django_db_blocker) -> Sweep:
    import importlib

    from django.apps import apps

    from billing.models import PriceModel
    from console.demo import demo_seed

    # The live server's requests need the database open for the whole walk.
    with django_db_blocker.unblock():
        # A transactional test before this module flushed every table, the shipped price
        # list included: without it the demo's usage is refused and no batch is charged.
        if not PriceModel.objects.exists():
            importlib.import_module("billing.migrations.0002_price_list").forwards(apps, None)
        # A week of usage keeps it quick; payments, statements and people are the demo's.
        logins = demo_seed(days=7)
        return _walk(browser, live_server.url, logins)


def _walk(browser, base: str, logins) -> Sweep:
    slug = logins.organization.slug
    SWEEP_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": DESKTOPS[-1], "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(logins.email)
    page.get_by_label("Password").fill(logins.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("[data-testid=chip-email]")

    pages: dict[str, Measured] = {}
    errors: list[str] = []
    queue = [(href, 0) for href in page.evaluate(_LINKS) if href.startswith(f"/o/{slug}/")]
    queue = [(href, depth) for href, depth in queue if "#" not in href]
    while queue and len(pages) < MAX_PAGES:
        path, depth = queue.pop(0)
        name = page_name(path, slug)
        if name in pages or _SKIP.search(urlsplit(path).path):
            continue
        response = page.goto(base + path)
        if response is None or response.status != 200:
            errors.append(f"{path}: {response.status if response else 'no answer'}")
            continue
        _settle(page)
        pages[name] = measured = Measured(path=path)
        _measure(page, name, measured)
        if depth < 2:
            for href in page.evaluate(_LINKS):
                # Settings → Security leads out of the organization: the password change
                # and the two-factor pages are the console's too.
                inside = (
                    href.startswith((f"/o/{slug}/", "/accounts/2fa/"))
                    or href == "/accounts/password_change/"
                )
                if inside and page_name(href, slug) not in pages:
                    queue.append((href, depth + 1))
    context.close()
    return Sweep(pages=pages, errors=errors)


# Every page the navigation leads to, by kind (ids as N). A new page fails
# test_the_sweep_reaches_every_page until it is added here, and is swept from then on.
PAGES = [
    "accounts-2fa-totp-activate",
    "accounts-2fa-webauthn-add",
    "accounts-password_change",
    "finance",
    "finance-add",
    "finance-add-N",
    "finance-auto-recharge",
    "finance-receipts-N",
    "finance-statements",
    "finance-statements-N",
    "main",
    "settings",
    "settings-alerts",
    "settings-alerts-N",
    "settings-alerts-new",
    "settings-alerts-notifications",
    "settings-audit",
    "settings-billing-details",
    "settings-keys",
    "settings-members",
    "settings-projects",
    "settings-projects-N",
    "settings-security",
    "settings-tokens",
    "usage",
    "usage-budgets",
    "usage-charges-batch-N",
    "usage-controllers",
    "usage-estimate",
    "usage-explore",
]


def test_the_sweep_reaches_every_page(sweep):
    assert not sweep.errors, sweep.errors
    reached, expected = set(sweep.pages), set(PAGES)
    assert reached == expected, (
        f"not reached: {sorted(expected - reached)}; new: {sorted(reached - expected)}"
    )


def _cases():
    for name in PAGES:
        for width in WIDTHS:
            yield pytest.param(name, width, id=f"{name}-{width}")


@pytest.mark.parametrize(("name", "width"), list(_cases()))
def test_page_fits_and_passes_axe(sweep, name, width):
    measured = sweep.pages.get(name)
    assert measured is not None, f"the sweep did not reach {name}"
    problems = measured.problems[width]
    assert not problems, f"{measured.path} at {width} px:\n" + "\n".join(problems)
