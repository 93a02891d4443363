"""Tenant isolation matrix.

Every URL pattern of the console is discovered from the URL configuration, so a new
view is covered without editing this file: a member of organization B asks for it with
organization A's slug and ids (404), and with B's own slug but A's ids (404 where the
URL names an object). A URL keyword this file cannot fill fails the test, naming it.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.usersessions.models import UserSession
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import ProjectRole, Role
from accounts.projects import project_grant_set
from accounts.services import session_token_issue
from accounts.team import invitation_create
from alerts.models import AlertDismissal, AlertNotification
from billing.models import LedgerEntry, Payment, Receipt
from billing.services import statement_issue
from ingest.services.ingest import usage_records_ingest
from spend.models import Budget, KeyPause
from tests.factories import (
    grant_credits,
    make_alert_rule,
    make_api_key,
    make_controller,
    make_member,
    make_org,
    make_payment,
    make_project,
)
from usage.models import Controller, Job, Query

pytestmark = pytest.mark.django_db

# Pages that are not an organization's: public, or the operators' admin.
NOT_ORGANIZATION_PAGES = re.compile(r"^(admin/|accounts/|webhooks/|favicon\.ico$|$)")
CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
A_MARK = "alpha-secret-7731"  # appears only in organization A's data


def all_patterns(patterns=None, prefix=""):
    """(route, pattern) for every URL the console serves."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from all_patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


@pytest.fixture
def world():
    a = make_member(role=Role.OWNER)
    b = make_member(role=Role.OWNER)
    org_a = a.organization
    grant_credits(org=org_a)
    key, secret = make_api_key(org=org_a, name=f"key {A_MARK}")
    controller, _ = make_controller(org=org_a, name=f"ctl-{A_MARK}")
    result = usage_records_ingest(
        org=org_a,
        api_key=key,
        records=[
            {"id": f"job-{A_MARK}", "kind": "job", "status": "running", "cores": 4,
             "controller": controller.name, "submitted_at": "2026-11-20T07:59:00Z",
             "started_at": "2026-11-20T08:00:00Z"},
            {"id": f"q-{A_MARK}", "kind": "query", "occurred_at": "2026-11-20T10:00:00Z",
             "model": "llama-3.1-8b", "input_tokens": 25, "output_tokens": 100,
             "endpoint": f"/v1/{A_MARK}", "member": f"{A_MARK}@example.com"},
        ],
    )  # fmt: skip
    assert result.accepted, result.rejected
    payment = make_payment(org=org_a, amount_minor=4200)
    job = Job.objects.get(organization=org_a)
    rule = make_alert_rule(org=org_a, kind="balance", threshold=10)
    notification = AlertNotification.objects.create(
        organization=org_a, rule=rule, kind=rule.kind, message=f"alert {A_MARK}"
    )
    ids = {
        "key_id": key.pk,
        "controller_id": controller.pk,
        "batch_id": result.batch_id,
        "job_pk": job.pk,
        "payment_id": payment.pk,
        "client_id": job.client_id,
        "org_id": org_a.pk,
        "rule_id": rule.pk,
        "notification_id": notification.pk,
        # The usage API's LLM record and a member's session token.
        "id": Query.objects.get(organization=org_a).pk,
        "token_id": session_token_issue(user=a.user, org=org_a).token.pk,
        # Team and documents: a member, an invitation, a statement, a receipt.
        "member_id": make_member(org=org_a, role=Role.MEMBER).pk,
        "invitation_id": invitation_create(
            org=org_a, email=f"{A_MARK}@example.com", role=Role.MEMBER, invited_by=a.user
        ).invitation.pk,
        "statement_id": statement_issue(org=org_a, month=_last_month()).pk,
        "receipt_id": Receipt.objects.get(payment=payment).pk,
        # Spend controls: a budget.
        "budget_id": Budget.objects.create(
            organization=org_a, scope="organization", period="day", soft_limit=1
        ).pk,
        "session_id": UserSession.objects.create(
            user=a.user, ip="203.0.113.1", session_key="a" * 32, user_agent="A's browser"
        ).pk,
    }
    # Projects: one of A's, with a member limited to it.
    project = make_project(org=org_a, name=f"project {A_MARK}")
    limited = make_member(org=org_a, role=Role.VIEWER)
    ids["project_id"] = project.pk
    ids["grant_id"] = project_grant_set(
        project=project, membership=limited, role=ProjectRole.VIEWER
    ).pk
    return {"a": a, "b": b, "ids": ids, "a_key": key, "a_secret": secret}


def _last_month():
    first = timezone.localdate().replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def fill(route: str, slug: str, ids: dict) -> tuple[str, bool]:
    """The route with its keywords filled; whether it names an object of A."""
    names_object = False

    def value(match: re.Match) -> str:
        nonlocal names_object
        name = match["name"]
        if name == "org_slug":
            return slug
        if name not in ids:
            pytest.fail(f"the isolation matrix cannot fill <{name}> in {route!r}: add it to ids")
        names_object = True
        return str(ids[name])

    return "/" + CONVERTER.sub(value, route), names_object


def snapshot_of_a(org) -> tuple:
    return (
        sorted(LedgerEntry.objects.filter(organization=org).values_list("id", "amount")),
        sorted(Payment.objects.filter(organization=org).values_list("id", "status")),
        sorted(Controller.objects.filter(organization=org).values_list("id", "token_hash")),
        sorted(Job.objects.filter(organization=org).values_list("id", "status")),
        sorted(org.api_keys.values_list("id", "revoked_at")),
        sorted(org.alert_rules.values_list("id", "threshold", "enabled")),
        sorted(AlertDismissal.objects.filter(notification__organization=org).values_list("id")),
        sorted(org.memberships.values_list("id", "role")),
        sorted(org.invitations.values_list("id", "nonce", "revoked_at")),
        sorted(Budget.objects.filter(organization=org).values_list("id", "soft_limit")),
        sorted(KeyPause.objects.filter(organization=org).values_list("api_key_id")),
        sorted(org.projects.values_list("id", "name", "archived_at")),
        sorted(org.project_grants.values_list("id", "role")),
    )


def test_every_organization_page_is_404_to_another_organizations_member(client, world):
    a, b, ids = world["a"], world["b"], world["ids"]
    before = snapshot_of_a(a.organization)
    client.force_login(b.user)
    checked = []
    for route, _pattern in all_patterns():
        if NOT_ORGANIZATION_PAGES.match(route) or route.startswith("api/"):
            continue
        assert "<slug:org_slug>" in route, f"{route!r} is an organization page outside /o/<slug>/"
        foreign, _ = fill(route, a.organization.slug, ids)
        for method in ("get", "post"):
            response = getattr(client, method)(foreign)
            assert response.status_code == 404, (method, foreign, response.status_code)
            response = getattr(client, method)(foreign, HTTP_HX_REQUEST="true")
            assert response.status_code == 404, ("htmx", method, foreign)
        own_slug_foreign_ids, names_object = fill(route, b.organization.slug, ids)
        if names_object:
            missing, _ = fill(route, b.organization.slug, dict.fromkeys(ids, 987654321))
            for method in ("get", "post"):
                response = getattr(client, method)(own_slug_foreign_ids)
                # 404, or a 405 for a method the page never takes: either way the answer
                # is the one an id that exists nowhere gets, so nothing of A leaks.
                assert response.status_code in (404, 405), (method, own_slug_foreign_ids)
                assert response.status_code == getattr(client, method)(missing).status_code
        checked.append(route)
    assert len(checked) >= 15
    assert snapshot_of_a(a.organization) == before
    print(f"isolation matrix: {len(checked)} organization URL patterns, each 404 to a stranger")


def test_api_paths_naming_another_organizations_objects_are_404(client, world):
    a, b, ids = world["a"], world["b"], world["ids"]
    _, b_secret = make_api_key(org=b.organization)
    grant_credits(org=b.organization)
    before = snapshot_of_a(a.organization)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {b_secret}"}
    checked = 0
    for route, _pattern in all_patterns():
        if not route.startswith("api/"):
            continue
        path, names_object = fill(route, b.organization.slug, ids)
        if not names_object:
            continue
        response = client.get(path, **auth)
        assert response.status_code in (404, 405), (path, response.status_code)
        response = client.post(path, data={}, content_type="application/json", **auth)
        assert response.status_code in (400, 404, 405, 422), (path, response.status_code)
        assert A_MARK not in response.content.decode()
        response = client.patch(
            path, data={"archived": True}, content_type="application/json", **auth
        )
        assert response.status_code in (404, 405), (path, response.status_code)
        checked += 1
    assert checked >= 2
    assert snapshot_of_a(a.organization) == before


def test_exports_of_one_organization_hold_no_row_of_another(client, world):
    b = world["b"]
    client.force_login(b.user)
    usage_records_ingest(
        org=b.organization,
        records=[
            {"id": "bq-1", "kind": "query", "occurred_at": "2026-11-20T10:00:00Z",
             "model": "llama-3.1-8b", "input_tokens": 1, "output_tokens": 1},
        ],
    )  # fmt: skip
    make_payment(org=b.organization, amount_minor=1000)
    for route, _pattern in all_patterns():
        if route.endswith(".csv") and "<slug:org_slug>" in route:
            path, _ = fill(route, b.organization.slug, {})
            response = client.get(path)
            assert response.status_code == 200, path
            body = b"".join(response.streaming_content).decode("utf-8-sig")
            assert A_MARK not in body and "42.00" not in body, path


def test_admin_is_closed_to_customers(client, world):
    client.force_login(world["b"].user)
    for route in ("admin/", "admin/billing/ledgerentry/", "admin/accounts/organization/"):
        response = client.get("/" + route)
        assert response.status_code == 302 and "/admin/login/" in response.url


def test_balances_stay_apart(world):
    from billing.selectors import credit_balance

    assert credit_balance(org=world["b"].organization) == Decimal("0")
    org = make_org()
    assert credit_balance(org=org) == Decimal("0")


# The project axis: a member of A limited to one project, asking for another project's
# objects (its page, its grants, its keys), gets what an id that exists nowhere gets.
PROJECT_OBJECTS = re.compile(r"<int:(project_id|grant_id|key_id)>")


def test_every_url_naming_another_projects_objects_is_404_to_a_limited_member(client, world):
    a, ids = world["a"], world["ids"]
    org = a.organization
    mine = make_project(org=org, name="Mine")
    person = make_member(org=org, role=Role.MEMBER)
    project_grant_set(project=mine, membership=person, role=ProjectRole.ADMIN)
    before = snapshot_of_a(org)
    client.force_login(person.user)
    checked = []
    for route, _pattern in all_patterns():
        if route.startswith("api/") or not PROJECT_OBJECTS.search(route):
            continue
        theirs, _ = fill(route, org.slug, ids)
        missing, _ = fill(route, org.slug, dict.fromkeys(ids, 987654321))
        for method in ("get", "post"):
            response = getattr(client, method)(theirs)
            assert response.status_code == getattr(client, method)(missing).status_code, (
                method,
                theirs,
            )
            assert response.status_code in (403, 404, 405), (method, theirs)
            # (The organization's own alerts, which name A_MARK, are theirs to see.)
            page = response.content.decode()
            assert f"key {A_MARK}" not in page and f"project {A_MARK}" not in page
        checked.append(route)
    # The pages a project admin may open answer 404 for another project's objects.
    assert client.get(f"/o/{org.slug}/settings/projects/{ids['project_id']}/").status_code == 404
    assert client.get(f"/o/{org.slug}/settings/keys/{ids['key_id']}/revoke").status_code == 404
    assert len(checked) >= 6
    assert snapshot_of_a(org) == before
    session = session_token_issue(user=person.user, org=org).secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {session}"}
    assert client.get(f"/api/v1/projects/{ids['project_id']}", **auth).status_code == 404
    keys = client.get("/api/v1/api-keys", **auth).json()["items"]
    assert keys == []  # A's key is in the Default project, which they do not see


# The usage pages with a project switcher (?project=<id>, docs/projects.md): another
# organization's project, or one a limited member is not granted, answers 404, pages and
# htmx partials alike; "All projects" shows a limited member their projects' usage only.
PROJECT_SWITCHER_PAGES = {
    "main": (),
    "usage:panel": ("usage-window", "controller-load"),
    "usage:timeline_csv": (),
    "billing:dashboard": ("finance-spend",),
}


def test_the_project_switcher_answers_404_for_a_project_out_of_reach(client, world):
    a, b, ids = world["a"], world["b"], world["ids"]
    org = a.organization
    routes = {pattern.name for _route, pattern in all_patterns()}
    assert {name.split(":")[-1] for name in PROJECT_SWITCHER_PAGES} <= routes
    mine = make_project(org=org, name="Mine")
    person = make_member(org=org, role=Role.MEMBER)
    project_grant_set(project=mine, membership=person, role=ProjectRole.VIEWER)
    a_default = org.projects.get(is_default=True).pk
    asking = [
        (b, b.organization.slug, [a_default, ids["project_id"]]),
        (person, org.slug, [a_default, ids["project_id"]]),
    ]
    for who, slug, projects in asking:
        client.force_login(who.user)
        for name, partials in PROJECT_SWITCHER_PAGES.items():
            path = reverse(name, args=[slug])
            for project in projects:
                assert client.get(f"{path}?project={project}").status_code == 404, (name, who)
                for target in partials:
                    headers = {"HX-Request": "true", "HX-Target": target}
                    response = client.get(f"{path}?project={project}", headers=headers)
                    assert response.status_code == 404, (name, target, who)
            response = client.get(path)
            assert response.status_code == 200, (name, who)
            body = (
                b"".join(response.streaming_content) if response.streaming else response.content
            ).decode()
            for mark in (f"key {A_MARK}", f"ctl-{A_MARK}", f"/v1/{A_MARK}", f"{A_MARK}@"):
                assert mark not in body, (name, who, mark)
        if who is person:
            path = reverse("usage:panel", args=[slug])
            assert client.get(f"{path}?project={mine.pk}").status_code == 200


def test_a_limited_member_reads_no_other_projects_usage(client, world):
    """Explore, its CSVs, the report API and the read API: A's usage (in A's Default
    project) is nowhere for a member limited to another project of A, and naming its key
    or project is refused as another organization's would be."""
    a, ids = world["a"], world["ids"]
    org = a.organization
    default = world["a_key"].project
    mine = make_project(org=org, name="Mine")
    person = make_member(org=org, role=Role.MEMBER)
    project_grant_set(project=mine, membership=person, role=ProjectRole.MEMBER)
    page_range = {"start": "2026-11-01T00:00", "end": "2026-12-01T00:00"}
    api_range = {"start": "2026-11-01", "end": "2026-11-30"}
    explore = f"/o/{org.slug}/usage/explore"
    owner = session_token_issue(user=a.user, org=org).secret
    theirs = session_token_issue(user=person.user, org=org).secret

    def report(secret, **params):
        return client.get(
            "/api/v1/usage/report",
            {**api_range, "group_by": "member", **params},
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )

    # The owner sees A's usage: what the member must not.
    assert report(owner).json()["total"] != "0"
    client.force_login(person.user)
    for path in ("/", ".csv", "-groups.csv"):
        response = client.get(explore + path, {**page_range, "group_by": "endpoint"})
        assert response.status_code == 200
        body = response.content if path == "/" else b"".join(response.streaming_content)
        # (The organization's alerts banner, which names A_MARK, is theirs to see.)
        assert f"/v1/{A_MARK}" not in body.decode() and f"key {A_MARK}" not in body.decode()
    for name, value in (("api_key", ids["key_id"]), ("project", default.pk)):
        assert client.get(explore + "/", {**page_range, name: value}).status_code == 400
    body = report(theirs).json()
    assert body["total"] == "0" and body["groups"] == []
    for name, value in (("api_key", ids["key_id"]), ("project", default.pk)):
        refused = report(theirs, **{f"filter[{name}]": value})
        assert refused.status_code == 400 and refused.json()["field"] == f"filter[{name}]"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {theirs}"}
    reads = {
        "/api/v1/usage/llm": api_range | {"start_date": "2026-11-01"},
        f"/api/v1/usage/llm/organization/{org.pk}/summary": {"start_date": "2026-11-01"},
        "/api/v1/usage/matching": {},
        "/api/v1/account/queries-per-model": {"start_date": 0, "end_date": 1_900_000_000_000},
        "/api/v1/account/worker-sessions": {"start_date": 0, "end_date": 1_900_000_000_000},
        "/api/v1/usage": {},
    }
    for path, params in reads.items():
        response = client.get(path, params, **auth)
        assert response.status_code == 200, (path, response.content)
        data = response.json()
        assert A_MARK not in response.content.decode(), path
        assert data.get("items", []) == [] and data.get("models", []) == [], path
        assert data.get("queries", 0) == 0 and data.get("total_tokens", 0) == 0, path
    assert client.get(f"/api/v1/usage/llm/{ids['id']}", **auth).status_code == 404
    owner_auth = {"HTTP_AUTHORIZATION": f"Bearer {owner}"}
    assert client.get(f"/api/v1/usage/llm/{ids['id']}", **owner_auth).status_code == 200
