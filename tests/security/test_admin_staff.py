"""Staff users in Django admin get what their permissions give, nothing more: the
platform overview needs the permission to view organizations, and only a superuser
makes someone superuser or staff (or puts them in a group)."""

import pytest
from django.contrib.auth.models import Group, Permission

from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db


def _staff(*codenames: str):
    user = make_user(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_a_staff_user_without_permissions_sees_no_platform_overview(client):
    make_org(name="Secretive Labs")
    client.force_login(_staff())
    page = client.get("/admin/")
    assert page.status_code == 200
    assert b"platform-overview" not in page.content
    assert b"Secretive Labs" not in page.content


def test_the_permission_to_view_organizations_shows_it(client):
    make_org(name="Open Labs")
    client.force_login(_staff("view_organization"))
    page = client.get("/admin/")
    assert b'data-testid="platform-overview"' in page.content


def _change_self(client, user, **fields):
    data = {"email": user.email, "full_name": "", "is_active": "on",
            "last_login_0": "", "last_login_1": "", "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00", **fields}  # fmt: skip
    return client.post(f"/admin/accounts/user/{user.pk}/change/", data)


def test_change_user_permission_cannot_grant_superuser_staff_or_groups(client):
    staff = _staff("change_user", "view_user")
    everything = Group.objects.create(name="everything")
    everything.permissions.set(Permission.objects.all())
    other = make_user(email="plain@example.com")
    client.force_login(staff)
    assert _change_self(client, staff, is_staff="on", is_superuser="on",
                        groups=[everything.pk]).status_code == 302  # fmt: skip
    assert _change_self(client, other, is_staff="on", is_superuser="on").status_code == 302
    staff.refresh_from_db()
    other.refresh_from_db()
    assert not staff.is_superuser and not staff.groups.exists()
    assert (other.is_staff, other.is_superuser) == (False, False)


def test_a_superuser_still_can(client):
    boss = make_user(is_staff=True, is_superuser=True)
    other = make_user(email="plain@example.com")
    client.force_login(boss)
    assert _change_self(client, other, is_staff="on", is_superuser="on").status_code == 302
    other.refresh_from_db()
    assert other.is_staff and other.is_superuser
