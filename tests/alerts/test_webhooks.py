"""Alert webhooks: signed deliveries a receiver can verify, retries with every attempt
recorded, and URLs that resolve to non-public addresses refused. The only receiver
these tests send to runs on 127.0.0.1 in this process."""

import json
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from accounts.models import Role
from alerts.models import AlertDelivery, AlertKind, AlertNotification, AlertSettings
from alerts.services import (
    AlertRuleInvalid,
    RuleFields,
    alert_rule_create,
    alerts_evaluate,
)
from alerts.tasks import alert_webhook_backoff, alert_webhook_deliver
from alerts.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRefused,
    address_is_public,
    webhook_signature,
    webhook_signature_verify,
    webhook_target,
    webhook_url_check,
)
from tests.factories import make_alert_rule, make_member, make_org

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver on 127.0.0.1 answering the given statuses in turn."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers), body))
                status = (
                    receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts?src=console"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    made = []

    def start(*statuses):
        made.append(Receiver(statuses or (200,)))
        return made[-1]

    yield start
    for r in made:
        r.close()


@pytest.fixture
def fire(django_capture_on_commit_callbacks, monkeypatch):
    from console.celery import app

    # In-process (eager) tasks run a retry inline, unless errors propagate: then the
    # Retry itself would be raised to the caller instead of the next attempt running.
    monkeypatch.setitem(app.conf, "task_eager_propagates", False)

    def run(org):
        with django_capture_on_commit_callbacks(execute=True):
            return alerts_evaluate(org=org, now=NOW)

    return run


def org_with_webhook(url, *, email=True):
    org = make_org()
    make_member(org=org, role=Role.OWNER)
    rule = alert_rule_create(
        org=org,
        fields=RuleFields(
            kind=AlertKind.BALANCE, threshold=10, webhook_url=url, notify_email=email
        ),
    )
    return org, rule


def test_a_delivery_is_signed_and_a_receiver_can_verify_it(receiver, fire):
    hook = receiver(200)
    org, rule = org_with_webhook(hook.url)
    (notification,) = fire(org)

    assert len(hook.requests) == 1 and len(mail.outbox) == 1  # both channels
    path, headers, body = hook.requests[0]
    assert path == "/hooks/alerts?src=console"
    secret = AlertSettings.objects.get(organization=org).webhook_secret
    assert webhook_signature_verify(
        secret=secret,
        body=body,
        timestamp=headers[TIMESTAMP_HEADER],
        signature=headers[SIGNATURE_HEADER],
    )
    # What the receiver recomputes, by hand: HMAC-SHA256 over "<timestamp>.<body>".
    import hashlib
    import hmac

    expected = hmac.new(
        secret.encode(), headers[TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"v1={expected}"
    payload = json.loads(body)
    assert payload["type"] == "alert.fired" and payload["id"] == notification.pk
    assert payload["organization"] == org.slug and payload["rule"]["kind"] == "balance"
    assert payload["figures"]["balance"] == "0"

    # A tampered body, another secret or a stale timestamp does not verify.
    ts, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert not webhook_signature_verify(
        secret=secret, body=body + b" ", timestamp=ts, signature=sig
    )
    assert not webhook_signature_verify(
        secret="whsec_other", body=body, timestamp=ts, signature=sig
    )
    assert not webhook_signature_verify(
        secret=secret, body=body, timestamp=ts, signature=sig, now=int(ts) + 301
    )

    delivery = AlertDelivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.response_code, delivery.attempt) == ("sent", 200, 1)


def test_failed_deliveries_are_retried_and_every_attempt_is_listed(receiver, fire):
    hook = receiver(500, 503, 200)
    org, _ = org_with_webhook(hook.url, email=False)
    fire(org)
    assert len(hook.requests) == 3
    attempts = list(
        AlertDelivery.objects.filter(channel="webhook").values_list(
            "attempt", "status", "response_code"
        )
    )
    assert attempts == [(1, "failed", 500), (2, "failed", 503), (3, "sent", 200)]
    # Each retry signs afresh; every one verifies.
    secret = AlertSettings.objects.get(organization=org).webhook_secret
    for _, headers, body in hook.requests:
        assert webhook_signature_verify(
            secret=secret,
            body=body,
            timestamp=headers[TIMESTAMP_HEADER],
            signature=headers[SIGNATURE_HEADER],
        )


def test_retries_stop_after_the_last_attempt(receiver, fire):
    hook = receiver(500)
    org, _ = org_with_webhook(hook.url, email=False)
    fire(org)
    assert len(hook.requests) == 6  # the first attempt and five retries
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"failed"}
    assert [alert_webhook_backoff(n) for n in range(6)] == [10, 20, 40, 80, 160, 320]


def test_a_delivered_notification_is_not_posted_again(receiver, fire):
    hook = receiver(200)
    org, _ = org_with_webhook(hook.url, email=False)
    (notification,) = fire(org)
    alert_webhook_deliver.delay(notification.pk)  # a redelivered task
    assert len(hook.requests) == 1


def test_an_unreachable_receiver_is_a_failed_attempt(settings, fire):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    org, _ = org_with_webhook(f"http://127.0.0.1:{port}/", email=False)
    fire(org)
    deliveries = AlertDelivery.objects.all()
    assert deliveries.count() == 6
    assert all(d.status == "failed" and "Connection" in d.error for d in deliveries)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.9/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata: link-local
        "http://100.64.0.1/hook",  # shared address space
        "http://0.0.0.0/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(settings, url):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(WebhookRefused):
        webhook_url_check(url)
    org = make_org()
    with pytest.raises(AlertRuleInvalid) as refused:
        alert_rule_create(org=org, fields=RuleFields(kind="balance", threshold=10, webhook_url=url))
    assert refused.value.field == "webhook_url"


def test_a_host_name_that_resolves_to_a_private_address_is_refused(settings, monkeypatch):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    answers = {
        "hooks.example.com": ["93.184.216.34", "10.0.0.5"],
        "ok.example.com": ["93.184.216.34"],
    }

    def fake_getaddrinfo(host, port, *args, **kwargs):  # no DNS query leaves the test
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    # At delivery: refused, without saying what the name resolved to.
    with pytest.raises(WebhookRefused) as refused:
        webhook_target("https://hooks.example.com/alerts")
    assert "10.0.0.5" not in str(refused.value) and "93.184" not in str(refused.value)
    webhook_target("https://ok.example.com/alerts")  # public: accepted (nothing is sent)
    with pytest.raises(WebhookRefused):
        webhook_url_check("ftp://ok.example.com/alerts")
    with pytest.raises(WebhookRefused):
        webhook_url_check("https://user:pw@ok.example.com/alerts")


def test_the_address_is_checked_again_at_delivery(receiver, settings, fire):
    hook = receiver(200)
    org, _ = org_with_webhook(hook.url, email=False)  # saved while private was allowed
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    fire(org)
    assert hook.requests == []
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "refused" and "public internet addresses only" in delivery.error
    assert "127.0.0.1" not in delivery.error
    assert AlertNotification.objects.count() == 1  # the alert itself still stands


def test_address_classification():
    assert address_is_public("93.184.216.34") and address_is_public("2606:4700::1111")
    for private in ["127.0.0.1", "10.0.0.1", "169.254.1.1", "::1", "fe80::1", "224.0.0.1"]:
        assert not address_is_public(private)


def test_signature_is_hmac_sha256_over_timestamp_and_body():
    sig = webhook_signature(secret="s", timestamp=1700000000, body=b"{}")
    assert sig == "v1=" + __import__("hmac").new(b"s", b"1700000000.{}", "sha256").hexdigest()
    assert webhook_signature_verify(
        secret="s", body=b"{}", timestamp="1700000000", signature=sig, now=1700000000 + 10
    )
    assert not webhook_signature_verify(secret="s", body=b"{}", timestamp="x", signature=sig)
    assert time.time() > 0  # the default clock is the real one


def test_rules_without_webhook_send_nothing(receiver, fire):
    hook = receiver(200)
    org = make_org()
    make_member(org=org)
    make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    fire(org)
    assert hook.requests == [] and not AlertDelivery.objects.filter(channel="webhook").exists()
