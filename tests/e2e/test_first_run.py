"""A first run in the browser: the demo's statements under Finance, and an invitation link
copied from the email as the embedded default prints it, opened in a second browser."""

import io
import re

import pytest
from django.core import mail
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from playwright.sync_api import expect

from accounts.models import Membership, Role
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_member

pytestmark = pytest.mark.django_db(transaction=True)


def test_finance_statements_lists_the_demos_closed_months(live_server, page, login):
    from console.demo import demo_seed

    logins = demo_seed(days=2)
    login(page, live_server.url, logins.email, logins.password)
    page.get_by_role("link", name="Finance", exact=True).click()
    page.get_by_role("link", name="Statements", exact=True).click()
    table = page.get_by_test_id("statements")
    expect(table).to_be_visible()
    months = table.locator("tbody tr td:first-child").all_inner_texts()
    # The demo's first payment was 180 days ago: every month since, up to the last one.
    assert len(months) == 6, months
    assert all(re.fullmatch(r"[A-Z][a-z]+ \d{4}", m) for m in months), months
    expect(page.get_by_text("No statements yet")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "first-run-statements.png"), full_page=True)
    page.get_by_role("link", name=months[0]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Statement for {months[0]}")
    expect(page.get_by_test_id("statement-summary")).to_contain_text("Closing balance")


def test_the_invitation_link_copied_from_the_printed_email_joins(
    live_server, page, browser, login, settings
):
    # Where the server listens, as `manage.py demo --serve` sets it.
    settings.SITE_URL = live_server.url
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    login(page, live_server.url, owner.user.email, PASSWORD)
    page.goto(f"{live_server.url}/o/{org.slug}/settings/members/")
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to newcomer@example.com").wait_for()

    # The message as the console backend prints it; a person selects the link's line.
    printed = io.StringIO()
    ConsoleBackend(stream=printed).send_messages([mail.outbox[-1]])
    (line,) = [x for x in printed.getvalue().splitlines() if "/accounts/invitations/" in x]
    assert line.startswith(live_server.url + "/accounts/invitations/")

    newcomer = browser.new_context(viewport={"width": 1280, "height": 800})
    other = newcomer.new_page()
    other.set_default_timeout(15_000)
    other.goto(line.strip())
    other.get_by_label("Password", exact=True).fill("a-long-pass-phrase-9")
    other.get_by_label("Password again").fill("a-long-pass-phrase-9")
    other.get_by_role("button", name="Create account and join").click()
    expect(other.get_by_test_id("chip-email")).to_have_text("newcomer@example.com")
    expect(other.locator("#session-chip")).to_contain_text(org.name)
    other.screenshot(path=str(ARTIFACTS / "first-run-invitation-joined.png"), full_page=True)
    newcomer.close()
    assert Membership.objects.get(organization=org, user__email="newcomer@example.com").role == (
        Role.MEMBER
    )
