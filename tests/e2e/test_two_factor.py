"""In the browser: set up an authenticator app from the shown secret and sign in with its
code; a recovery code signs in once; a passkey added with Chromium's virtual
authenticator (DevTools' WebAuthn domain) signs in; an organization requiring two-factor
sends a member without one to set-up; ending another session signs that browser out."""

import re
import time
from urllib.parse import parse_qs

import pytest
from allauth.mfa.totp.internal.auth import TOTP
from playwright.sync_api import expect

from accounts.models import Role
from tests.accounts.test_two_factor import totp_code
from tests.factories import PASSWORD, make_member

pytestmark = pytest.mark.django_db(transaction=True)


def password_step(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def log_out(page):
    # From the organization's main page (allauth's own pages show no session chip).
    page.goto(re.sub(r"^(https?://[^/]+).*$", r"\1/", page.url))
    page.locator("#session-chip summary").click()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))


def open_security(page, member):
    page.get_by_role("link", name="Settings", exact=True).click()
    page.get_by_role("link", name="Security", exact=True).click()
    expect(page.get_by_role("heading", name="Security", level=1)).to_be_visible()


def confirm_password(page):
    # allauth asks for the password again before a factor changes.
    page.get_by_placeholder("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()


def test_authenticator_app_then_a_recovery_code_used_once(live_server, page, login):
    member = make_member()
    login(page, live_server.url, member.user.email, PASSWORD)
    open_security(page, member)
    page.get_by_role("link", name="Set up an authenticator app").click()
    confirm_password(page)
    expect(page.locator("img[src^='data:image/svg+xml']")).to_be_visible()  # the QR code
    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    codes = page.locator("#recovery_codes").input_value().split()
    assert len(codes) == 10
    log_out(page)

    password_step(page, live_server.url, member.user.email)
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    # The next 30-second step's code: the one typed at set-up may be the current one.
    page.get_by_placeholder("Code").fill(totp_code(secret, at=time.time() + 30))
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_test_id("chip-email")).to_have_text(member.user.email)
    log_out(page)

    for attempt in range(2):
        password_step(page, live_server.url, member.user.email)
        page.get_by_placeholder("Code").fill(codes[0])
        page.get_by_role("button", name="Sign In").click()
        if attempt == 0:
            expect(page.get_by_test_id("chip-email")).to_have_text(member.user.email)
            log_out(page)
    expect(page.get_by_text("Incorrect code.")).to_be_visible()
    assert page.get_by_test_id("chip-email").count() == 0


def test_a_passkey_from_the_virtual_authenticator_signs_in(live_server, page, login):
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    member = make_member()
    login(page, live_server.url, member.user.email, PASSWORD)
    open_security(page, member)
    page.get_by_role("link", name="Add a passkey").click()
    confirm_password(page)
    page.get_by_label("Name").fill("Laptop key")
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#recovery_codes")).to_be_visible()  # the first factor's codes
    log_out(page)

    assertions = []
    page.on(
        "request",
        lambda r: (
            assertions.append(parse_qs(r.post_data or "").get("credential", [None])[0])
            if r.method == "POST" and r.url.endswith("/accounts/2fa/authenticate/")
            else None
        ),
    )
    password_step(page, live_server.url, member.user.email)
    page.get_by_role("button", name="Use a security key").click()
    expect(page.get_by_test_id("chip-email")).to_have_text(member.user.email)
    open_security(page, member)
    expect(page.get_by_text("Laptop key")).to_be_visible()
    log_out(page)

    # The same signed assertion sent again, for a new sign-in, is refused: its challenge
    # was the earlier page's.
    replayed = next(a for a in assertions if a)
    password_step(page, live_server.url, member.user.email)
    page.locator("input[name=credential]").evaluate(
        "(input, value) => { input.value = value; input.form.submit(); }", replayed
    )
    page.wait_for_load_state()
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    assert page.get_by_test_id("chip-email").count() == 0


def test_an_organization_requiring_two_factor_sends_a_member_to_set_up(live_server, page, login):
    owner = make_member()
    TOTP.activate(owner.user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    org = owner.organization
    org.require_two_factor = True
    org.save()
    member = make_member(org=org, role=Role.MEMBER)
    password_step(page, live_server.url, member.user.email)
    page.wait_for_url(re.compile(r"/settings/security/$"))
    expect(page.get_by_text("requires two-factor authentication: set up")).to_be_visible()
    page.goto(f"{live_server.url}/o/{org.slug}/usage/")
    expect(page).to_have_url(re.compile(r"/settings/security/$"))


def test_ending_another_session_signs_that_browser_out(live_server, page, browser, login):
    member = make_member()
    other_context = browser.new_context(user_agent="Other browser")
    other = other_context.new_page()
    other.set_default_timeout(15_000)
    try:
        login(other, live_server.url, member.user.email, PASSWORD)
        login(page, live_server.url, member.user.email, PASSWORD)
        open_security(page, member)
        row = page.get_by_role("row").filter(has_text="Other browser")
        row.get_by_role("button", name="End session").click()
        expect(page.get_by_text("Session ended.")).to_be_visible()
        other.reload()
        expect(other).to_have_url(re.compile(r"/accounts/login/"))
        page.reload()
        expect(page.get_by_test_id("chip-email")).to_have_text(member.user.email)
    finally:
        other_context.close()
