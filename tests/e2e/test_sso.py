"""In the browser: single sign-on through a real OpenID Connect provider on loopback
(django-allauth's idp.oidc in a second process) creates the membership, from the login
page's "Sign in with SSO" and from the password form of a domain that requires it."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, Role
from accounts.sso import sso_provider_save
from tests.accounts.oidc_provider import PASSWORD as PROVIDER_PASSWORD
from tests.accounts.oidc_provider import serve
from tests.factories import make_member, make_org

pytestmark = pytest.mark.django_db(transaction=True)

PORT = 8482
ISSUER = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def oidc_provider(live_server, tmp_path_factory):
    callback = f"{live_server.url}/accounts/sso/callback/"
    with serve(port=PORT, folder=tmp_path_factory.mktemp("oidc-e2e"), redirect_uris=[callback]):
        yield ISSUER


def register(*, required: bool):
    owner = make_member(org=make_org(name="Acme", slug="acme"), role=Role.OWNER)
    sso_provider_save(
        org=owner.organization,
        actor=owner.user,
        issuer=ISSUER,
        client_id="console",
        client_secret="console-secret",
        domains=["acme.example"],
        default_role=Role.MEMBER,
        required=required,
        enabled=True,
    )
    return owner.organization


def at_the_provider(page, username: str):
    page.wait_for_url(re.compile(rf"^{re.escape(ISSUER)}/accounts/login/"))
    page.locator("input[name=login]").fill(username)
    page.locator("input[name=password]").fill(PROVIDER_PASSWORD)
    page.locator("form button[type=submit]").last.click()


def test_sign_in_with_sso_creates_the_membership(oidc_provider, live_server, page):
    org = register(required=False)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Sign in with SSO").click()
    page.get_by_label("Work email").fill("ada@acme.example")
    page.get_by_role("button", name="Continue").click()
    at_the_provider(page, "ada")

    expect(page.get_by_test_id("chip-email")).to_have_text("ada@acme.example")
    assert page.url.startswith(live_server.url)
    membership = Membership.objects.get(organization=org, user__email="ada@acme.example")
    assert membership.role == Role.MEMBER


def test_a_required_domain_goes_to_the_provider_from_the_password_form(
    oidc_provider, live_server, page
):
    org = register(required=True)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("bob@acme.example")
    page.get_by_label("Password").fill("not-asked")
    page.get_by_role("button", name="Log in").click()
    at_the_provider(page, "bob")

    expect(page.get_by_test_id("chip-email")).to_have_text("bob@acme.example")
    assert Membership.objects.filter(organization=org, user__email="bob@acme.example").exists()
