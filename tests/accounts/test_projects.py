"""Projects (docs/projects.md): every organization has one Default project; keys belong
to one; an archived project's keys are refused; members limited to projects see only
theirs, on pages and in the API."""

import pytest
from django.urls import reverse

from accounts.models import (
    APIKey,
    AuditEvent,
    Project,
    ProjectMembership,
    ProjectRole,
    Role,
)
from accounts.projects import (
    ProjectError,
    project_archive,
    project_create,
    project_grant_remove,
    project_grant_set,
    project_ids_visible,
    project_unarchive,
    project_update,
    projects_visible,
)
from accounts.services import apikey_create, organization_create, session_token_issue
from tests.factories import make_api_key, make_member, make_org, make_project

pytestmark = pytest.mark.django_db

ACCOUNT = "/api/v1/account"


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def world():
    """An organization with projects A and B, a key in each, an owner and a member
    limited to A; and another organization."""
    org = make_org(name="Projects Org")
    owner = make_member(org=org, role=Role.OWNER)
    limited = make_member(org=org, role=Role.MEMBER)
    viewer = make_member(org=org, role=Role.VIEWER)  # not limited: sees everything
    a, b = make_project(org=org, name="A"), make_project(org=org, name="B")
    key_a, secret_a = make_api_key(org=org, name="key of A", project=a)
    key_b, secret_b = make_api_key(org=org, name="key of B", project=b)
    project_grant_set(project=a, membership=limited, role=ProjectRole.MEMBER)
    other = make_org(name="Other Org")
    other_project = make_project(org=other, name="Theirs")
    return {
        "org": org,
        "owner": owner,
        "limited": limited,
        "viewer": viewer,
        "a": a,
        "b": b,
        "key_a": key_a,
        "key_b": key_b,
        "secret_a": secret_a,
        "secret_b": secret_b,
        "other_project": other_project,
    }


# --- Default project and keys ------------------------------------------------------------


def test_a_new_organization_has_one_default_project_and_keys_land_in_it():
    new = organization_create(name="Fresh", owner_email="fresh@example.com")
    projects = list(Project.objects.filter(organization=new.organization))
    assert [(p.name, p.is_default) for p in projects] == [("Default", True)]
    key = apikey_create(org=new.organization, name="first").key
    assert key.project == projects[0]


def test_the_default_project_cannot_be_archived_and_stays_one():
    org = make_org()
    default = Project.objects.get(organization=org, is_default=True)
    with pytest.raises(ProjectError, match="Default project cannot be archived"):
        project_archive(project=default)
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.create(organization=org, name="Second default", is_default=True)


def test_names_are_unique_per_organization_ignoring_case(world):
    with pytest.raises(ProjectError, match="already a project named"):
        project_create(org=world["org"], name="a")
    with pytest.raises(ProjectError, match="already a project named"):
        project_update(project=world["b"], name=" A ")
    assert project_create(org=make_org(), name="A").name == "A"  # another organization's


def test_a_key_cannot_be_made_in_an_archived_or_foreign_project(world):
    project_archive(project=world["b"])
    with pytest.raises(ProjectError, match="archived"):
        apikey_create(org=world["org"], name="late", project=world["b"])
    with pytest.raises(ProjectError, match="No such project"):
        apikey_create(org=world["org"], name="theirs", project=world["other_project"])
    assert not APIKey.objects.filter(name__in=["late", "theirs"]).exists()


def test_every_change_is_in_the_audit_log(world):
    owner = world["owner"].user
    project = project_create(org=world["org"], name="Audited", actor=owner)
    project_update(project=project, name="Audited 2", actor=owner)
    project_archive(project=project, actor=owner)
    project_archive(project=project, actor=owner)  # twice: one event
    project_unarchive(project=project, actor=owner)
    grant = project_grant_set(project=project, membership=world["viewer"], role="viewer")
    project_grant_remove(grant=grant, actor=owner)
    actions = list(
        AuditEvent.objects.filter(target=f"project:{project.pk}")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "project.created",
        "project.updated",
        "project.archived",
        "project.unarchived",
        "project.member_set",
        "project.member_removed",
    ]


# --- Archived projects' keys ---------------------------------------------------------------


def test_an_archived_projects_key_is_refused_with_the_reason_and_works_again_after(client, world):
    headers = bearer(world["secret_b"])
    assert client.get(ACCOUNT, headers=headers).status_code == 200  # now in the cache
    project_archive(project=world["b"])
    refused = client.get(ACCOUNT, headers=headers)
    assert refused.status_code == 403
    assert refused.json() == {"error": "project_archived", "message": "Project B is archived"}
    sent = client.post(
        "/api/v1/usage/records", {"records": []}, content_type="application/json", headers=headers
    )
    assert sent.status_code == 403 and sent.json()["error"] == "project_archived"
    assert client.get(ACCOUNT, headers=bearer(world["secret_a"])).status_code == 200
    project_unarchive(project=world["b"])
    assert client.get(ACCOUNT, headers=headers).status_code == 200


def test_the_credential_cache_keeps_an_archive_made_elsewhere_at_most_its_ttl(
    client, world, settings, monkeypatch
):
    """Another process's archive (a plain UPDATE here, no cache clearing) is seen once the
    kept copy is older than the cache's TTL, as a revocation is."""
    import time

    import accounts.credential_cache as cache

    settings.API_CREDENTIAL_CACHE_SECONDS = 30
    headers = bearer(world["secret_b"])
    assert client.get(ACCOUNT, headers=headers).status_code == 200
    Project.objects.filter(pk=world["b"].pk).update(archived_at="2026-01-01T00:00Z")
    assert client.get(ACCOUNT, headers=headers).status_code == 200  # the kept copy
    real = time.monotonic
    monkeypatch.setattr(cache.time, "monotonic", lambda: real() + 31)
    assert client.get(ACCOUNT, headers=headers).status_code == 403


# --- Who sees which projects ---------------------------------------------------------------


def test_the_selectors_scope_by_organization_and_grants(world):
    org_projects = {p.name for p in Project.objects.filter(organization=world["org"])}
    assert {p.name for p in projects_visible(membership=world["owner"])} == org_projects
    assert {p.name for p in projects_visible(membership=world["viewer"])} == org_projects
    assert project_ids_visible(membership=world["owner"]) is None
    assert {p.name for p in projects_visible(membership=world["limited"])} == {"A"}
    assert project_ids_visible(membership=world["limited"]) == frozenset({world["a"].pk})


def test_removing_the_last_grant_narrows_to_nothing_never_widens(world):
    grant = ProjectMembership.objects.get(membership=world["limited"])
    project_grant_remove(grant=grant)
    world["limited"].refresh_from_db()
    assert list(projects_visible(membership=world["limited"])) == []
    assert project_ids_visible(membership=world["limited"]) == frozenset()


def test_owners_admins_and_billing_cannot_be_limited(world):
    for role in (Role.OWNER, Role.ADMIN, Role.BILLING):
        member = make_member(org=world["org"], role=role)
        with pytest.raises(ProjectError, match="sees every project"):
            project_grant_set(project=world["a"], membership=member, role="viewer")


def test_a_limited_member_sees_only_their_projects_keys_and_404s_for_the_others(client, world):
    org = world["org"]
    client.force_login(world["limited"].user)
    page = client.get(reverse("accounts:api_keys", args=[org.slug]))
    assert b"key of A" in page.content and b"key of B" not in page.content
    revoke_b = reverse("accounts:api_key_revoke", args=[org.slug, world["key_b"].pk])
    assert client.get(revoke_b).status_code == 404
    assert client.post(revoke_b).status_code == 404
    assert (
        client.get(reverse("accounts:project", args=[org.slug, world["b"].pk])).status_code == 404
    )
    listing = client.get(reverse("accounts:projects", args=[org.slug]))
    assert b">A</a>" in listing.content and b">B</a>" not in listing.content
    # A project member (not project admin) creates and revokes nothing.
    revoke_a = reverse("accounts:api_key_revoke", args=[org.slug, world["key_a"].pk])
    assert client.post(revoke_a).status_code == 403
    create = reverse("accounts:api_key_create", args=[org.slug])
    assert client.post(create, {"name": "x", "kind": "workspace"}).status_code == 403


def test_a_project_admin_manages_their_projects_keys_only(client, world):
    org = world["org"]
    project_grant_set(project=world["a"], membership=world["limited"], role=ProjectRole.ADMIN)
    client.force_login(world["limited"].user)
    create = reverse("accounts:api_key_create", args=[org.slug])
    made = client.post(create, {"name": "A's new", "kind": "workspace", "project": world["a"].pk})
    assert made.status_code == 302
    assert APIKey.objects.get(name="A's new").project == world["a"]
    into_b = client.post(create, {"name": "B's new", "kind": "workspace", "project": world["b"].pk})
    assert into_b.status_code == 400 and b"Select a valid choice" in into_b.content
    assert not APIKey.objects.filter(name="B's new").exists()
    revoke_a = reverse("accounts:api_key_revoke", args=[org.slug, world["key_a"].pk])
    assert client.post(revoke_a).status_code == 302
    assert APIKey.objects.get(pk=world["key_a"].pk).revoked_at is not None


# --- The Projects page -----------------------------------------------------------------------


def test_owners_create_rename_and_archive_on_the_page_each_post_redirecting(client, world):
    org = world["org"]
    client.force_login(world["owner"].user)
    created = client.post(reverse("accounts:project_create", args=[org.slug]), {"name": "Research"})
    assert created.status_code == 302
    project = Project.objects.get(organization=org, name="Research")
    assert created["Location"] == reverse("accounts:project", args=[org.slug, project.pk])
    duplicate = client.post(
        reverse("accounts:project_create", args=[org.slug]), {"name": "research"}
    )
    assert duplicate.status_code == 400
    assert "There is already a project named “research”." in duplicate.content.decode()
    renamed = client.post(
        reverse("accounts:project_update", args=[org.slug, project.pk]),
        {"name": "Research lab", "description": "The lab"},
    )
    assert renamed.status_code == 302
    archive = reverse("accounts:project_archive", args=[org.slug, project.pk])
    question = client.get(archive)
    assert (
        question.status_code == 200
        and "Archive the project “Research lab”?" in question.content.decode()
    )
    done = client.post(archive, follow=True)
    assert "Archived Research lab" in done.content.decode()
    assert Project.objects.get(pk=project.pk).archived_at is not None
    listing = client.get(reverse("accounts:projects", args=[org.slug]))
    assert "Archived" in listing.content.decode()


def test_a_grant_on_the_page_limits_the_member(client, world):
    org = world["org"]
    client.force_login(world["owner"].user)
    url = reverse("accounts:project_grant", args=[org.slug, world["b"].pk])
    given = client.post(url, {"member": world["viewer"].pk, "role": "viewer"})
    assert given.status_code == 302
    world["viewer"].refresh_from_db()
    assert {p.name for p in projects_visible(membership=world["viewer"])} == {"B"}
    owner_grant = client.post(url, {"member": world["owner"].pk, "role": "viewer"})
    assert owner_grant.status_code == 400  # not offered: owners see every project


def test_members_cannot_change_projects(client, world):
    org = world["org"]
    client.force_login(world["viewer"].user)
    assert client.get(reverse("accounts:projects", args=[org.slug])).status_code == 200
    assert (
        client.post(reverse("accounts:project_create", args=[org.slug]), {"name": "X"}).status_code
        == 403
    )
    archive = reverse("accounts:project_archive", args=[org.slug, world["a"].pk])
    assert client.post(archive).status_code == 403


# --- The API --------------------------------------------------------------------------------


def _token(membership) -> str:
    return session_token_issue(user=membership.user, org=membership.organization).secret


def test_the_api_lists_creates_and_archives_for_owners(client, world):
    headers = bearer(_token(world["owner"]))
    listed = client.get("/api/v1/projects", headers=headers).json()
    assert [p["name"] for p in listed["items"]] == ["Default", "A", "B"]
    assert [p["active_keys"] for p in listed["items"]] == [0, 1, 1]
    made = client.post(
        "/api/v1/projects",
        {"name": "Batch", "description": "Nightly"},
        content_type="application/json",
        headers=headers,
    )
    assert made.status_code == 201 and made.json()["name"] == "Batch"
    pid = made.json()["id"]
    patched = client.patch(
        f"/api/v1/projects/{pid}",
        {"name": "Batch jobs", "archived": True},
        content_type="application/json",
        headers=headers,
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Batch jobs" and patched.json()["archived"] is True
    default_id = listed["items"][0]["id"]
    refused = client.patch(
        f"/api/v1/projects/{default_id}",
        {"archived": True},
        content_type="application/json",
        headers=headers,
    )
    assert refused.status_code == 400 and refused.json()["field"] == "archived"
    duplicate = client.post(
        "/api/v1/projects", {"name": "a"}, content_type="application/json", headers=headers
    )
    assert duplicate.status_code == 400 and duplicate.json()["field"] == "name"


def test_the_api_scopes_projects_and_keys(client, world):
    limited = bearer(_token(world["limited"]))
    assert [p["name"] for p in client.get("/api/v1/projects", headers=limited).json()["items"]] == [
        "A"
    ]
    assert client.get(f"/api/v1/projects/{world['b'].pk}", headers=limited).status_code == 404
    keys = client.get("/api/v1/api-keys", headers=limited).json()["items"]
    assert [(k["name"], k["project"]) for k in keys] == [
        ("key of A", {"id": world["a"].pk, "name": "A"})
    ]
    owner = bearer(_token(world["owner"]))
    theirs = world["other_project"].pk
    assert client.get(f"/api/v1/projects/{theirs}", headers=owner).status_code == 404
    assert (
        client.patch(
            f"/api/v1/projects/{theirs}",
            {"archived": True},
            content_type="application/json",
            headers=owner,
        ).status_code
        == 404
    )
    # Members change nothing; an API key sees its own project only.
    assert (
        client.post(
            "/api/v1/projects", {"name": "Z"}, content_type="application/json", headers=limited
        ).status_code
        == 403
    )
    by_key = client.get("/api/v1/projects", headers=bearer(world["secret_b"])).json()["items"]
    assert [p["name"] for p in by_key] == ["B"]


def test_the_api_creates_keys_in_a_project_for_its_admins_only(client, world):
    owner = bearer(_token(world["owner"]))
    made = client.post(
        "/api/v1/api-keys",
        {"name": "batch", "project": world["b"].pk},
        content_type="application/json",
        headers=owner,
    )
    assert made.status_code == 201
    body = made.json()
    assert body["project"] == {"id": world["b"].pk, "name": "B"}
    assert body["secret"].startswith("sk-av-")
    assert client.get(ACCOUNT, headers=bearer(body["secret"])).status_code == 200
    default = client.post(
        "/api/v1/api-keys", {"name": "plain"}, content_type="application/json", headers=owner
    )
    assert default.json()["project"]["name"] == "Default"
    limited = bearer(_token(world["limited"]))
    into_b = client.post(
        "/api/v1/api-keys",
        {"name": "sneaky", "project": world["b"].pk},
        content_type="application/json",
        headers=limited,
    )
    assert into_b.status_code == 404
    into_a = client.post(
        "/api/v1/api-keys",
        {"name": "member's", "project": world["a"].pk},
        content_type="application/json",
        headers=limited,
    )
    assert into_a.status_code == 403  # a project member, not its admin
    project_grant_set(project=world["a"], membership=world["limited"], role=ProjectRole.ADMIN)
    as_admin = client.post(
        "/api/v1/api-keys",
        {"name": "admin's", "project": world["a"].pk},
        content_type="application/json",
        headers=limited,
    )
    assert as_admin.status_code == 201
    assert not APIKey.objects.filter(name__in=["sneaky", "member's"]).exists()


def test_a_project_with_keys_is_never_deleted_from_under_them(world):
    from django.db.models import RestrictedError

    with pytest.raises(RestrictedError):
        world["b"].delete()
    assert APIKey.objects.get(pk=world["key_b"].pk).project_id == world["b"].pk
