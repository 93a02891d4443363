"""Explore by project in chromium: an owner's three projects as groups, on a desktop and a
phone, light and dark (fits, axe, the dark palette); a member limited to one project is
offered only that project's keys and the project itself in the filters."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import ProjectRole, Role
from accounts.projects import project_default_for, project_grant_set
from tests.e2e.conftest import Screen
from tests.factories import PASSWORD, make_api_key, make_member, make_org, make_project, make_query

pytestmark = pytest.mark.django_db(transaction=True)


def _three_projects():
    org = make_org(name="Projects Labs", tier="developer")
    projects = [
        project_default_for(org=org),
        make_project(org=org, name="Research"),
        make_project(org=org, name="Production app"),
    ]
    keys = [
        make_api_key(org=org, project=p, name=name)[0]
        for p, name in zip(projects, ("Shared key", "Lab workstation", "Web backend"), strict=True)
    ]
    day = (timezone.now() - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    for n, (key, credits) in enumerate(zip(keys, ("1.25", "2.50", "4.00"), strict=True)):
        make_query(org=org, occurred_at=day + timedelta(minutes=n), api_key=key, credits=credits)
    return org, projects, keys


def test_explore_by_project_and_a_limited_members_filters(live_server, browser, login):
    org, projects, keys = _three_projects()
    owner = make_member(org=org, role=Role.OWNER)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    login(page, live_server.url, owner.user.email, PASSWORD)
    for viewport, (width, height) in (("desktop", (1400, 900)), ("phone", (390, 844))):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/o/{org.slug}/usage/explore/?group_by=project")
        expect(page.get_by_test_id("explore-heading")).to_have_text("Credits by Project")
        expect(page.get_by_test_id("explore-row")).to_have_count(3)
        expect(page.get_by_test_id("explore-total")).to_have_text("7.75")
        screen = Screen(page, viewport)
        screen.check("explore-projects")
        assert screen.problems == []
    context.close()

    person = make_member(org=org, role=Role.MEMBER)
    project_grant_set(project=projects[1], membership=person, role=ProjectRole.MEMBER)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    login(page, live_server.url, person.user.email, PASSWORD)
    page.goto(f"{live_server.url}/o/{org.slug}/usage/explore/?group_by=project")
    rows = page.get_by_test_id("explore-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Research")
    expect(page.get_by_test_id("explore-total")).to_have_text("2.50")
    page.get_by_text("Filters").click()
    expect(page.get_by_label("Lab workstation", exact=False)).to_have_count(1)
    expect(page.get_by_label("Research", exact=True)).to_have_count(1)
    for other in ("Shared key", "Web backend"):
        expect(page.get_by_label(other, exact=False)).to_have_count(0)
    for other in ("Default", "Production app"):
        expect(page.get_by_label(other, exact=True)).to_have_count(0)
    Screen(page, "desktop").check("explore-projects-limited", schemes=("light",))
    context.close()
