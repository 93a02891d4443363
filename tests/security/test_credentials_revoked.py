"""A member who leaves (membership removed, person deactivated or deleted) loses their
personal API keys and session tokens; a password change ends the session tokens;
unknown and revoked credentials get the same answer; no credential reaches a log."""

import logging

import pytest
from django.urls import reverse

from accounts.models import APIKey, Membership, Role, SessionToken
from accounts.services import (
    apikey_revoke,
    membership_remove,
    session_token_issue,
    session_token_revoke,
    user_deactivate,
)
from tests.factories import PASSWORD, grant_credits, make_api_key, make_member, make_user

pytestmark = pytest.mark.django_db

CREDITS = "/api/v1/account/credits"
RECORDS = "/api/v1/usage/records"


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def leaver():
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    grant_credits(org=org, amount="100")
    member = make_member(org=org, role=Role.MEMBER)
    _key, personal = make_api_key(org=org, kind="personal", user=member.user, name="mine")
    _wkey, workspace = make_api_key(org=org, kind="workspace", user=None, name="shared")
    token = session_token_issue(user=member.user, org=org).secret
    return member, personal, workspace, token


def _query(n: int = 1) -> dict:
    return {
        "records": [
            {
                "id": f"q-{n}",
                "kind": "query",
                "occurred_at": "2026-01-01T10:00:00Z",
                "model": "llama-3.1-8b",
                "input_tokens": 1,
                "output_tokens": 1,
            }
        ]
    }


def _works(client, secret: str) -> bool:
    return client.get(CREDITS, headers=bearer(secret)).status_code == 200


def test_removing_the_member_revokes_their_personal_key_and_tokens_not_the_workspace_key(
    client, leaver
):
    member, personal, workspace, token = leaver
    assert _works(client, personal) and _works(client, token)
    membership_remove(membership=member)
    assert not _works(client, personal)
    assert not _works(client, token)
    ingest = client.post(
        RECORDS, _query(), content_type="application/json", headers=bearer(personal)
    )
    assert ingest.status_code == 401
    assert _works(client, workspace)  # the organization's key, not the person's


def test_deleting_the_membership_in_admin_revokes_too(client, leaver):
    member, personal, _workspace, token = leaver
    admin = make_user(is_staff=True, is_superuser=True)
    client.force_login(admin)
    url = reverse("admin:accounts_membership_delete", args=[member.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    client.logout()
    assert not _works(client, personal) and not _works(client, token)


def test_deactivating_the_person_revokes_their_keys_everywhere(client, leaver):
    member, personal, _workspace, token = leaver
    user_deactivate(user=member.user)
    assert not _works(client, personal) and not _works(client, token)
    assert APIKey.objects.get(user=member.user).revoked_at is not None


def test_deactivating_in_admin_revokes_too(client, leaver):
    member, personal, _workspace, token = leaver
    user = member.user
    user.is_active = False
    user.save()  # what the admin's change form does
    assert not _works(client, personal) and not _works(client, token)


def test_deleting_the_person_revokes_their_personal_key(client, leaver):
    member, personal, _workspace, _token = leaver
    key_id = APIKey.objects.get(user=member.user).pk
    member.user.delete()
    assert APIKey.objects.get(pk=key_id).revoked_at is not None
    assert not _works(client, personal)


def test_a_password_change_ends_the_session_tokens(client, leaver):
    member, personal, _workspace, token = leaver
    client.force_login(member.user)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "A-new-pass-9471",
            "new_password2": "A-new-pass-9471",
        },
    )
    assert response.status_code == 302
    client.logout()
    assert not _works(client, token)
    assert _works(client, personal)  # keys are the organization's programs': they stay
    assert not SessionToken.objects.filter(user=member.user, revoked_at__isnull=True).exists()


def test_logging_in_does_not_revoke_anything(client, leaver):
    member, _personal, _workspace, token = leaver
    assert (
        client.post(
            reverse("login"), {"username": member.user.email, "password": PASSWORD}
        ).status_code
        == 302
    )
    assert _works(client, token)


def test_an_unknown_and_a_revoked_api_key_get_the_same_answer(client, leaver):
    member, personal, _workspace, token = leaver
    apikey_revoke(key=APIKey.objects.get(user=member.user))
    revoked = client.get(CREDITS, headers=bearer(personal))
    unknown = client.get(CREDITS, headers=bearer("sk-av-" + "x" * 40))
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.json() == unknown.json()
    assert revoked.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]


def test_an_unknown_and_a_revoked_session_token_get_the_same_answer(client, leaver):
    _member, _personal, _workspace, token = leaver
    session_token_revoke(token=SessionToken.objects.get())
    revoked = client.get(CREDITS, headers=bearer(token))
    unknown = client.get(CREDITS, headers=bearer("st-av-" + "x" * 40))
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.json() == unknown.json()


@pytest.mark.parametrize("scheme", ["Token", "Basic", "bearer-ish", "Bearer"])
def test_no_credential_in_any_log_line_at_any_level(client, leaver, settings, caplog, scheme):
    settings.DEBUG = True
    _member, personal, _workspace, _token = leaver
    caplog.set_level(logging.DEBUG)
    client.get(CREDITS, headers={"Authorization": f"{scheme} {personal}"})
    client.post(
        RECORDS,
        _query(),
        content_type="application/json",
        headers={"Authorization": f"{scheme} {personal}"},
    )
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert personal not in logged
    assert personal[-12:] not in logged
