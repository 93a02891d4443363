"""Session tokens (issue, expiry, renewal, revocation), API keys, organization scoping."""

import hashlib
from datetime import timedelta

import pytest

from accounts.models import Membership, SessionToken
from accounts.services import apikey_revoke
from tests.api.conftest import NOW, bearer

pytestmark = pytest.mark.django_db

CREDITS = "/api/v1/account/credits"


def test_settings_page_issues_a_token_shown_once_and_stored_as_a_hash(client, seeded):
    client.force_login(seeded.owner)
    page = client.get(f"/o/{seeded.org.slug}/settings/tokens/")
    assert page.status_code == 200 and b"30 days" in page.content
    created = client.post(f"/o/{seeded.org.slug}/settings/tokens/create", {"name": "notebook"})
    assert created.status_code == 302  # POST/redirect/GET: the secret is shown after it
    issued = client.get(created["Location"])
    secret = issued.context["issued"]["secret"]
    assert secret.startswith("st-av-") and secret.encode() in issued.content
    assert issued["Cache-Control"] == "no-store"
    token = SessionToken.objects.get(name="notebook")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(getattr(token, f.attname)) for f in SessionToken._meta.fields}
    assert token.expires_at == NOW + timedelta(days=30)
    assert client.get(CREDITS, headers=bearer(secret)).status_code == 200
    listing = client.get(f"/o/{seeded.org.slug}/settings/tokens/")
    assert secret.encode() not in listing.content and token.display.encode() in listing.content


def test_the_endpoint_issues_a_token_to_a_logged_in_member_only(client, seeded):
    url = "/api/v1/auth/session-tokens"
    body = {"organization": seeded.org.slug, "name": "cli"}
    anonymous = client.post(url, body, content_type="application/json")
    assert anonymous.status_code == 401
    client.force_login(seeded.ana)
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 201
    data = response.json()
    assert data["token"].startswith("st-av-") and data["email"] == "ana@example.com"
    assert data["expires_at"] == "2026-12-20T12:00:00Z"
    me = client.get("/api/v1/auth/session-token", headers=bearer(data["token"]))
    assert me.status_code == 200 and me.json()["id"] == data["id"]
    theirs = client.post(url, {"organization": seeded.other.slug}, content_type="application/json")
    assert theirs.status_code == 404


def test_an_expired_token_is_a_401_that_says_it_expired(client, seeded, frozen):
    frozen.shift(timedelta(days=30) - timedelta(seconds=1))
    assert client.get(CREDITS, headers=bearer(seeded.token_secret)).status_code == 200
    frozen.shift(timedelta(seconds=1))
    response = client.get(CREDITS, headers=bearer(seeded.token_secret))
    assert response.status_code == 401
    assert response.json()["error"] == "session_token_expired"
    assert "expired" in response.json()["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    renew = client.post("/api/v1/auth/session-token/renew", headers=bearer(seeded.token_secret))
    assert renew.status_code == 401 and renew.json()["error"] == "session_token_expired"


def test_renewal_extends_the_same_token_30_days_from_now(client, seeded, frozen):
    frozen.shift(timedelta(days=29))
    response = client.post("/api/v1/auth/session-token/renew", headers=bearer(seeded.token_secret))
    assert response.status_code == 200
    assert response.json()["expires_at"] == "2027-01-18T12:00:00Z"  # day 29 + 30 days
    assert response.json()["renewed_at"] == "2026-12-19T12:00:00Z"
    frozen.shift(timedelta(days=20))  # day 49: past the first expiry, within the renewed one
    assert client.get(CREDITS, headers=bearer(seeded.token_secret)).status_code == 200
    frozen.shift(timedelta(days=11))  # day 60
    assert client.get(CREDITS, headers=bearer(seeded.token_secret)).status_code == 401


def test_renewal_and_revocation_from_the_settings_page(client, seeded, frozen):
    client.force_login(seeded.owner)
    base = f"/o/{seeded.org.slug}/settings/tokens/{seeded.token.pk}"
    frozen.shift(timedelta(days=10))
    assert client.post(f"{base}/renew").status_code == 302
    seeded.token.refresh_from_db()
    assert seeded.token.expires_at == NOW + timedelta(days=40)
    assert client.post(f"{base}/revoke").status_code == 302
    response = client.get(CREDITS, headers=bearer(seeded.token_secret))
    assert response.status_code == 401 and response.json()["error"] == "invalid_session_token"
    # Somebody else's token is not yours to renew, even in your organization.
    client.force_login(seeded.ana)
    assert client.post(f"{base}/renew").status_code == 404


def test_revoking_the_token_in_use_through_the_api(client, seeded):
    response = client.delete("/api/v1/auth/session-token", headers=bearer(seeded.token_secret))
    assert response.status_code == 204
    again = client.get(CREDITS, headers=bearer(seeded.token_secret))
    assert again.status_code == 401 and again.json()["error"] == "invalid_session_token"


def test_a_token_stops_working_when_its_person_leaves_the_organization(client, seeded):
    Membership.objects.filter(user=seeded.owner, organization=seeded.org).delete()
    response = client.get(CREDITS, headers=bearer(seeded.token_secret))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("", "invalid_credentials"),
        ("Basic abc", "invalid_credentials"),
        ("Bearer sk-av-unknown", "invalid_api_key"),
        ("Bearer st-av-unknown", "invalid_session_token"),
    ],
)
def test_reads_without_valid_credentials_are_401(client, seeded, authorization, code):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/api/v1/usage/llm", headers=headers)
    assert response.status_code == 401 and response.json()["error"] == code


def test_a_revoked_api_key_cannot_read(client, seeded):
    from accounts.selectors import apikey_for_secret

    apikey_revoke(key=apikey_for_secret(secret=seeded.key_secret))
    assert client.get(CREDITS, headers=bearer(seeded.key_secret)).status_code == 401


def test_a_session_token_cannot_send_usage(client, seeded):
    response = client.post(
        "/api/v1/usage/records",
        {"records": []},
        content_type="application/json",
        headers=bearer(seeded.token_secret),
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_api_key"


@pytest.mark.parametrize("credential", ["key_secret", "token_secret"])
def test_another_organizations_ids_are_404(client, seeded, credential):
    headers = bearer(getattr(seeded, credential))
    other = seeded.other.pk
    for url in [
        f"/api/v1/usage/llm?org_id={other}",
        f"/api/v1/usage/matching?org_id={other}",
        f"/api/v1/usage/llm/organization/{other}/summary",
        f"/api/v1/usage/llm/{seeded.queries['theirs'].pk}",
    ]:
        response = client.get(url, headers=headers)
        assert response.status_code == 404, url
        assert response.json()["error"] == "not_found"
    own = client.get(f"/api/v1/usage/llm?org_id={seeded.org.pk}", headers=headers)
    assert own.status_code == 200


def test_the_other_organizations_credentials_see_only_their_own(client, seeded):
    headers = bearer(seeded.other_secret)
    items = client.get("/api/v1/usage/llm", headers=headers).json()["items"]
    assert [i["id"] for i in items] == [seeded.queries["theirs"].pk]
    mine = client.get(f"/api/v1/usage/llm/{seeded.queries['q1'].pk}", headers=headers)
    assert mine.status_code == 404
