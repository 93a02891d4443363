"""Who may do what: every role (owner, admin, billing, member, viewer) against every
page and action of the console, as a table. A role not allowed gets a 403; the
expected statuses are the table's, not the views' own permission helpers."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from accounts.team import invitation_create
from billing.models import Receipt
from billing.services import statement_issue
from tests.factories import grant_credits, make_api_key, make_member, make_org, make_payment

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
    invitation = invitation_create(
        org=org, email="new@example.com", role=Role.MEMBER, invited_by=people["owner"].user
    ).invitation
    ids = {
        "statement_id": statement.pk,
        "receipt_id": Receipt.objects.get(payment=payment).pk,
        "key_id": key.pk,
        "member_id": target.pk,
        "invitation_id": invitation.pk,
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
    response = getattr(client, method)(reverse(name, args=args), data=data or {})
    assert response.status_code == expected, (name, role, response.status_code)


@pytest.mark.parametrize(
    ("role", "links"),
    [
        ("owner", {"Members", "Billing details", "Audit log", "API keys"}),
        ("admin", {"Members", "Billing details", "Audit log", "API keys"}),
        ("billing", {"Members", "Billing details"}),
        ("member", {"Members", "API keys"}),
        ("viewer", {"Members", "API keys"}),
    ],
)
def test_settings_shows_each_role_the_links_it_may_follow(client, world, role, links):
    org, people, _ = world
    client.force_login(people[role].user)
    html = client.get(reverse("accounts:organization_settings", args=[org.slug])).content.decode()
    for text in ("Members", "Billing details", "Audit log", "API keys"):
        assert (f">{text}</a>" in html) == (text in links), (role, text)


@pytest.mark.parametrize(("role", "sees"), [("billing", True), ("member", False)])
def test_finance_shows_statements_and_add_credit_to_finance_roles(client, world, role, sees):
    org, people, _ = world
    client.force_login(people[role].user)
    html = client.get(reverse("billing:dashboard", args=[org.slug])).content.decode()
    assert (">Statements</a>" in html) == sees
    assert ('data-testid="add-credit"' in html) == sees
    assert ('data-testid="receipt-link"' in html) == sees
