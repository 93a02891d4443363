"""What a person's actions answer: every POST that changes something redirects (a reload
repeats nothing), destructive ones ask first and name what will happen, a secret shown
once is shown once, and refusals and missing pages render in the console's shell."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from accounts.models import APIKey, Membership, Role, SessionToken
from alerts.models import AlertRule
from spend.models import Budget, KeyPause
from tests.factories import make_api_key, make_controller, make_member
from tests.security.test_isolation import all_patterns, fill, snapshot_of_a, world  # noqa: F401
from usage.models import Controller

pytestmark = pytest.mark.django_db

# A POST may answer with a page only when it changed nothing: a form with errors (400).
PAGE_STATUSES_ALLOWED_FOR_A_POST = {400, 403, 404, 405}


def test_no_organization_page_answers_a_post_with_200(client, world):  # noqa: F811
    """Every organization URL, posted to as its owner, answers with a redirect, an error
    that changed nothing, or (a read page) the page itself with nothing changed."""
    owner, ids = world["a"], world["ids"]
    client.force_login(owner.user)
    checked = []
    for route, _pattern in all_patterns():
        if not route.startswith("o/<slug:org_slug>/"):
            continue
        path, _ = fill(route, owner.organization.slug, ids)
        before = snapshot_of_a(owner.organization)
        status = client.post(path).status_code
        if status == 200:  # a read page that ignores the method: it must have changed nothing
            assert snapshot_of_a(owner.organization) == before, path
        else:
            assert status in {302, 303} | PAGE_STATUSES_ALLOWED_FOR_A_POST, (path, status)
        checked.append(route)
    assert len(checked) >= 30


def _owner_and_things(org_member):
    org = org_member.organization
    key, _ = make_api_key(org=org, name="ci-gateway")
    controller, _ = make_controller(org=org, name="dgx-01")
    budget = Budget.objects.create(
        organization=org, scope="api_key", api_key=key, period="month", soft_limit=5
    )
    rule = AlertRule.objects.create(organization=org, kind="balance", threshold=10)
    other = make_member(org=org, role=Role.MEMBER)
    return {"key": key, "controller": controller, "budget": budget, "rule": rule, "other": other}


def test_state_changing_posts_redirect_and_say_what_happened(client):
    owner = make_member(role=Role.OWNER)
    org, slug = owner.organization, owner.organization.slug
    things = _owner_and_things(owner)
    client.force_login(owner.user)
    posts = [
        ("accounts:api_key_create", [], {"name": "New", "kind": "workspace"}, "Created the key"),
        ("accounts:api_key_revoke", [things["key"].pk], {}, "Revoked ci-gateway"),
        ("accounts:session_token_create", [], {"name": "laptop"}, "Issued the session token"),
        ("accounts:member_invite", [], {"email": "new@example.com", "role": "member"},
         "Invitation sent to new@example.com"),
        ("accounts:member_role", [things["other"].pk], {"role": "viewer"}, "is now Viewer"),
        ("usage:controller_create", [], {"name": "dgx-02", "cores": 8, "memory_gb": 32},
         "Registered the controller dgx-02"),
        ("usage:controller_rotate", [things["controller"].pk], {},
         "Issued a new token for dgx-01; the old one no longer works"),
        ("usage:budget_edit", [things["budget"].pk], {"soft_limit": "7"},
         "Updated the monthly API key budget for ci-gateway"),
        ("usage:key_pause", [things["key"].pk], {}, "ci-gateway is paused"),
        ("usage:key_resume", [things["key"].pk], {}, "ci-gateway is resumed"),
        ("usage:budget_remove", [things["budget"].pk], {},
         "Removed the monthly API key budget for ci-gateway"),
        ("accounts:alerts:rule_delete", [things["rule"].pk], {}, "Deleted the alert rule"),
        ("accounts:alerts:webhook_secret_rotate", [], {}, "Rotated the webhook secret"),
        ("accounts:member_remove", [things["other"].pk], {}, "Removed "),
    ]  # fmt: skip
    for name, args, data, said in posts:
        response = client.post(reverse(name, args=[slug, *args]), data)
        assert response.status_code == 302, (name, response.status_code)
        shown = client.get(response["Location"]).content.decode()
        assert said in shown.replace("&#x27;", "'"), (name, said)
    assert not Budget.objects.filter(organization=org).exists()
    assert not AlertRule.objects.filter(organization=org).exists()
    assert not Membership.objects.filter(pk=things["other"].pk).exists()


def test_destructive_actions_ask_first_naming_what_will_happen(client):
    owner = make_member(role=Role.OWNER)
    org, slug = owner.organization, owner.organization.slug
    things = _owner_and_things(owner)
    client.force_login(owner.user)
    asks = [
        ("accounts:api_key_revoke", [things["key"].pk], "Revoke the API key “ci-gateway”?"),
        ("accounts:member_remove", [things["other"].pk],
         f"Remove {things['other'].user.email} from {org.name}?"),
        ("usage:controller_rotate", [things["controller"].pk], "Issue a new token for “dgx-01”?"),
        ("usage:budget_remove", [things["budget"].pk],
         "Remove the monthly API key budget for ci-gateway?"),
        ("usage:key_pause", [things["key"].pk], "Pause the API key “ci-gateway”?"),
        ("accounts:alerts:rule_delete", [things["rule"].pk], "Delete the alert rule"),
        ("accounts:alerts:webhook_secret_rotate", [], "Rotate the webhook signing secret?"),
    ]  # fmt: skip
    for name, args, question in asks:
        url = reverse(name, args=[slug, *args])
        page = client.get(url)
        html = page.content.decode().replace("&#x27;", "'")
        assert page.status_code == 200 and question in html, name
        assert f'<form method="post" action="{url}"' in html, name
        assert 'class="mainnav"' in html  # a page of the console, with its way back
        # The dialog's copy (an htmx request) is the form alone.
        fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
        assert question in fragment.replace("&#x27;", "'") and "<html" not in fragment
    # Asking changed nothing.
    things["key"].refresh_from_db()
    assert things["key"].revoked_at is None
    assert not KeyPause.objects.filter(api_key=things["key"]).exists()
    assert Budget.objects.filter(pk=things["budget"].pk).exists()
    assert AlertRule.objects.filter(pk=things["rule"].pk).exists()
    assert Membership.objects.filter(pk=things["other"].pk).exists()
    old_hash = things["controller"].token_hash
    assert Controller.objects.get(pk=things["controller"].pk).token_hash == old_hash


def _secret(page, testid):
    found = re.search(rf'data-testid="{testid}">([^<]+)<', page.content.decode())
    return found.group(1) if found else None


def test_a_secret_is_shown_once_after_its_redirect_and_a_reload_makes_nothing(client):
    owner = make_member(role=Role.OWNER)
    org, slug = owner.organization, owner.organization.slug
    client.force_login(owner.user)
    cases = [
        ("accounts:session_token_create", "accounts:session_tokens", {"name": "laptop"},
         "new-session-token", lambda: SessionToken.objects.filter(user=owner.user).count()),
        ("usage:controller_create", "usage:controllers",
         {"name": "dgx-09", "cores": 8, "memory_gb": 32}, "new-token",
         lambda: Controller.objects.filter(organization=org).count()),
        ("accounts:api_key_create", "accounts:api_keys", {"name": "Lab", "kind": "workspace"},
         "new-secret", lambda: APIKey.objects.filter(organization=org).count()),
    ]  # fmt: skip
    for create, listing, data, testid, count in cases:
        response = client.post(reverse(create, args=[slug]), data)
        assert response.status_code == 302
        assert response["Location"] == reverse(listing, args=[slug])
        first = client.get(response["Location"])
        secret = _secret(first, testid)
        assert secret and first["Cache-Control"] == "no-store", create
        reload = client.get(response["Location"])
        assert _secret(reload, testid) is None and secret not in reload.content.decode()
        assert count() == 1, create


def test_a_billing_member_following_a_link_to_keys_gets_the_styled_403(client):
    billing = make_member(role=Role.BILLING)
    client.force_login(billing.user)
    page = client.get(reverse("accounts:api_keys", args=[billing.organization.slug]))
    assert page.status_code == 403
    html = page.content.decode()
    assert "You can’t open this page" in html
    assert "This page is for owners, admins, members and viewers; you are a billing member" in html
    assert 'class="mainnav"' in html and f"Back to {billing.organization.name}" in html


def test_a_missing_page_is_a_404_in_the_shell_with_a_way_back(client):
    member = make_member(role=Role.MEMBER)
    client.force_login(member.user)
    page = client.get(f"/o/{member.organization.slug}/usage/charges/batch/987654/")
    assert page.status_code == 404
    html = page.content.decode()
    assert "Page not found" in html and f"Back to {member.organization.name}" in html


def test_the_budget_forms_error_names_its_subject_beside_the_api_key_field(client):
    owner = make_member(role=Role.OWNER)
    client.force_login(owner.user)
    page = client.post(
        reverse("usage:budget_add", args=[owner.organization.slug]),
        {"scope": "api_key", "period": "month", "soft_limit": "5"},
    )
    assert page.status_code == 400
    html = page.content.decode().replace("&#x27;", "'")
    error = re.search(r'<div class="field-error" id="id_api_key_error"[^>]*>(.*?)</div>', html)
    assert error and "API key is required for an API key's budget." in error.group(1)
    assert 'aria-describedby="id_api_key_helptext id_api_key_error"' in html
    assert not Budget.objects.exists()


def test_pages_have_a_favicon_and_the_browsers_default_address_finds_it(client):
    member = make_member(role=Role.MEMBER)
    client.force_login(member.user)
    html = client.get(f"/o/{member.organization.slug}/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert finders.find("favicon.svg")
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301 and answer["Location"] == "/static/favicon.svg"


def test_an_expired_form_is_a_403_page_saying_nothing_was_changed():
    member = make_member(role=Role.OWNER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    key, _ = make_api_key(org=member.organization, name="kept")
    page = client.post(reverse("accounts:api_key_revoke", args=[member.organization.slug, key.pk]))
    assert page.status_code == 403
    assert "This form has expired" in page.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
