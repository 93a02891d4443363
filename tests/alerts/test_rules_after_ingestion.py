"""Alert rules right after ingestion: a batch that crosses a threshold mails at once, batches
close together share one queued evaluation; operators see rules and notifications in
admin."""

from datetime import UTC, datetime

import pytest
from django.core import mail

from accounts.models import Tier
from accounts.services import organization_create
from alerts.models import (
    AlertKind,
)
from tests.factories import (
    grant_credits,
    make_alert_rule,
    make_api_key,
    make_member,
    make_org,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------- right after ingestion


def _batch(client, secret, records):
    import json

    return client.post(
        "/api/v1/usage/records",
        data=json.dumps({"records": records}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


def _queries(prefix, n, tokens):
    from django.utils import timezone

    at = timezone.now().isoformat()
    return [
        {"id": f"{prefix}-{i}", "kind": "query", "occurred_at": at, "model": "llama-3.1-8b",
         "input_tokens": tokens, "output_tokens": 0}
        for i in range(n)
    ]  # fmt: skip


def test_an_ingestion_batch_that_crosses_80_percent_mails_at_once(
    client, django_capture_on_commit_callbacks
):
    new = organization_create(name="Acme", tier=Tier.FREE, owner_email="ana@example.com")
    grant_credits(org=new.organization, amount="1000")
    _, secret = make_api_key(org=new.organization)
    with django_capture_on_commit_callbacks(execute=True):
        assert _batch(client, secret, _queries("a", 7, 10_000)).status_code == 200  # 70%
    assert len(mail.outbox) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert _batch(client, secret, _queries("b", 1, 10_000)).status_code == 200  # 80%
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ana@example.com"]
    with django_capture_on_commit_callbacks(execute=True):  # a replay stores nothing new
        assert _batch(client, secret, _queries("b", 1, 10_000)).status_code == 200
        assert _batch(client, secret, _queries("c", 1, 1_000)).status_code == 200  # 81%
    assert len(mail.outbox) == 1


def test_batches_close_together_share_one_queued_evaluation(
    monkeypatch, settings, django_capture_on_commit_callbacks
):
    from alerts.receivers import evaluate_soon
    from alerts.tasks import alerts_evaluate_org

    settings.ALERT_EVALUATE_DEBOUNCE_SECONDS = 5
    monkeypatch.setitem(alerts_evaluate_org.app.conf, "task_always_eager", False)
    queued = []
    monkeypatch.setattr(
        alerts_evaluate_org, "apply_async", lambda args, countdown: queued.append((args, countdown))
    )
    a, b = make_org(), make_org()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        evaluate_soon(a.pk)
        evaluate_soon(a.pk)
        evaluate_soon(b.pk)
        assert queued == []  # nothing before the batch's transaction commits
    assert len(callbacks) == 3
    assert queued == [((a.pk,), 5), ((b.pk,), 5)]


def test_operators_see_rules_and_notifications_in_admin(client, evaluate):
    from tests.factories import make_user

    org = make_org()
    make_member(org=org)
    make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    (notification,) = evaluate(org, NOW)
    client.force_login(make_user(is_staff=True, is_superuser=True))
    assert client.get("/admin/alerts/alertrule/").status_code == 200
    page = client.get(f"/admin/alerts/alertnotification/{notification.pk}/change/")
    assert page.status_code == 200 and "Sent" in page.text
    # Operators' bookmarks from when alerts were part of billing still lead there.
    old = client.get(f"/admin/billing/alertnotification/{notification.pk}/change/")
    assert old.status_code == 301
    assert old["Location"] == f"/admin/alerts/alertnotification/{notification.pk}/change/"
