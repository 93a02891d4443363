"""Settings pages: API keys and controllers. Secrets are shown once and never stored."""

import re

import pytest
from django.db import connection

from accounts.models import APIKey, Role
from tests.factories import make_api_key, make_controller, make_member, make_org
from usage.models import Controller

pytestmark = pytest.mark.django_db


def keys_url(org) -> str:
    return f"/o/{org.slug}/settings/keys/"


@pytest.fixture
def owner(client):
    membership = make_member(role=Role.OWNER)
    client.force_login(membership.user)
    return membership


def test_the_settings_page_links_to_keys_and_controllers(client, owner):
    page = client.get(f"/o/{owner.organization.slug}/settings/").content.decode()
    assert keys_url(owner.organization) in page
    assert f"/o/{owner.organization.slug}/usage/controllers/" in page


def test_creating_a_key_shows_its_secret_once_and_it_works(client, owner):
    org = owner.organization
    created = client.post(
        keys_url(org) + "create", {"name": "Lab workstation", "kind": "workspace"}
    )
    assert created.status_code == 302 and created["Location"] == keys_url(org)
    response = client.get(keys_url(org))
    assert response["Cache-Control"] == "no-store"
    secret = re.search(r'data-testid="new-secret">([^<]+)<', response.content.decode()).group(1)
    key = APIKey.objects.get(organization=org)
    assert secret.startswith("sk-av-") and key.display == f"sk-av••••••••{secret[-4:]}"
    assert (key.kind, key.user, key.created_by) == ("workspace", None, owner.user)

    # Reloaded: the key is listed, its secret is gone, and no second key was made.
    listing = client.get(keys_url(org)).content.decode()
    assert "Lab workstation" in listing and key.display in listing
    assert secret not in listing
    assert APIKey.objects.filter(organization=org).count() == 1

    api = client.post(
        "/api/v1/usage/records",
        data='{"records": []}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert api.status_code == 200


def test_a_personal_key_belongs_to_its_creator(client, owner):
    client.post(keys_url(owner.organization) + "create", {"name": "Mine", "kind": "personal"})
    assert APIKey.objects.get().user == owner.user


def test_revoking_a_key_stops_it(client, owner):
    org = owner.organization
    key, secret = make_api_key(org=org)
    response = client.post(keys_url(org) + f"{key.pk}/revoke")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "Revoked" in client.get(keys_url(org)).content.decode()
    api = client.post(
        "/api/v1/usage/records",
        data="{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert api.status_code == 401


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_see_keys_but_only_owners_and_admins_create_or_revoke(client, role):
    membership = make_member(role=role)
    org = membership.organization
    key, _ = make_api_key(org=org, name="Shared")
    client.force_login(membership.user)
    page = client.get(keys_url(org))
    assert page.status_code == 200 and "Shared" in page.content.decode()
    assert (
        client.post(keys_url(org) + "create", {"name": "x", "kind": "workspace"}).status_code == 403
    )
    assert client.post(keys_url(org) + f"{key.pk}/revoke").status_code == 403
    assert APIKey.objects.filter(organization=org).count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None


def test_another_organizations_member_gets_404(client, owner):
    other = make_org()
    theirs, _ = make_api_key(org=other)
    assert client.get(keys_url(other)).status_code == 404
    assert (
        client.post(keys_url(other) + "create", {"name": "x", "kind": "workspace"}).status_code
        == 404
    )
    assert client.post(keys_url(other) + f"{theirs.pk}/revoke").status_code == 404
    # Their key id under our own organization's URL is not found either.
    assert client.post(keys_url(owner.organization) + f"{theirs.pk}/revoke").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_registering_a_controller_shows_its_token_once(client, owner):
    org = owner.organization
    url = f"/o/{org.slug}/usage/controllers/"
    response = client.post(
        url + "create", {"name": "dgx-01", "cores": 64, "memory_gb": 256}, follow=True
    )
    assert response.redirect_chain == [(url, 302)]
    token = re.search(r'data-testid="new-token">([^<]+)<', response.content.decode()).group(1)
    controller = Controller.objects.get(organization=org)
    assert (controller.name, controller.cores, controller.memory_gb) == ("dgx-01", 64, 256)
    page = client.get(url).content.decode()
    assert "dgx-01" in page and "Offline" in page and token not in page
    beat = client.post(
        "/api/v1/controllers/heartbeat", headers={"Authorization": f"Bearer {token}"}
    )
    assert beat.status_code == 200
    assert "Online" in client.get(url).content.decode()
    duplicate = client.post(url + "create", {"name": "dgx-01", "cores": 1, "memory_gb": 1})
    assert duplicate.status_code == 400


def test_secrets_never_reach_the_database(client, owner):
    """Create keys and a controller through every path, then search every column of every table."""
    org = owner.organization
    page = client.post(keys_url(org) + "create", {"name": "Web", "kind": "workspace"}, follow=True)
    secrets = [re.search(r'data-testid="new-secret">([^<]+)<', page.content.decode()).group(1)]
    secrets.append(make_api_key(org=org)[1])
    controller_page = client.post(
        f"/o/{org.slug}/usage/controllers/create",
        {"name": "c1", "cores": 1, "memory_gb": 1},
        follow=True,
    )
    secrets.append(
        re.search(r'data-testid="new-token">([^<]+)<', controller_page.content.decode()).group(1)
    )
    secrets.append(make_controller(org=org)[1])
    for secret in secrets:
        client.post(
            "/api/v1/usage/records",
            data='{"records": []}',
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )

    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                text = " ".join(str(value) for value in row)
                for secret in secrets:
                    assert secret not in text, f"a secret is stored in {table}"
                    assert secret[6:] not in text, f"a secret's body is stored in {table}"
