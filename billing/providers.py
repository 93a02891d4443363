"""Payment providers behind one interface: the embedded sandbox (default) and Stripe.

A provider either takes the card in the console's own form (`collects_card_details`:
the sandbox, which behaves like a processor's test mode) or sends the customer to its
hosted page (Stripe Checkout), whose result arrives later by a signed webhook.
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from billing.cards import CardDetails, CardError, card_check

logger = logging.getLogger(__name__)


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"
    PENDING = "pending"  # the customer finishes on the provider's page; a webhook settles it


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    provider_reference: str = ""
    message: str = ""
    redirect_url: str = ""
    charge_id: str = ""


@dataclass(frozen=True)
class SavedCard:
    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class ProviderError(Exception):
    """The provider could not be reached or answered nonsense; nothing was charged."""


class PaymentProvider(Protocol):
    name: str
    collects_card_details: bool

    def tokenize(self, card: CardDetails) -> SavedCard:
        """Check the card and return a token to charge it with (CardError if refused)."""
        ...

    def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        method_token: str,
        idempotency_key: str,
        description: str,
        return_url: str = "",
        cancel_url: str = "",
        metadata: dict[str, str] | None = None,
    ) -> ChargeResult:
        """Charge once per idempotency key: a repeated key returns the first outcome."""
        ...

    def refund(self, *, charge_id: str, amount_minor: int, idempotency_key: str) -> None:
        """Give the money back (ProviderError if the provider refuses)."""
        ...


# --------------------------------------------------------------------------- sandbox


@dataclass(frozen=True)
class TestCard:
    number: str
    outcome: ChargeStatus
    code: str
    message: str
    label: str


# The sandbox's documented test cards (the same numbers Stripe's test mode uses). Any
# expiry in the future and any CVC of the right length work with them.
TEST_CARDS: tuple[TestCard, ...] = (
    TestCard("4242424242424242", ChargeStatus.SUCCEEDED, "ok", "", "Visa: succeeds"),
    TestCard("5555555555554444", ChargeStatus.SUCCEEDED, "ok", "", "Mastercard: succeeds"),
    TestCard(
        "4000000000000002",
        ChargeStatus.DECLINED,
        "card_declined",
        "Your card was declined. Try another card or contact your bank.",
        "Declined",
    ),
    TestCard(
        "4000000000009995",
        ChargeStatus.DECLINED,
        "insufficient_funds",
        "Your card has insufficient funds. Try another card.",
        "Insufficient funds",
    ),
    TestCard(
        "4000000000000119",
        ChargeStatus.FAILED,
        "processing_error",
        "An error occurred while processing your card. Nothing was charged; try again.",
        "Processing error",
    ),
)
_TEST_CARDS_BY_NUMBER = {card.number: card for card in TEST_CARDS}
_TEST_CARDS_BY_CODE = {card.code: card for card in TEST_CARDS}


class SandboxProvider:
    """An in-process card processor in test mode: outcomes follow the test card used."""

    name = "sandbox"
    collects_card_details = True

    def tokenize(self, card: CardDetails) -> SavedCard:
        card_check(card, today=timezone.localdate())
        test_card = _TEST_CARDS_BY_NUMBER.get(card.number)
        if test_card is None:
            raise CardError(
                "number", "This is the sandbox: use one of the test card numbers listed below."
            )
        # The token names the test outcome, like Stripe's tok_chargeDeclined tokens.
        token = f"pm_sandbox_{test_card.code}_{secrets.token_hex(6)}"
        return SavedCard(
            token=token,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )

    def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        method_token: str,
        idempotency_key: str,
        description: str,
        return_url: str = "",
        cancel_url: str = "",
        metadata: dict[str, str] | None = None,
    ) -> ChargeResult:
        # The reference is derived from the key, so a replayed key names the same charge.
        reference = "ch_sandbox_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        code = _sandbox_outcome_code(method_token)
        test_card = _TEST_CARDS_BY_CODE.get(code)
        if test_card is None:
            return ChargeResult(
                ChargeStatus.FAILED, reference, "The saved card is not valid any more."
            )
        return ChargeResult(test_card.outcome, reference, test_card.message, charge_id=reference)

    def refund(self, *, charge_id: str, amount_minor: int, idempotency_key: str) -> None:
        return None


def _sandbox_outcome_code(token: str) -> str:
    prefix = "pm_sandbox_"
    if not token.startswith(prefix):
        return ""
    return token[len(prefix) :].rsplit("_", 1)[0]


# ---------------------------------------------------------------------------- stripe

STRIPE_API = "https://api.stripe.com/v1"
STRIPE_SIGNATURE_TOLERANCE = 300  # seconds, as Stripe's own libraries use


class WebhookSignatureError(Exception):
    """The webhook's Stripe-Signature header does not match its body."""


def stripe_signature_header(*, payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header Stripe would send for this payload (tests use it)."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event_verify(
    *, payload: bytes, header: str, secret: str, now: float | None = None
) -> dict[str, Any]:
    """The event in a webhook body, after checking its signature and age (Stripe's scheme)."""
    if not secret:
        raise WebhookSignatureError("no webhook secret configured")
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise WebhookSignatureError("no timestamp in signature header") from exc
    expected = stripe_signature_header(payload=payload, secret=secret, timestamp=timestamp)
    expected_digest = expected.split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected_digest, sig) for sig in parts.get("v1", [])):
        raise WebhookSignatureError("signature does not match")
    now = time.time() if now is None else now
    if abs(now - timestamp) > STRIPE_SIGNATURE_TOLERANCE:
        raise WebhookSignatureError("timestamp outside the tolerance")
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise WebhookSignatureError("body is not JSON") from exc


def _stripe_post(
    path: str, data: dict[str, str], *, secret_key: str, idempotency_key: str
) -> dict[str, Any]:
    """One form-encoded POST to Stripe's API (the only place that talks to the network)."""
    request = urllib.request.Request(  # noqa: S310 - a fixed https URL
        f"{STRIPE_API}{path}",
        data=urllib.parse.urlencode(data).encode(),
        headers={
            "Authorization": f"Bearer {secret_key}",
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise ProviderError(f"Stripe request failed: {exc}") from exc


class StripeProvider:
    """Stripe Checkout: the customer pays on Stripe's page; a signed webhook settles it."""

    name = "stripe"
    collects_card_details = False

    def __init__(self, *, secret_key: str) -> None:
        self.secret_key = secret_key

    def tokenize(self, card: CardDetails) -> SavedCard:
        raise CardError(None, "Stripe takes card details on its own secure page.")

    def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        method_token: str,
        idempotency_key: str,
        description: str,
        return_url: str = "",
        cancel_url: str = "",
        metadata: dict[str, str] | None = None,
    ) -> ChargeResult:
        data = {
            "mode": "payment",
            "success_url": return_url,
            "cancel_url": cancel_url or return_url,
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": currency.lower(),
            "line_items[0][price_data][unit_amount]": str(amount_minor),
            "line_items[0][price_data][product_data][name]": description,
        }
        for key, value in (metadata or {}).items():
            data[f"metadata[{key}]"] = value
        if metadata and "payment_id" in metadata:
            data["client_reference_id"] = metadata["payment_id"]
        session = _stripe_post(
            "/checkout/sessions", data, secret_key=self.secret_key, idempotency_key=idempotency_key
        )
        if "id" not in session or "url" not in session:
            message = session.get("error", {}).get("message", "Stripe refused the payment.")
            return ChargeResult(ChargeStatus.FAILED, message=message)
        return ChargeResult(
            ChargeStatus.PENDING, provider_reference=session["id"], redirect_url=session["url"]
        )

    def refund(self, *, charge_id: str, amount_minor: int, idempotency_key: str) -> None:
        answer = _stripe_post(
            "/refunds",
            {"payment_intent": charge_id, "amount": str(amount_minor)},
            secret_key=self.secret_key,
            idempotency_key=idempotency_key,
        )
        if answer.get("status") not in {"succeeded", "pending"}:
            raise ProviderError(answer.get("error", {}).get("message", "Stripe refused the refund"))


def provider_get(name: str | None = None) -> PaymentProvider:
    """The provider by name, else the configured one (Stripe when its key is set)."""
    name = name or settings.BILLING_PAYMENT_PROVIDER
    if name == "stripe":
        if not settings.STRIPE_SECRET_KEY:
            raise ProviderError("Stripe is selected but STRIPE_SECRET_KEY is not set")
        return StripeProvider(secret_key=settings.STRIPE_SECRET_KEY)
    if name == "sandbox":
        return SandboxProvider()
    raise ProviderError(f"unknown payment provider {name!r}")
