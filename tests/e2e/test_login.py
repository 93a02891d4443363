import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, make_member

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_through_the_real_form_shows_the_session_chip(live_server, page, login):
    member = make_member()
    login(page, live_server.url, member.user.email, PASSWORD)

    assert page.get_by_test_id("chip-org").inner_text() == member.organization.name
    assert page.get_by_test_id("chip-email").inner_text() == member.user.email
    nav = page.get_by_role("navigation", name="Main")
    for text in ["Main", "Usage", "Finance", "Settings"]:
        assert nav.get_by_role("link", name=text, exact=True).is_visible()
    page.screenshot(path="tests/e2e/artifacts/main-after-login.png")


def test_wrong_password_stays_on_the_login_form_with_an_error(live_server, page):
    member = make_member()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(member.user.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()

    # The form posts and the page reloads: wait for the error (expect retries) rather
    # than look once, before the answer has arrived.
    expect(page.get_by_role("alert")).to_be_visible()
    assert page.get_by_test_id("chip-email").count() == 0
