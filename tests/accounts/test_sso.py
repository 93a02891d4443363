"""Single sign-on with OpenID Connect against a real provider: django-allauth's idp.oidc
served on loopback by a second process (tests/accounts/oidc_provider), started once for
the module. Sign-in creates the membership; a token for another audience, an email outside
the verified domains and a disabled provider are refused; so is a provider's refusal."""

import html
import re
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client
from django.urls import reverse

from accounts.auth import secret_decrypt
from accounts.models import AuditAction, AuditEvent, Membership, Role, SSOProvider, User
from accounts.sso import (
    SSOError,
    sso_discovery,
    sso_id_token_claims,
    sso_provider_save,
    sso_sign_in,
)
from tests.accounts.oidc_provider import PASSWORD as PROVIDER_PASSWORD
from tests.accounts.oidc_provider import ROOT, serve
from tests.factories import PASSWORD, make_member, make_org, make_user

pytestmark = pytest.mark.django_db

PORT = 8481
ISSUER = f"http://127.0.0.1:{PORT}"
CALLBACK = "http://testserver/accounts/sso/callback/"


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory):
    """The provider process, once for the module; its environment for commands."""
    with serve(port=PORT, folder=tmp_path_factory.mktemp("oidc"), redirect_uris=[CALLBACK]) as env:
        yield env


def provider_login(username: str) -> requests.Session:
    """A browser signed in at the provider (its own login form, with its CSRF token)."""
    browser = requests.Session()
    browser.get(f"{ISSUER}/accounts/login/", timeout=10)
    answer = browser.post(
        f"{ISSUER}/accounts/login/",
        data={
            "login": username,
            "password": PROVIDER_PASSWORD,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:500]
    return browser


def register(org, owner, **changes) -> SSOProvider:
    fields = {
        "issuer": ISSUER,
        "client_id": "console",
        "client_secret": "console-secret",
        "domains": ["acme.example"],
        "default_role": Role.VIEWER,
        "required": False,
        "enabled": True,
    }
    return sso_provider_save(org=org, actor=owner, **{**fields, **changes})


def provider_url(client, response) -> str:
    """Where the console sends the browser: its own page first, which moves on to the
    provider's authorization URL (a meta refresh and a link)."""
    assert response.status_code == 302
    assert response.url == reverse("sso_continue")
    page = client.get(response.url).content.decode()
    link = re.search(r'<a href="([^"]+)"[^>]*data-testid="sso-continue"', page)
    assert link is not None
    url = html.unescape(link.group(1))
    assert url.startswith(f"{ISSUER}/identity/o/authorize?")
    assert f'content="0; url={html.escape(url)}"' in page
    return url


def sso_round_trip(client, browser: requests.Session, email: str):
    """Start at the console, pass the provider, come back: the console's last answer."""
    start = client.post(reverse("sso_login"), {"email": email})
    at_provider = browser.get(provider_url(client, start), allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text[:500]
    back = urlsplit(at_provider.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return client.get(back.path, parse_qs(back.query))


@pytest.fixture
def acme():
    owner = make_member(org=make_org(name="Acme", slug="acme"), role=Role.OWNER)
    return owner.organization, owner.user


def test_first_sso_sign_in_makes_a_member_with_the_default_role(oidc_provider, client, acme):
    org, owner = acme
    register(org, owner)
    response = sso_round_trip(client, provider_login("ada"), "ada@acme.example")

    assert response.status_code == 302
    assert response.url == reverse("home")
    ada = User.objects.get(email="ada@acme.example")
    assert Membership.objects.get(organization=org, user=ada).role == Role.VIEWER
    assert client.session["_auth_user_id"] == str(ada.pk)
    assert client.get(f"/o/{org.slug}/").status_code == 200
    joined = AuditEvent.objects.get(organization=org, action=AuditAction.MEMBER_JOINED)
    assert joined.actor_email == "ada@acme.example"

    # The second time, the same person and the same single membership.
    client.logout()
    again = sso_round_trip(client, provider_login("ada"), "ada@acme.example")
    assert again.status_code == 302
    assert Membership.objects.filter(user=ada).count() == 1


def test_an_existing_person_joins_without_their_password(oidc_provider, client, acme):
    org, owner = acme
    register(org, owner, default_role=Role.MEMBER)
    bob = make_user(email="bob@acme.example")
    response = sso_round_trip(client, provider_login("bob"), "bob@acme.example")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(bob.pk)
    assert Membership.objects.get(organization=org, user=bob).role == Role.MEMBER


def test_an_email_outside_the_verified_domains_is_refused(oidc_provider, client, acme):
    org, owner = acme
    register(org, owner)
    # Started with an address of the organization's domain, answered by someone else's.
    response = sso_round_trip(client, provider_login("eve"), "ada@acme.example")

    assert response.status_code == 302
    assert response.url == reverse("sso_login")
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(email="eve@elsewhere.example").exists()
    assert Membership.objects.filter(organization=org).count() == 1


def test_a_token_for_another_audience_is_refused(oidc_provider, acme):
    org, owner = acme
    provider = register(org, owner)
    # A real ID token from the provider, but issued to another client ("other-app").
    browser = provider_login("ada")
    document = sso_discovery(issuer=ISSUER)
    authorize = browser.get(
        document["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": "other-app",
            "redirect_uri": CALLBACK,
            "scope": "openid email",
            "state": "s",
            "nonce": "n",
        },
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlsplit(authorize.headers["Location"]).query)["code"][0]
    tokens = requests.post(
        document["token_endpoint"],
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=("other-app", "other-app-secret"),
        timeout=10,
    ).json()

    with pytest.raises(SSOError, match="ID token did not check"):
        sso_id_token_claims(
            provider=provider, id_token=tokens["id_token"], nonce="n", document=document
        )
    # The same token for the client it was made for passes: the audience was the refusal.
    provider.client_id = "other-app"
    claims = sso_id_token_claims(
        provider=provider, id_token=tokens["id_token"], nonce="n", document=document
    )
    assert claims["email"] == "ada@acme.example"
    with pytest.raises(SSOError, match="not made for this sign-in"):
        sso_id_token_claims(
            provider=provider, id_token=tokens["id_token"], nonce="other", document=document
        )


def test_a_disabled_provider_is_refused(oidc_provider, client, acme):
    org, owner = acme
    register(org, owner, enabled=False)
    response = client.post(reverse("sso_login"), {"email": "ada@acme.example"})
    assert response.status_code == 302
    assert response.url == reverse("sso_login")
    assert not User.objects.filter(email="ada@acme.example").exists()


def test_a_provider_disabled_during_the_sign_in_is_refused(oidc_provider, client, acme):
    org, owner = acme
    provider = register(org, owner)
    browser = provider_login("ada")
    start = client.post(reverse("sso_login"), {"email": "ada@acme.example"})
    provider.enabled = False
    provider.save()
    back = urlsplit(
        browser.get(provider_url(client, start), allow_redirects=False, timeout=10).headers[
            "Location"
        ]
    )
    response = client.get(back.path, parse_qs(back.query))
    assert response.url == reverse("sso_login")
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(email="ada@acme.example").exists()


def test_the_providers_refusal_signs_nobody_in(oidc_provider, client, acme):
    org, owner = acme
    register(org, owner)
    start = client.post(reverse("sso_login"), {"email": "ada@acme.example"})
    state = parse_qs(urlsplit(provider_url(client, start)).query)["state"][0]
    # What a provider answers for someone removed there (or who cancelled).
    response = client.get(reverse("sso_callback"), {"state": state, "error": "access_denied"})
    assert response.url == reverse("sso_login")
    assert "_auth_user_id" not in client.session


def test_removal_at_the_provider_is_honoured_at_the_next_sign_in(oidc_provider, client, acme):
    org, owner = acme
    register(org, owner)
    browser = provider_login("cy")
    assert sso_round_trip(client, browser, "cy@acme.example").url == reverse("home")
    client.logout()
    # Cy is removed at the provider: it signs them out and sends no code back.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.contrib.auth.models import User;"
            " User.objects.filter(username='cy').update(is_active=False)",
        ],
        env=oidc_provider,
        cwd=ROOT,
        check=True,
    )
    start = client.post(reverse("sso_login"), {"email": "cy@acme.example"})
    at_provider = browser.get(provider_url(client, start), allow_redirects=False, timeout=10)
    assert at_provider.headers["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_a_required_domain_skips_the_password_form(oidc_provider, client, acme):
    org, owner = acme
    register(org, owner, required=True)
    make_user(email="ada@acme.example")
    response = client.post(reverse("login"), {"username": "ada@acme.example", "password": PASSWORD})
    assert response.status_code == 302
    provider_url(client, response)
    assert "_auth_user_id" not in client.session


def test_the_client_secret_is_stored_encrypted_and_changes_are_audited(oidc_provider, acme):
    org, owner = acme
    provider = register(org, owner)
    assert "console-secret" not in provider.client_secret_encrypted
    assert secret_decrypt(provider.client_secret_encrypted) == "console-secret"
    register(org, owner, client_secret="", required=True)
    events = AuditEvent.objects.filter(organization=org, action=AuditAction.SSO_PROVIDER_CHANGED)
    assert events.count() == 2
    assert "console-secret" not in str([e.data for e in events])
    assert events.order_by("pk").last().data["changed"] == ["required"]


def test_owner_registers_and_tests_the_provider_from_security(oidc_provider, client, acme):
    org, owner = acme
    client.force_login(owner)
    url = reverse("accounts:sso_provider_update", args=[org.slug])
    form = {
        "issuer": ISSUER,
        "client_id": "console",
        "client_secret": "console-secret",
        "domains": "acme.example\nACME-labs.example",
        "default_role": "member",
        "enabled": "on",
    }
    assert client.post(url, form).status_code == 302
    provider = SSOProvider.objects.get(organization=org)
    assert provider.domains == ["acme.example", "acme-labs.example"]
    tested = client.post(reverse("accounts:sso_provider_test", args=[org.slug]), follow=True)
    assert f"The provider at {ISSUER} answered." in tested.content.decode()

    bad = client.post(url, {**form, "domains": "not a domain!"}, follow=True)
    assert re.search("is not a domain name", bad.content.decode())
    assert SSOProvider.objects.get(organization=org).domains == provider.domains


def test_only_owners_change_single_sign_on(client, acme):
    org, _ = acme
    admin = make_member(org=org, role=Role.ADMIN).user
    client.force_login(admin)
    response = client.post(
        reverse("accounts:sso_provider_update", args=[org.slug]), {"issuer": ISSUER}
    )
    assert response.status_code == 403
    assert not SSOProvider.objects.exists()


def test_a_code_without_its_verifier_is_refused(oidc_provider, client, acme):
    org, owner = acme
    provider = register(org, owner)
    start = client.post(reverse("sso_login"), {"email": "ada@acme.example"})
    at_provider = provider_login("ada").get(
        provider_url(client, start), allow_redirects=False, timeout=10
    )
    code = parse_qs(urlsplit(at_provider.headers["Location"]).query)["code"][0]
    nonce = client.session["sso_pending"]["nonce"]
    # Someone who caught the code on its way back, without this browser's session.
    with pytest.raises(SSOError, match="refused to finish"):
        sso_sign_in(
            provider=provider,
            code=code,
            redirect_uri=CALLBACK,
            nonce=nonce,
            code_verifier="x" * 64,
        )
    assert not User.objects.filter(email="ada@acme.example").exists()


def test_a_two_factor_requirement_is_met_by_the_providers_sign_in(oidc_provider, client, acme):
    org, owner = acme
    org.require_two_factor = True
    org.save()
    register(org, owner)
    assert sso_round_trip(client, provider_login("ada"), "ada@acme.example").status_code == 302
    assert client.get(f"/o/{org.slug}/").status_code == 200

    # The same person signed in some other way (no SSO, no second factor) is sent to set-up.
    other = Client()
    other.force_login(User.objects.get(email="ada@acme.example"))
    response = other.get(f"/o/{org.slug}/")
    assert response.status_code == 302
    assert response.url == reverse("accounts:security", args=[org.slug])


def test_operators_see_providers_in_admin_without_the_secret(client, acme):
    org, owner = acme
    provider = register(org, owner)
    client.force_login(make_user(is_staff=True, is_superuser=True))
    listing = client.get("/admin/accounts/ssoprovider/")
    assert listing.status_code == 200
    assert ISSUER in listing.content.decode()
    detail = client.get(f"/admin/accounts/ssoprovider/{provider.pk}/change/").content.decode()
    assert "console" in detail
    assert "acme.example" in detail
    assert provider.client_secret_encrypted not in detail
    assert "console-secret" not in detail


def test_sign_in_starts_are_throttled_per_address(oidc_provider, client, acme):
    org, owner = acme
    register(org, owner)
    for _ in range(20):
        assert client.post(reverse("sso_login"), {"email": "ada@acme.example"}).status_code == 302
    refused = client.post(reverse("sso_login"), {"email": "ada@acme.example"})
    assert refused.status_code == 429
    assert "Too many sign-ins from here" in refused.content.decode()


def test_a_domain_of_another_organization_is_refused_and_nothing_is_written(acme):
    org, owner = acme
    register(org, owner)
    other = make_member(org=make_org(name="Rival", slug="rival"), role=Role.OWNER)
    with pytest.raises(SSOError, match="already signs in to another organization"):
        register(other.organization, other.user, domains=["rival.example", "acme.example"])
    assert not SSOProvider.objects.filter(organization=other.organization).exists()
    assert SSOProvider.objects.get(organization=org).domains == ["acme.example"]
    assert not AuditEvent.objects.filter(
        organization=other.organization, action=AuditAction.SSO_PROVIDER_CHANGED
    ).exists()


@pytest.mark.parametrize(
    "issuer", ["http://login.example", "ftp://login.example", "login.example", "https://"]
)
def test_an_issuer_not_on_https_is_refused(acme, issuer):
    org, owner = acme
    with pytest.raises(SSOError, match="starting with https://"):
        register(org, owner, issuer=issuer)
    assert not SSOProvider.objects.exists()
