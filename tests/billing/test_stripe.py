"""The Stripe provider with no network: the API call is replaced, webhooks are signed here."""

import json
import time
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Role
from billing import providers
from billing.models import LedgerEntry, Payment, PaymentStatus
from billing.providers import (
    StripeProvider,
    WebhookSignatureError,
    stripe_event_verify,
    stripe_signature_header,
)
from tests.factories import make_member

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret"


@pytest.fixture
def stripe(settings, monkeypatch):
    """Stripe configured, with its API answered locally; yields the calls made."""
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.BILLING_PAYMENT_PROVIDER = "stripe"
    calls = []

    def fake_post(path, data, *, secret_key, idempotency_key):
        calls.append({"path": path, "data": data, "key": idempotency_key})
        if path == "/checkout/sessions":
            n = len(calls)
            return {"id": f"cs_test_{n}", "url": f"https://checkout.stripe.com/c/pay/cs_test_{n}"}
        return {"id": "re_1", "status": "succeeded"}

    monkeypatch.setattr(providers, "_stripe_post", fake_post)
    return calls


def signed(payload: dict, *, secret=SECRET, timestamp=None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    header = stripe_signature_header(
        payload=body, secret=secret, timestamp=int(timestamp or time.time())
    )
    return body, header


def completed_event(session_id: str, amount_total: int, currency="usd") -> dict:
    return {
        "id": "evt_1",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "payment_status": "paid",
                "amount_total": amount_total,
                "currency": currency,
                "payment_intent": "pi_123",
            }
        },
    }


def post_webhook(client, body: bytes, header: str):
    return client.post(
        reverse("stripe_webhook"),
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )


def checkout(client, stripe):
    """Owner goes through Add Credit with Stripe: redirected to the Checkout page."""
    member = make_member(role=Role.OWNER)
    org = member.organization
    client.force_login(member.user)
    details = reverse("billing:add_credit_details", args=[org.slug])
    form = client.get(details, {"amount": "50"}).context["form"]
    assert "number" not in form.fields  # Stripe takes the card on its own page
    response = client.post(details, form.initial)
    confirm_url = response["Location"]
    response = client.post(confirm_url)
    return org, response


def test_checkout_session_is_created_and_the_customer_redirected(client, stripe):
    org, response = checkout(client, stripe)
    payment = Payment.objects.get(organization=org)
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.com/c/pay/cs_test_1"
    assert payment.status == PaymentStatus.PENDING
    assert payment.provider_reference == "cs_test_1"
    (call,) = stripe
    assert call["data"]["line_items[0][price_data][unit_amount]"] == "5000"
    assert call["data"]["line_items[0][price_data][currency]"] == "usd"
    assert call["data"]["client_reference_id"] == str(payment.pk)
    assert call["data"]["success_url"].endswith(
        reverse("billing:payment", args=[org.slug, payment.pk])
    )
    assert not LedgerEntry.objects.exists()  # nothing until Stripe says it is paid


def test_a_signed_webhook_completes_the_payment_once(client, stripe):
    org, _ = checkout(client, stripe)
    body, header = signed(completed_event("cs_test_1", 5000))
    assert post_webhook(client, body, header).status_code == 200
    assert post_webhook(client, body, header).status_code == 200  # Stripe retries
    payment = Payment.objects.get(organization=org)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.provider_charge_id == "pi_123"
    assert list(LedgerEntry.objects.values_list("kind", "amount")) == [("purchase", Decimal(50))]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, header: (body, header.replace("v1=", "v1=0")),  # wrong digest
        lambda body, header: (body.replace(b"5000", b"9000"), header),  # changed body
        lambda body, header: (body, ""),  # no header
        lambda body, header: (body, signed(json.loads(body), secret="whsec_other")[1]),
    ],
)
def test_an_invalid_signature_is_refused_and_changes_nothing(client, stripe, tamper):
    org, _ = checkout(client, stripe)
    body, header = tamper(*signed(completed_event("cs_test_1", 5000)))
    assert post_webhook(client, body, header).status_code == 400
    assert Payment.objects.get(organization=org).status == PaymentStatus.PENDING
    assert not LedgerEntry.objects.exists()


def test_an_old_replayed_event_is_refused(client, stripe):
    org, _ = checkout(client, stripe)
    body, header = signed(completed_event("cs_test_1", 5000), timestamp=time.time() - 3600)
    assert post_webhook(client, body, header).status_code == 400
    assert not LedgerEntry.objects.exists()


def test_an_expired_session_fails_the_payment(client, stripe):
    org, _ = checkout(client, stripe)
    event = completed_event("cs_test_1", 5000)
    event["type"] = "checkout.session.expired"
    body, header = signed(event)
    assert post_webhook(client, body, header).status_code == 200
    assert Payment.objects.get(organization=org).status == PaymentStatus.FAILED
    assert not LedgerEntry.objects.exists()


def test_webhook_for_an_unknown_session_is_acknowledged_and_ignored(client, stripe):
    body, header = signed(completed_event("cs_unknown", 5000))
    response = post_webhook(client, body, header)
    assert response.status_code == 200
    assert response.json() == {"received": True, "payment": None}


def test_verify_accepts_any_of_several_signatures():
    body = b'{"type": "ping"}'
    good = stripe_signature_header(payload=body, secret=SECRET, timestamp=1000)
    header = good.replace("v1=", "v1=deadbeef,v1=")
    assert stripe_event_verify(payload=body, header=header, secret=SECRET, now=1000) == {
        "type": "ping"
    }
    with pytest.raises(WebhookSignatureError):
        stripe_event_verify(payload=body, header=good, secret="", now=1000)


def test_stripe_refund_uses_the_payment_intent(stripe):
    StripeProvider(secret_key="sk").refund(
        charge_id="pi_123", amount_minor=5000, idempotency_key="r"
    )
    assert stripe[-1]["data"] == {"payment_intent": "pi_123", "amount": "5000"}
