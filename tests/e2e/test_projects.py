"""In chromium: an owner creates a project, archives it through the confirmation dialog
and is told its keys stopped; a member limited to one project sees only its keys, on a
phone as on a desktop."""

import pytest
from playwright.sync_api import expect

from accounts.models import Project, ProjectRole, Role
from accounts.projects import project_grant_set
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_api_key, make_member, make_project

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_owner_creates_and_archives_a_project(page, live_server, login):
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    login(page, live_server.url, owner.user.email, PASSWORD)
    page.goto(f"{live_server.url}/o/{org.slug}/settings/")
    page.get_by_role("link", name="Projects", exact=True).click()
    page.get_by_label("Name").fill("Research")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_text("Created the project Research.")).to_be_visible()
    make_api_key(
        org=org, name="lab", project=Project.objects.get(organization=org, name="Research")
    )
    page.reload()
    page.get_by_role("button", name="Archive project").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_contain_text("Archive the project “Research”?")
    expect(dialog).to_contain_text("Its 1 active key(s) stop working")
    page.screenshot(path=str(ARTIFACTS / "projects-archive-dialog.png"))
    dialog.get_by_role("button", name="Archive project").click()
    expect(
        page.get_by_text("Archived Research: its 1 active key(s) stopped working.")
    ).to_be_visible()
    expect(page.get_by_test_id("project-status")).to_contain_text("Archived")


@pytest.mark.parametrize("width", [1400, 390])
def test_a_limited_member_sees_only_their_projects_keys(page, live_server, login, width):
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    mine, other = make_project(org=org, name="Mine"), make_project(org=org, name="Other")
    make_api_key(org=org, name="key in Mine", project=mine)
    make_api_key(org=org, name="key in Other", project=other)
    person = make_member(org=org, role=Role.MEMBER)
    project_grant_set(project=mine, membership=person, role=ProjectRole.VIEWER)
    login(page, live_server.url, person.user.email, PASSWORD)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/o/{org.slug}/settings/keys/")
    expect(page.get_by_text("key in Mine")).to_be_visible()
    expect(page.get_by_text("key in Other")).to_have_count(0)
    page.goto(f"{live_server.url}/o/{org.slug}/settings/projects/")
    expect(page.get_by_role("link", name="Mine", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Other", exact=True)).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / f"projects-limited-{width}.png"), full_page=True)
