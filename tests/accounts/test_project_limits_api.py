"""A project's rate limits through the API: read by whoever sees the project, set by
owners and admins (null: none, left out: unchanged, below 1: 400 on the field, as the
page refuses it), audited as project.rate_limits_changed and shown readably in the audit
log; in the OpenAPI schema under the same operation ids."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, ProjectRole, Role
from accounts.projects import membership_projects_unlimit, project_grant_set
from accounts.services import session_token_issue
from tests.factories import make_member, make_org, make_project

pytestmark = pytest.mark.django_db


def bearer(membership) -> dict:
    secret = session_token_issue(user=membership.user, org=membership.organization).secret
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def world():
    org = make_org(name="Limits Org")
    owner = make_member(org=org, role=Role.OWNER)
    member = make_member(org=org, role=Role.MEMBER)
    research, other = make_project(org=org, name="Research"), make_project(org=org, name="Other")
    project_grant_set(project=research, membership=member, role=ProjectRole.ADMIN)
    return {"org": org, "owner": owner, "member": member, "research": research, "other": other}


def patch(client, project, body, headers):
    return client.patch(
        f"/api/v1/projects/{project.pk}", body, content_type="application/json", headers=headers
    )


def test_owners_set_and_clear_the_limits_and_every_change_is_audited(client, world):
    owner, research = world["owner"], world["research"]
    headers = bearer(owner)
    got = client.get(f"/api/v1/projects/{research.pk}", headers=headers).json()
    assert (got["rate_limit_rpm"], got["rate_limit_tpm"]) == (None, None)

    both = patch(client, research, {"rate_limit_rpm": 600, "rate_limit_tpm": 90000}, headers)
    assert both.status_code == 200
    assert (both.json()["rate_limit_rpm"], both.json()["rate_limit_tpm"]) == (600, 90000)
    # Left out stays; null removes; a rename alone does not touch them.
    one = patch(client, research, {"rate_limit_tpm": None}, headers).json()
    assert (one["rate_limit_rpm"], one["rate_limit_tpm"]) == (600, None)
    renamed = patch(client, research, {"name": "Research lab"}, headers).json()
    assert renamed["rate_limit_rpm"] == 600
    research.refresh_from_db()
    assert (research.rate_limit_rpm, research.rate_limit_tpm) == (600, None)

    for bad in (0, -5):
        refused = patch(client, research, {"rate_limit_rpm": bad}, headers)
        assert refused.status_code == 400 and refused.json()["field"] == "rate_limit_rpm"
    research.refresh_from_db()
    assert research.rate_limit_rpm == 600

    events = AuditEvent.objects.filter(action="project.rate_limits_changed").order_by("id")
    assert [e.summary for e in events] == [
        "Set the rate limits of the project Research: 600 requests per minute and 90,000 "
        "tokens per minute",
        "Set the rate limits of the project Research: 600 requests per minute and no token limit",
    ]
    membership_projects_unlimit(membership=world["member"], actor=owner.user)
    client.force_login(owner.user)
    page = client.get(reverse("accounts:audit_log", args=[world["org"].slug])).content.decode()
    assert "Project rate limits changed" in page and "600 requests" in page
    assert "Project limit of a member changed" in page and "sees every project again" in page


def test_only_owners_and_admins_change_them_and_others_projects_answer_404(client, world):
    member, research, other = world["member"], world["research"], world["other"]
    headers = bearer(member)  # a project admin of Research, a member of the organization
    assert client.get(f"/api/v1/projects/{research.pk}", headers=headers).status_code == 200
    assert patch(client, research, {"rate_limit_rpm": 5}, headers).status_code == 403
    assert patch(client, other, {"rate_limit_rpm": 5}, headers).status_code == 404
    assert client.get(f"/api/v1/projects/{other.pk}", headers=headers).status_code == 404
    theirs = make_project(org=make_org(), name="Theirs")
    owner_headers = bearer(world["owner"])
    assert patch(client, theirs, {"rate_limit_rpm": 5}, owner_headers).status_code == 404
    research.refresh_from_db()
    assert research.rate_limit_rpm is None


def test_the_schema_carries_the_fields_under_the_same_operations(client):
    schema = client.get("/api/v1/openapi.json").json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {"accounts_api_projects_get", "accounts_api_projects_update"} <= operations
    components = schema["components"]["schemas"]
    for name in ("ProjectOut", "ProjectPatch"):
        assert {"rate_limit_rpm", "rate_limit_tpm"} <= set(components[name]["properties"]), name
