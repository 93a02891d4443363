"""Who may do what: every role (owner, admin, billing, member, viewer) against every
page and action of the console, as a table. A role not allowed gets a 403; the
expected statuses are the table's, not the views' own permission helpers."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ProjectRole, Role
from accounts.projects import project_grant_set
from accounts.team import invitation_create
from billing.models import Receipt
from billing.services import statement_issue
from tests.factories import (
    grant_credits,
    make_api_key,
    make_member,
    make_org,
    make_payment,
    make_project,
)

pytestmark = pytest.mark.django_db

ALL = {"owner", "admin", "billing", "member", "viewer"}
FINANCE = {"owner", "admin", "billing"}
MANAGERS = {"owner", "admin"}
KEYS = ALL - {"billing"}
DETAILS_EDIT = {"owner", "billing"}
OWNER = {"owner"}


@pytest.fixture
def world():
    org = make_org()
    people = {role: make_member(org=org, role=role) for role in Role.values}
    grant_credits(org=org)
    payment = make_payment(org=org, amount_minor=2500)
    first = timezone.localdate().replace(day=1)
    statement = statement_issue(org=org, month=(first - timedelta(days=1)).replace(day=1))
    key, _ = make_api_key(org=org)
    target = make_member(org=org, role=Role.MEMBER)
    project = make_project(org=org, name="Matrix")
    invitation = invitation_create(
        org=org, email="new@example.com", role=Role.MEMBER, invited_by=people["owner"].user
    ).invitation
    ids = {
        "statement_id": statement.pk,
        "receipt_id": Receipt.objects.get(payment=payment).pk,
        "key_id": key.pk,
        "member_id": target.pk,
        "invitation_id": invitation.pk,
        "project_id": project.pk,
    }
    return org, people, ids


# (url name, its id keyword or None, method, form data, roles allowed, status when allowed)
PAGES = [
    ("main", None, "get", None, ALL, 200),
    ("usage:panel", None, "get", None, ALL, 200),
    ("billing:dashboard", None, "get", None, ALL, 200),
    ("billing:transactions_csv", None, "get", None, ALL, 200),
    ("billing:add_credit", None, "get", None, FINANCE, 200),
    ("billing:auto_recharge", None, "get", None, OWNER, 200),
    ("billing:statements", None, "get", None, FINANCE, 200),
    ("billing:statement", "statement_id", "get", None, FINANCE, 200),
    ("billing:statement_pdf", "statement_id", "get", None, FINANCE, 200),
    ("billing:statement_csv", "statement_id", "get", None, FINANCE, 200),
    ("billing:receipt", "receipt_id", "get", None, FINANCE, 200),
    ("billing:receipt_pdf", "receipt_id", "get", None, FINANCE, 200),
    ("accounts:organization_settings", None, "get", None, ALL, 200),
    ("billing_details:edit", None, "get", None, FINANCE, 200),
    ("accounts:api_keys", None, "get", None, KEYS, 200),
    ("accounts:session_tokens", None, "get", None, ALL, 200),
    ("accounts:members", None, "get", None, ALL, 200),
    ("accounts:audit_log", None, "get", None, MANAGERS, 200),
    ("accounts:audit_log_csv", None, "get", None, MANAGERS, 200),
    ("accounts:alerts:rules", None, "get", None, ALL, 200),
    ("accounts:projects", None, "get", None, ALL, 200),
    ("accounts:project", "project_id", "get", None, ALL, 200),
]
ACTIONS = [
    ("billing_details:edit", None, "post", {"legal_name": "Acme GmbH"}, DETAILS_EDIT, 302),
    ("accounts:member_invite", None, "post", {"email": "x@example.com", "role": "viewer"},
     MANAGERS, 302),
    ("accounts:member_role", "member_id", "post", {"role": "viewer"}, MANAGERS, 302),
    ("accounts:member_remove", "member_id", "post", {}, MANAGERS, 302),
    ("accounts:invitation_resend", "invitation_id", "post", {}, MANAGERS, 302),
    ("accounts:invitation_revoke", "invitation_id", "post", {}, MANAGERS, 302),
    ("accounts:api_key_create", None, "post", {"name": "k", "kind": "workspace"}, MANAGERS, 302),
    ("accounts:api_key_revoke", "key_id", "post", {}, MANAGERS, 302),
    ("accounts:project_create", None, "post", {"name": "New"}, MANAGERS, 302),
    ("accounts:project_update", "project_id", "post", {"name": "Renamed"}, MANAGERS, 302),
    ("accounts:project_archive", "project_id", "post", {}, MANAGERS, 302),
    ("accounts:project_unarchive", "project_id", "post", {}, MANAGERS, 302),
    ("accounts:project_grant", "project_id", "post", {"member": "@member_id", "role": "viewer"},
     MANAGERS, 302),
]  # fmt: skip


def _cases(table):
    for name, id_name, method, data, allowed, ok in table:
        for role in sorted(ALL):
            expected = ok if role in allowed else 403
            yield pytest.param(name, id_name, method, data, role, expected, id=f"{name}-{role}")


@pytest.mark.parametrize(("name", "id_name", "method", "data", "role", "expected"),
                         [*_cases(PAGES), *_cases(ACTIONS)])  # fmt: skip
def test_role_matrix(client, world, name, id_name, method, data, role, expected):
    org, people, ids = world
    client.force_login(people[role].user)
    args = [org.slug] + ([ids[id_name]] if id_name else [])
    data = {k: ids[v[1:]] if str(v).startswith("@") else v for k, v in (data or {}).items()}
    response = getattr(client, method)(reverse(name, args=args), data=data)
    assert response.status_code == expected, (name, role, response.status_code)


@pytest.mark.parametrize(
    ("role", "links"),
    [
        ("owner", {"Members", "Billing details", "Audit log", "API keys", "Projects"}),
        ("admin", {"Members", "Billing details", "Audit log", "API keys", "Projects"}),
        ("billing", {"Members", "Billing details", "Projects"}),
        ("member", {"Members", "API keys", "Projects"}),
        ("viewer", {"Members", "API keys", "Projects"}),
    ],
)
def test_settings_shows_each_role_the_links_it_may_follow(client, world, role, links):
    org, people, _ = world
    client.force_login(people[role].user)
    html = client.get(reverse("accounts:organization_settings", args=[org.slug])).content.decode()
    for text in ("Members", "Billing details", "Audit log", "API keys", "Projects"):
        assert (f">{text}</a>" in html) == (text in links), (role, text)


@pytest.mark.parametrize(("role", "sees"), [("billing", True), ("member", False)])
def test_finance_shows_statements_and_add_credit_to_finance_roles(client, world, role, sees):
    org, people, _ = world
    client.force_login(people[role].user)
    html = client.get(reverse("billing:dashboard", args=[org.slug])).content.decode()
    assert (">Statements</a>" in html) == sees
    assert ('data-testid="add-credit"' in html) == sees
    assert ('data-testid="receipt-link"' in html) == sees


# The project axis: a member or viewer limited to one project, with each project role,
# against keys in their project and in another one they do not see.
# (action, in their project?, status for project admin, member, viewer)
PROJECT_ACTIONS = [
    ("create", True, {"admin": 302, "member": 403, "viewer": 403}),
    ("revoke", True, {"admin": 302, "member": 403, "viewer": 403}),
    # An admin of one project may create keys, but not in a project they do not see.
    ("create", False, {"admin": 400, "member": 403, "viewer": 403}),
    ("revoke", False, {"admin": 404, "member": 404, "viewer": 404}),
]


@pytest.fixture
def limited_world():
    def build(org_role: str, project_role: str):
        org = make_org()
        mine, other = make_project(org=org, name="Mine"), make_project(org=org, name="Other")
        person = make_member(org=org, role=org_role)
        project_grant_set(project=mine, membership=person, role=project_role)
        keys = {
            True: make_api_key(org=org, name="key in Mine", project=mine)[0],
            False: make_api_key(org=org, name="key in Other", project=other)[0],
        }
        return org, person, {True: mine, False: other}, keys

    return build


@pytest.mark.parametrize("org_role", [Role.MEMBER, Role.VIEWER])
@pytest.mark.parametrize("project_role", ProjectRole.values)
def test_a_limited_person_lists_only_their_projects_keys(
    client, limited_world, org_role, project_role
):
    org, person, _, keys = limited_world(org_role, project_role)
    client.force_login(person.user)
    page = client.get(reverse("accounts:api_keys", args=[org.slug]))
    assert page.status_code == 200
    assert b"key in Mine" in page.content and b"key in Other" not in page.content


@pytest.mark.parametrize("org_role", [Role.MEMBER, Role.VIEWER])
@pytest.mark.parametrize("project_role", ProjectRole.values)
@pytest.mark.parametrize(("action", "theirs", "expected"), PROJECT_ACTIONS)
def test_project_role_matrix(
    client, limited_world, org_role, project_role, action, theirs, expected
):
    org, person, projects, keys = limited_world(org_role, project_role)
    client.force_login(person.user)
    if action == "create":
        url = reverse("accounts:api_key_create", args=[org.slug])
        data = {"name": "new", "kind": "workspace", "project": projects[theirs].pk}
        response = client.post(url, data)
    else:
        response = client.post(reverse("accounts:api_key_revoke", args=[org.slug, keys[theirs].pk]))
    assert response.status_code == expected[project_role], (action, theirs, response.status_code)
