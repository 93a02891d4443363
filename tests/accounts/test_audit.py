"""The audit log: each change writes exactly one event (who, what, from where); the log
is append-only (no edit or delete through the ORM, admin or the API); Settings → Audit
log filters, pages and exports; the API reads it for owners and admins only."""

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import AuditAction, AuditEvent, AuditLogAppendOnly, Role
from accounts.services import (
    apikey_create,
    apikey_revoke,
    session_token_issue,
    session_token_renew,
    session_token_revoke,
)
from accounts.team import (
    invitation_accept,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    invitation_token,
    member_remove,
    member_role_change,
)
from alerts.services import (
    RuleFields,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_webhook_secret_rotate,
)
from billing.services import (
    BillingDetailsFields,
    auto_recharge_disable,
    auto_recharge_set,
    billing_details_update,
    ledger_adjust,
    payment_refund,
)
from spend.services.budgets import (
    apikey_pause,
    apikey_resume,
    budget_create,
    budget_delete,
    budget_update,
)
from tests.factories import (
    grant_credits,
    make_member,
    make_payment,
    make_payment_method,
    make_user,
)
from usage.services.controllers import controller_register, controller_token_rotate

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    member = make_member(role=Role.OWNER)
    grant_credits(org=member.organization)
    return member


def _invite(o):
    return invitation_create(org=o.organization, email="n@example.com", role="member",
                             invited_by=o.user).invitation  # fmt: skip


def _join(o):
    inv = _invite(o)
    invitation_accept(org_slug=o.organization.slug, token=invitation_token(inv),
                      password="long-enough-pass-1")  # fmt: skip


def _adjust(o):
    staff = make_user(is_staff=True)
    ledger_adjust(org=o.organization, amount=Decimal("-3"), reason="goodwill", actor=staff,
                  idempotency_key="adj-1")  # fmt: skip


def _budget(o):
    return budget_create(org=o.organization, scope="organization", period="month",
                         soft_limit="10", hard_limit="20", actor=o.user)  # fmt: skip


def _paused_key(o):
    key = apikey_create(org=o.organization, name="k").key
    apikey_pause(key=key, by=o.user)
    return key


# (what is done, the one action it records). Setup the action needs is done first and
# its own events are not counted: only the last call's.
CASES = [
    ("key created", lambda o: apikey_create(org=o.organization, name="k", created_by=o.user),
     None, AuditAction.API_KEY_CREATED),
    ("key revoked", lambda o, k: apikey_revoke(key=k, actor=o.user),
     lambda o: apikey_create(org=o.organization, name="k").key, AuditAction.API_KEY_REVOKED),
    ("token issued", lambda o: session_token_issue(user=o.user, org=o.organization),
     None, AuditAction.SESSION_TOKEN_ISSUED),
    ("token revoked", lambda o, t: session_token_revoke(token=t),
     lambda o: session_token_issue(user=o.user, org=o.organization).token,
     AuditAction.SESSION_TOKEN_REVOKED),
    ("invited", _invite, None, AuditAction.MEMBER_INVITED),
    ("resent", lambda o, i: invitation_resend(invitation=i, actor=o.user), _invite,
     AuditAction.INVITATION_RESENT),
    ("invitation revoked", lambda o, i: invitation_revoke(invitation=i, actor=o.user), _invite,
     AuditAction.INVITATION_REVOKED),
    ("role changed", lambda o, m: member_role_change(membership=m, role="viewer", actor=o.user),
     lambda o: make_member(org=o.organization, role="member"), AuditAction.MEMBER_ROLE_CHANGED),
    ("removed", lambda o, m: member_remove(membership=m, actor=o.user),
     lambda o: make_member(org=o.organization, role="member"), AuditAction.MEMBER_REMOVED),
    ("paid", lambda o: make_payment(org=o.organization), None, AuditAction.PAYMENT_SUCCEEDED),
    ("declined", lambda o: make_payment(org=o.organization, number="4000000000000002"), None,
     AuditAction.PAYMENT_FAILED),
    ("refunded", lambda o, p: payment_refund(payment_id=p.pk, actor=make_user(is_staff=True)),
     lambda o: make_payment(org=o.organization), AuditAction.PAYMENT_REFUNDED),
    ("card saved", lambda o: make_payment_method(org=o.organization), None,
     AuditAction.PAYMENT_METHOD_SAVED),
    ("auto-recharge on", lambda o, m: auto_recharge_set(org=o.organization, below=Decimal("5"),
     amount_minor=1000, method=m, actor=o.user),
     lambda o: make_payment_method(org=o.organization), AuditAction.AUTO_RECHARGE_ENABLED),
    ("auto-recharge off", lambda o, _: auto_recharge_disable(org=o.organization, actor=o.user),
     lambda o: auto_recharge_set(org=o.organization, below=Decimal("5"), amount_minor=1000,
                                 method=make_payment_method(org=o.organization)),
     AuditAction.AUTO_RECHARGE_DISABLED),
    ("rule created", lambda o: alert_rule_create(org=o.organization, actor=o.user,
     fields=RuleFields(kind="balance", threshold=Decimal("42"))), None,
     AuditAction.ALERT_RULE_CREATED),
    ("rule changed", lambda o, r: alert_rule_update(rule=r, actor=o.user,
     fields=RuleFields(kind="balance", threshold=Decimal("43"))),
     lambda o: alert_rule_create(org=o.organization, fields=RuleFields(kind="balance",
                                 threshold=Decimal("42"))), AuditAction.ALERT_RULE_UPDATED),
    ("rule deleted", lambda o, r: alert_rule_delete(rule=r, actor=o.user),
     lambda o: alert_rule_create(org=o.organization, fields=RuleFields(kind="balance",
                                 threshold=Decimal("42"))), AuditAction.ALERT_RULE_DELETED),
    ("operator adjustment", _adjust, None, AuditAction.CREDITS_ADJUSTED),
    ("billing details", lambda o: billing_details_update(org=o.organization, actor=o.user,
     fields=BillingDetailsFields(legal_name="Acme GmbH")), None,
     AuditAction.BILLING_DETAILS_UPDATED),
    ("joined", _join, None, AuditAction.MEMBER_JOINED),
    ("budget created", lambda o: _budget(o), None, AuditAction.BUDGET_CREATED),
    ("budget changed", lambda o, b: budget_update(budget=b, changes={"hard_limit": "30"},
     actor=o.user), _budget, AuditAction.BUDGET_UPDATED),
    ("budget deleted", lambda o, b: budget_delete(budget=b, actor=o.user), _budget,
     AuditAction.BUDGET_DELETED),
    ("key paused", lambda o, k: apikey_pause(key=k, by=o.user),
     lambda o: apikey_create(org=o.organization, name="k").key, AuditAction.API_KEY_PAUSED),
    ("key resumed", lambda o, k: apikey_resume(key=k, actor=o.user), _paused_key,
     AuditAction.API_KEY_RESUMED),
    ("controller created", lambda o: controller_register(org=o.organization, name="c",
     cores=4, memory_gb=8, actor=o.user), None, AuditAction.CONTROLLER_CREATED),
    ("controller token rotated", lambda o, c: controller_token_rotate(controller=c,
     actor=o.user), lambda o: controller_register(org=o.organization, name="c", cores=4,
     memory_gb=8).controller, AuditAction.CONTROLLER_TOKEN_ROTATED),
    ("webhook secret rotated", lambda o: alert_webhook_secret_rotate(org=o.organization,
     actor=o.user), None, AuditAction.WEBHOOK_SECRET_ROTATED),
    ("token renewed", lambda o, t: session_token_renew(token=t),
     lambda o: session_token_issue(user=o.user, org=o.organization).token,
     AuditAction.SESSION_TOKEN_RENEWED),
]  # fmt: skip


@pytest.mark.parametrize(("what", "act", "setup", "action"), CASES, ids=[c[0] for c in CASES])
def test_each_change_writes_exactly_one_event(owner, what, act, setup, action):
    if setup is not None:
        prepared = setup(owner)
        before = AuditEvent.objects.count()
        act(owner, prepared)
    else:
        before = AuditEvent.objects.count()
        act(owner)
    new = list(AuditEvent.objects.order_by("id")[before:])
    if action == AuditAction.MEMBER_JOINED:  # the invitation made first is its own event
        new = new[1:]
    assert [e.action for e in new] == [action], what
    assert new[0].organization_id == owner.organization_id
    assert new[0].summary


def test_replays_write_nothing(owner):
    key = apikey_create(org=owner.organization, name="k").key
    apikey_revoke(key=key, actor=owner.user)
    apikey_pause(key=key, by=owner.user)
    before = AuditEvent.objects.count()
    apikey_revoke(key=key, actor=owner.user)
    apikey_pause(key=key, by=owner.user)  # already paused
    apikey_resume(key=key, actor=owner.user)
    apikey_resume(key=key, actor=owner.user)  # already running: only the first counts
    before += 1
    auto_recharge_disable(org=owner.organization, actor=owner.user)  # already off
    billing_details_update(org=owner.organization, actor=owner.user,
                           fields=BillingDetailsFields())  # nothing changed  # fmt: skip
    assert AuditEvent.objects.count() == before


def test_the_page_records_who_and_from_which_address(client, owner):
    client.force_login(owner.user)
    client.post(reverse("accounts:api_key_create", args=[owner.organization.slug]),
                {"name": "ci", "kind": "workspace"}, REMOTE_ADDR="203.0.113.9")  # fmt: skip
    event = AuditEvent.objects.get(action=AuditAction.API_KEY_CREATED)
    assert (event.actor_id, event.actor_email, event.ip_address) == (
        owner.user.pk,
        owner.user.email,
        "203.0.113.9",
    )
    assert not event.by_operator


def test_budget_events_say_the_levels_as_the_console_shows_them(owner):
    budget = budget_create(
        org=owner.organization, scope="organization", period="month",
        soft_limit="0.000048", hard_limit="1234.5", actor=owner.user,
    )  # fmt: skip
    event = AuditEvent.objects.get(action=AuditAction.BUDGET_CREATED)
    assert "1,234.50" in event.summary and "0.000048" in event.summary
    assert event.target == f"budget:{budget.pk}"


def test_the_console_and_the_api_record_who_changed_a_budget(client, owner):
    from accounts.services import session_token_issue as issue

    client.force_login(owner.user)
    slug = owner.organization.slug
    client.post(reverse("usage:budget_add", args=[slug]), {"scope": "organization",
                "period": "day", "soft_limit": "1"})  # fmt: skip
    token = issue(user=owner.user, org=owner.organization).secret
    client.post("/api/v1/budgets", {"scope": "organization", "period": "week",
                "soft_limit": "2"}, content_type="application/json",
                headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    events = AuditEvent.objects.filter(action=AuditAction.BUDGET_CREATED)
    assert [e.actor_id for e in events] == [owner.user.pk, owner.user.pk]


def test_an_operator_adjustment_is_marked_as_the_operators(owner):
    _adjust(owner)
    event = AuditEvent.objects.get(action=AuditAction.CREDITS_ADJUSTED)
    assert event.by_operator and "-3" in event.summary and "goodwill" in event.summary


def test_no_event_can_be_changed_or_deleted_through_the_orm(owner):
    apikey_create(org=owner.organization, name="k", created_by=owner.user)
    event = AuditEvent.objects.get()
    event.summary = "rewritten"
    for attempt in (event.save, event.delete, AuditEvent.objects.all().delete,
                    lambda: AuditEvent.objects.update(summary="x")):  # fmt: skip
        with pytest.raises(AuditLogAppendOnly):
            attempt()
    assert AuditEvent.objects.get().summary.startswith("Created")


def test_no_event_can_be_changed_or_deleted_through_admin(client, owner):
    apikey_create(org=owner.organization, name="k", created_by=owner.user)
    event = AuditEvent.objects.get()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    base = "/admin/accounts/auditevent/"
    assert client.get(base).status_code == 200
    assert client.get(f"{base}{event.pk}/change/").status_code == 200  # read-only view
    assert client.post(f"{base}{event.pk}/change/", {"summary": "x"}).status_code == 403
    assert client.post(f"{base}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(base, {"action": "delete_selected", "_selected_action": [event.pk]})
    assert response.status_code in (200, 302)
    assert client.get(f"{base}add/").status_code == 403
    assert AuditEvent.objects.get().summary == event.summary


def test_audit_log_page_filters_pages_and_exports(client, owner):
    org = owner.organization
    other = make_member(org=org, role=Role.ADMIN)
    for n in range(60):
        apikey_create(org=org, name=f"key {n}", created_by=owner.user)
    apikey_create(org=org, name="=HYPERLINK()", created_by=other.user)
    client.force_login(owner.user)
    url = reverse("accounts:audit_log", args=[org.slug])
    html = client.get(url).content.decode()
    assert "Page 1 of 2" in html and "=HYPERLINK()" in html  # newest first
    html = client.get(url, {"person": other.user.email}).content.decode()
    assert "=HYPERLINK()" in html and "key 59" not in html
    html = client.get(url, {"kind": "api_key.revoked"}).content.decode()
    assert "No events match" in html
    partial = client.get(url, {"page": 2}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-events")
    assert "<html" not in partial.content.decode() and "Page 2 of 2" in partial.content.decode()
    csv = client.get(
        reverse("accounts:audit_log_csv", args=[org.slug]), {"person": other.user.email}
    )
    body = b"".join(csv.streaming_content).decode("utf-8-sig").splitlines()
    assert body[0] == "time,person,operator,action,summary,target,ip_address"
    assert len(body) == 2 and "Created workspace key =HYPERLINK()" in body[1]
    assert other.user.email in body[1] and "api_key.created" in body[1]


def test_api_reads_the_log_for_owners_and_admins_and_cannot_change_it(client, owner):
    org = owner.organization
    apikey_create(org=org, name="k", created_by=owner.user)
    issued = session_token_issue(user=owner.user, org=org)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}
    body = client.get("/api/v1/audit-events", **auth).json()
    assert [e["action"] for e in body["items"]] == ["session_token.issued", "api_key.created"]
    assert body["count"] == 2 and body["items"][1]["actor_email"] == owner.user.email
    filtered = client.get("/api/v1/audit-events?action=api_key.created", **auth).json()
    assert filtered["count"] == 1
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)("/api/v1/audit-events", **auth).status_code == 405
    assert AuditEvent.objects.filter(organization=org).count() == 2
    member = make_member(org=org, role=Role.BILLING)
    token = session_token_issue(user=member.user, org=org).secret
    refused = client.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert refused.status_code == 403
    key = apikey_create(org=org, name="program").secret
    assert client.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 403


def test_the_schema_lists_the_audit_endpoint(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert "get" in schema["paths"]["/api/v1/audit-events"]
