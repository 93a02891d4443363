"""Programs' bearer calls to the API take the short path (no session, CSRF or page
middleware); a credential is kept a second in the process and a revocation made here
is seen at once."""

import pytest

from accounts.services import apikey_revoke
from tests.factories import make_api_key, make_member, make_org, make_user

pytestmark = pytest.mark.django_db


def test_a_program_call_gets_json_with_no_cookie_and_no_page_headers(client):
    org = make_org(name="Short Path")
    _key, secret = make_api_key(org=org)
    response = client.get("/api/v1/account", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert not response.cookies  # no session, no CSRF cookie
    assert "Cookie" not in response.get("Vary", "")
    assert int(response["Content-Length"]) == len(response.content)  # kept-open connections


def test_a_key_revoked_in_this_process_is_refused_on_the_next_call(client):
    org = make_org()
    key, secret = make_api_key(org=org)
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/account", headers=headers).status_code == 200
    apikey_revoke(key=key)
    response = client.get("/api/v1/account", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"


def test_the_browser_still_reaches_the_api_with_its_session(client):
    user = make_user(email="ines@short.example")
    org = make_org()
    make_member(org=org, user=user, role="owner")
    client.force_login(user)
    response = client.post(
        "/api/v1/auth/session-tokens",
        data={"organization": org.slug, "name": "laptop"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["token"].startswith("st-av-")
