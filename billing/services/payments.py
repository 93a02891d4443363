"""Payments: prepare (check the card, charge nothing), confirm (charge once), settle, refund.

A payment's purchase entry has the idempotency key `payment:<id>`, so however many
times a payment is confirmed, settled by a webhook or replayed, it buys credits once.
"""

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditAction, Organization, User
from billing.cards import CardDetails, CardError
from billing.models import (
    EntryKind,
    Payment,
    PaymentMethod,
    PaymentSource,
    PaymentStatus,
    ReceiptKind,
)
from billing.money import credits_for_minor_units, credits_text, dollars_display
from billing.providers import (
    ChargeResult,
    ChargeStatus,
    PaymentProvider,
    ProviderError,
    provider_get,
)
from billing.services.documents import receipt_issue
from billing.services.ledger import ledger_post

logger = logging.getLogger(__name__)

UNREACHABLE = "The payment provider could not be reached. Nothing was charged; try again."


class PaymentError(Exception):
    """A payment the console refuses; the message is for the user."""


def payment_amount_check(amount_minor: int) -> None:
    """Raise PaymentError unless the amount is within the configured bounds."""
    low, high = settings.BILLING_MIN_PAYMENT_MINOR, settings.BILLING_MAX_PAYMENT_MINOR
    if not isinstance(amount_minor, int) or not low <= amount_minor <= high:
        raise PaymentError(
            f"Choose an amount from {dollars_display(low)} to {dollars_display(high)}."
        )


def _payment_card(
    *,
    org: Organization,
    card: CardDetails | None,
    method: PaymentMethod | None,
    provider: PaymentProvider | None,
) -> tuple[str, str, str, str]:
    """(provider name, card token, brand, last 4) of the saved card or of the card given,
    tokenized by the provider if it collects card details (else empty)."""
    if method is not None:
        if method.organization_id != org.pk:
            raise PaymentError("That card belongs to another organization.")
        return method.provider, method.token, method.brand, method.last4
    provider = provider or provider_get()
    if not provider.collects_card_details:
        return provider.name, "", "", ""
    if card is None:
        raise CardError(None, "Enter the card's details.")
    saved = provider.tokenize(card)
    return provider.name, saved.token, saved.brand, saved.last4


@transaction.atomic
def payment_prepare(
    *,
    org: Organization,
    amount_minor: int,
    idempotency_key: str,
    actor: User | None = None,
    card: CardDetails | None = None,
    method: PaymentMethod | None = None,
    provider: PaymentProvider | None = None,
    source: str = PaymentSource.MANUAL,
    at: datetime | None = None,
) -> Payment:
    """The payment awaiting confirmation for this key (created once); charges nothing.

    Checks the amount and the card (CardError names the field at fault). A replayed key
    returns the same payment; while it awaits confirmation the card may be replaced.
    """
    payment_amount_check(amount_minor)
    provider_name, token, brand, last4 = _payment_card(
        org=org, card=card, method=method, provider=provider
    )
    payment = (
        Payment.objects.select_for_update()
        .filter(organization=org, idempotency_key=idempotency_key)
        .first()
    )
    if payment is None:
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    organization=org,
                    amount_minor=amount_minor,
                    currency=settings.BILLING_CURRENCY,
                    credits=credits_for_minor_units(amount_minor),
                    status=PaymentStatus.REQUIRES_CONFIRMATION,
                    provider=provider_name,
                    method_token=token,
                    card_brand=brand,
                    card_last4=last4,
                    idempotency_key=idempotency_key,
                    actor=actor,
                    source=source,
                    created_at=at or timezone.now(),
                )
            return payment
        except IntegrityError:  # a concurrent submit of the same form created it first
            payment = Payment.objects.select_for_update().get(
                organization=org, idempotency_key=idempotency_key
            )
    if payment.amount_minor != amount_minor:
        raise PaymentError("This form was already used for another amount: start again.")
    if payment.status == PaymentStatus.REQUIRES_CONFIRMATION and token:
        payment.method_token, payment.card_brand, payment.card_last4 = token, brand, last4
        payment.save(update_fields=["method_token", "card_brand", "card_last4"])
    return payment


def _purchase_post(payment: Payment, *, at: datetime | None) -> None:
    what = "Auto-recharge" if payment.source == PaymentSource.AUTO_RECHARGE else "Add Credit"
    card = f" · {payment.card_brand} •••• {payment.card_last4}" if payment.card_last4 else ""
    ledger_post(
        org=payment.organization,
        kind=EntryKind.PURCHASE,
        amount=payment.credits,
        reason=f"{what}: {dollars_display(payment.amount_minor)}{card}",
        idempotency_key=f"payment:{payment.pk}",
        actor=payment.actor,
        reference=f"payment:{payment.pk}",
        at=at,
    )


def _payment_audit(payment: Payment, action: str, **data: str) -> None:
    what = "Auto-recharge" if payment.source == PaymentSource.AUTO_RECHARGE else "Payment"
    card = f" · {payment.card_brand} •••• {payment.card_last4}" if payment.card_last4 else ""
    outcomes: dict[str, str] = {
        AuditAction.PAYMENT_SUCCEEDED: "succeeded",
        AuditAction.PAYMENT_FAILED: f"{payment.get_status_display().lower()}",
        AuditAction.PAYMENT_REFUNDED: "refunded",
    }
    outcome = outcomes[action]
    audit_record(
        org=payment.organization,
        actor=payment.actor,
        action=action,
        summary=f"{what} of {dollars_display(payment.amount_minor)} for "
        f"{credits_text(payment.credits, exact=True)}{card} {outcome}",
        target=f"payment:{payment.pk}",
        data={"amount_minor": payment.amount_minor, "status": payment.status, **data},
    )


def _settle(payment: Payment, result: ChargeResult, *, at: datetime | None) -> Payment:
    """Record the provider's answer on a locked payment; a success buys the credits."""
    payment.provider_reference = result.provider_reference or payment.provider_reference
    payment.provider_charge_id = result.charge_id or payment.provider_charge_id
    if result.status == ChargeStatus.SUCCEEDED:
        payment.status = PaymentStatus.SUCCEEDED
        payment.completed_at = at or timezone.now()
        payment.failure_message = ""
        payment.save()
        _purchase_post(payment, at=at)
        receipt = receipt_issue(payment=payment, kind=ReceiptKind.PAYMENT, at=at)
        _payment_audit(payment, AuditAction.PAYMENT_SUCCEEDED, receipt=receipt.display_number)
    elif result.status == ChargeStatus.PENDING:
        payment.status = PaymentStatus.PENDING
        payment.redirect_url = result.redirect_url
        payment.save()
    else:
        payment.status = (
            PaymentStatus.DECLINED
            if result.status == ChargeStatus.DECLINED
            else PaymentStatus.FAILED
        )
        payment.failure_message = (result.message or "The payment failed.")[:300]
        payment.completed_at = at or timezone.now()
        payment.save()
        _payment_audit(payment, AuditAction.PAYMENT_FAILED)
    logger.info(
        "billing.payment.settled",
        extra={"payment": payment.pk, "org": payment.organization_id, "status": payment.status},
    )
    return payment


@transaction.atomic
def payment_confirm(
    *,
    org: Organization,
    payment_id: int,
    return_url: str = "",
    cancel_url: str = "",
    at: datetime | None = None,
) -> Payment:
    """Charge a prepared payment, once: confirming it again returns it unchanged.

    Raises Payment.DoesNotExist for another organization's payment.
    """
    payment = (
        Payment.objects.select_for_update()
        .select_related("organization")
        .get(organization=org, pk=payment_id)
    )
    if payment.status != PaymentStatus.REQUIRES_CONFIRMATION:
        return payment
    try:
        provider = provider_get(payment.provider)
        result = provider.charge(
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            method_token=payment.method_token,
            # The provider sees the same key for the same payment: its own retry guard.
            idempotency_key=f"payment-{payment.organization_id}-{payment.idempotency_key}",
            description=f"{credits_text(payment.credits, exact=True)} for {org.name}",
            return_url=return_url,
            cancel_url=cancel_url,
            metadata={"payment_id": str(payment.pk), "organization": org.slug},
        )
    except ProviderError:
        logger.warning("billing.payment.provider_error", extra={"payment": payment.pk})
        result = ChargeResult(ChargeStatus.FAILED, message=UNREACHABLE)
    return _settle(payment, result, at=at)


@transaction.atomic
def payment_settle_from_provider(
    *,
    provider: str,
    provider_reference: str,
    status: ChargeStatus,
    amount_minor: int | None = None,
    currency: str = "",
    charge_id: str = "",
    message: str = "",
) -> Payment | None:
    """Settle a pending payment from the provider's (verified) webhook; replays do nothing."""
    payment = (
        Payment.objects.select_for_update()
        .select_related("organization")
        .filter(provider=provider, provider_reference=provider_reference)
        .first()
    )
    if payment is None:
        logger.warning("billing.payment.unknown_reference", extra={"reference": provider_reference})
        return None
    if payment.status not in {PaymentStatus.PENDING, PaymentStatus.REQUIRES_CONFIRMATION}:
        return payment
    if status == ChargeStatus.SUCCEEDED and (
        amount_minor != payment.amount_minor or currency.upper() != payment.currency
    ):
        logger.warning("billing.payment.amount_mismatch", extra={"payment": payment.pk})
        status, message = ChargeStatus.FAILED, "The amount paid does not match the order."
    return _settle(
        payment,
        ChargeResult(status, provider_reference, message, charge_id=charge_id),
        at=None,
    )


@transaction.atomic
def payment_refund(*, payment_id: int, actor: User | None, reason: str = "") -> Payment:
    """Refund a succeeded payment: a refund entry takes its credits back, the provider
    returns the money. Refused whole (LedgerError) if the balance cannot give them back."""
    payment = Payment.objects.select_for_update().select_related("organization").get(pk=payment_id)
    if payment.status == PaymentStatus.REFUNDED:
        return payment
    if payment.status != PaymentStatus.SUCCEEDED:
        raise PaymentError("Only a succeeded payment can be refunded.")
    ledger_post(
        org=payment.organization,
        kind=EntryKind.REFUND,
        amount=-payment.credits,
        reason=reason.strip() or f"Refund of payment {payment.pk}",
        idempotency_key=f"refund:payment:{payment.pk}",
        actor=actor,
        reference=f"payment:{payment.pk}",
    )
    provider_get(payment.provider).refund(
        charge_id=payment.provider_charge_id or payment.provider_reference,
        amount_minor=payment.amount_minor,
        idempotency_key=f"refund-{payment.organization_id}-{payment.idempotency_key}",
    )
    payment.status = PaymentStatus.REFUNDED
    payment.refunded_at = timezone.now()
    payment.save(update_fields=["status", "refunded_at"])
    receipt = receipt_issue(payment=payment, kind=ReceiptKind.REFUND)
    audit_record(
        org=payment.organization,
        actor=actor,
        action=AuditAction.PAYMENT_REFUNDED,
        summary=f"Refunded {dollars_display(payment.amount_minor)} "
        f"({credits_text(payment.credits, exact=True)}) "
        f"of payment {payment.pk}",
        target=f"payment:{payment.pk}",
        data={"amount_minor": payment.amount_minor, "receipt": receipt.display_number},
    )
    return payment


def credits_purchase(
    *,
    org: Organization,
    amount_minor: int,
    method: PaymentMethod,
    idempotency_key: str,
    actor: User | None = None,
    source: str = PaymentSource.MANUAL,
    at: datetime | None = None,
) -> Payment:
    """Buy credits with a saved card in one step (auto-recharge, demo), once per key."""
    with transaction.atomic():
        payment = payment_prepare(
            org=org,
            amount_minor=amount_minor,
            idempotency_key=idempotency_key,
            actor=actor,
            method=method,
            source=source,
            at=at,
        )
        return payment_confirm(org=org, payment_id=payment.pk, at=at)


STRIPE_PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
STRIPE_FAILED_EVENTS = {"checkout.session.expired", "checkout.session.async_payment_failed"}


class StripeEventMalformed(ValueError):
    """A correctly signed event whose body is not shaped like Stripe's (nothing applied)."""


def _stripe_session(event: Any) -> dict:
    """The event's checkout session, its fields' types checked (StripeEventMalformed)."""
    if not isinstance(event, dict) or not isinstance(event.get("type", ""), str):
        raise StripeEventMalformed("the event is not an object with a type")
    data = event.get("data") or {}
    session = data.get("object") if isinstance(data, dict) else None
    session = {} if session is None and not data else session
    if not isinstance(session, dict):
        raise StripeEventMalformed("data.object is not an object")
    amount = session.get("amount_total")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise StripeEventMalformed("amount_total is not a whole number")
    for name in ("id", "currency", "payment_intent", "payment_status"):
        if session.get(name) is not None and not isinstance(session[name], str):
            raise StripeEventMalformed(f"{name} is not a string")
    return session


def stripe_event_apply(*, event: dict) -> Payment | None:
    """Apply a verified Stripe event to its payment (other events are ignored);
    StripeEventMalformed when its body does not have Stripe's shape."""
    session = _stripe_session(event)
    kind = event.get("type", "")
    if kind in STRIPE_PAID_EVENTS and session.get("payment_status") == "paid":
        return payment_settle_from_provider(
            provider="stripe",
            provider_reference=str(session.get("id", "")),
            status=ChargeStatus.SUCCEEDED,
            amount_minor=session.get("amount_total"),
            currency=str(session.get("currency", "")),
            charge_id=str(session.get("payment_intent") or ""),
        )
    if kind in STRIPE_FAILED_EVENTS:
        return payment_settle_from_provider(
            provider="stripe",
            provider_reference=str(session.get("id", "")),
            status=ChargeStatus.FAILED,
            message="The payment was not completed on Stripe. Nothing was charged.",
        )
    return None
