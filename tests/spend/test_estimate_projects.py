"""The Estimate page offers the keys its reader sees: a member limited to a project only
that project's (another project's key id is refused, 400), billing members none."""

import pytest
from django.urls import reverse

from accounts.models import ProjectRole, Role
from accounts.projects import project_grant_set
from tests.factories import make_api_key, make_member, make_org, make_project

pytestmark = pytest.mark.django_db

ASK = {"model": "llama-3.1-8b", "prompt": "Explain quantum computing.", "max_output_tokens": 500}


@pytest.fixture
def world():
    org = make_org()
    research, production = make_project(org=org, name="Research"), make_project(org=org)
    mine, _ = make_api_key(org=org, name="research-key", project=research)
    theirs, _ = make_api_key(org=org, name="production-key", project=production)
    limited = make_member(org=org, role=Role.MEMBER)
    project_grant_set(project=research, membership=limited, role=ProjectRole.MEMBER)
    return {"org": org, "mine": mine, "theirs": theirs, "limited": limited}


def offered(response) -> set[str]:
    return {label for value, label in response.context["form"].fields["api_key"].choices if value}


def test_a_limited_member_is_offered_and_may_name_only_their_projects_keys(client, world):
    org = world["org"]
    url = reverse("usage:estimate", args=[org.slug])
    client.force_login(world["limited"].user)
    assert offered(client.get(url)) == {"research-key"}
    assert client.get(url, {**ASK, "api_key": world["mine"].pk}).status_code == 200
    refused = client.get(url, {**ASK, "api_key": world["theirs"].pk})
    assert refused.status_code == 400 and "production-key" not in refused.content.decode()


@pytest.mark.parametrize(("role", "keys"), [(Role.OWNER, 2), (Role.VIEWER, 2), (Role.BILLING, 0)])
def test_others_are_offered_every_key_but_billing_none(client, world, role, keys):
    member = make_member(org=world["org"], role=role)
    client.force_login(member.user)
    assert len(offered(client.get(reverse("usage:estimate", args=[world["org"].slug])))) == keys
