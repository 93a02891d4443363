"""With a real Celery worker on Redis against PostgreSQL: an ingestion batch that takes
an organization past 80% of its monthly tokens produces one email to its owners."""

import json
import time
from email import message_from_bytes

import pytest
from django.utils import timezone

from accounts.services import organization_create
from alerts.models import AlertDelivery, AlertNotification
from alerts.tasks import alerts_evaluate_due, alerts_evaluate_org
from tests.factories import grant_credits, make_api_key, make_member

pytestmark = [pytest.mark.celery_worker, pytest.mark.postgres]


@pytest.fixture
def alert_worker(request, tmp_path, monkeypatch, settings):
    """The worker, writing mail to files in a folder this test reads (it is another process)."""
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    monkeypatch.setenv("EMAIL_FILE_PATH", str(mail_dir))
    settings.ALERT_EVALUATE_DEBOUNCE_SECONDS = 1
    request.getfixturevalue("celery_worker_process")
    return mail_dir


def wait_for(condition, timeout=45):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def sent_mail(mail_dir):
    return [
        message_from_bytes(chunk.strip() + b"\n")
        for path in sorted(mail_dir.iterdir())
        for chunk in path.read_bytes().split(b"-" * 79)
        if chunk.strip()
    ]


@pytest.mark.django_db(transaction=True)
def test_a_batch_crossing_80_percent_of_the_allocation_mails_the_owners(alert_worker, client):
    new = organization_create(name="Acme", tier="free", owner_email="ana@example.com")
    org = new.organization  # free: 100,000 tokens; the default rules: 80%, 100%, low balance
    admin = make_member(org=org, role="admin")
    make_member(org=org, role="member")
    grant_credits(org=org, amount="1000")
    _, secret = make_api_key(org=org)
    now = timezone.now().isoformat()
    records = [
        {
            "id": f"q-{i}",
            "kind": "query",
            "occurred_at": now,
            "model": "llama-3.1-8b",
            "input_tokens": 20_000,
            "output_tokens": 1_000,
        }
        for i in range(4)
    ]  # 84,000 tokens: past 80%, not 100%
    response = client.post(
        "/api/v1/usage/records",
        data=json.dumps({"records": records}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200, response.content
    assert len(response.json()["accepted"]) == 4

    emailed = AlertDelivery.objects.filter(
        notification__organization=org, channel="email", status="sent"
    )
    assert wait_for(emailed.exists), "the worker sent no alert email"
    notification = AlertNotification.objects.get(organization=org)
    assert notification.kind == "tokens" and notification.figures["threshold"] == "80"
    assert notification.figures["used"] == 84_000
    assert wait_for(lambda: len(sent_mail(alert_worker)) == 1)
    (message,) = sent_mail(alert_worker)
    assert sorted(message["To"].split(", ")) == sorted(["ana@example.com", admin.user.email])
    assert (
        message["Subject"] == "[Usage Console] Acme: monthly tokens reached 80% of the allocation"
    )
    assert "reached 84% of the allocation" in message.get_payload(decode=True).decode()

    # The beat's entry and a later evaluation, both in the worker: nothing new to send.
    assert alerts_evaluate_due.delay().get(timeout=30) >= 1
    assert alerts_evaluate_org.delay(org.pk).get(timeout=30) == 0
    time.sleep(1)
    assert AlertNotification.objects.filter(organization=org).count() == 1
    assert emailed.count() == 1 and len(sent_mail(alert_worker)) == 1
