"""Programs' bearer calls to the API take the short path (no session, CSRF or page
middleware); a credential is kept a second in the process and a revocation made here
is seen at once."""

from decimal import Decimal

import pytest

from accounts.credential_cache import instance_copy
from accounts.models import APIKey
from accounts.services import apikey_revoke
from spend.models import Budget
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


def test_each_path_answers_for_its_own_object_when_resolutions_are_remembered(client):
    org = make_org()
    _key, secret = make_api_key(org=org)
    headers = {"Authorization": f"Bearer {secret}"}
    budgets = [
        Budget.objects.create(
            organization=org, scope="organization", period=period, soft_limit=Decimal(limit)
        )
        for period, limit in (("day", "5"), ("month", "90"))
    ]
    for _round in range(2):  # the second round takes the remembered resolutions
        for budget, limit in zip(budgets, ("5", "90"), strict=True):
            response = client.get(f"/api/v1/budgets/{budget.pk}", headers=headers)
            assert response.status_code == 200
            assert (response.json()["id"], response.json()["soft_limit"]) == (budget.pk, limit)
    assert client.get("/api/v1/budgets/999999999", headers=headers).status_code == 404


def test_a_request_changing_its_copy_of_a_kept_credential_leaves_the_kept_one_alone():
    org = make_org(name="Kept")
    key, _secret = make_api_key(org=org)
    kept = APIKey.objects.select_related("organization").get(pk=key.pk)
    other = make_org(name="Other")
    mine = instance_copy(kept, organization=instance_copy(kept.organization))
    mine.name = "changed by a request"
    mine.organization.name = "changed too"
    mine.organization = other
    assert kept.name == "Test key"
    assert kept.organization.name == "Kept"
    assert kept.organization_id == org.pk
    assert (mine.name, mine.organization_id, mine.pk) == ("changed by a request", other.pk, key.pk)
