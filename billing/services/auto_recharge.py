"""Saved cards and auto-recharge: "when the balance falls below X, buy Y with this card"."""

import logging
from decimal import Decimal

from django.db import transaction

from accounts.audit import audit_record
from accounts.models import AuditAction, Organization, User
from billing.cards import CardDetails
from billing.models import CreditAccount, Payment, PaymentMethod, PaymentSource
from billing.money import credits_round, credits_text, dollars_display
from billing.providers import PaymentProvider, provider_get
from billing.services.payments import PaymentError, credits_purchase, payment_amount_check

logger = logging.getLogger(__name__)


def _locked_account(org: Organization) -> CreditAccount:
    CreditAccount.objects.get_or_create(organization=org)
    return CreditAccount.objects.select_for_update().get(organization=org)


@transaction.atomic
def payment_method_save(
    *,
    org: Organization,
    card: CardDetails,
    actor: User | None = None,
    provider: PaymentProvider | None = None,
) -> PaymentMethod:
    """Check and save a card for charges made without the customer (CardError if refused)."""
    provider = provider or provider_get()
    if not provider.collects_card_details:
        raise PaymentError("Saved cards need the sandbox provider; Stripe saves none here yet.")
    saved = provider.tokenize(card)
    method = PaymentMethod.objects.create(
        organization=org,
        provider=provider.name,
        token=saved.token,
        brand=saved.brand,
        last4=saved.last4,
        exp_month=saved.exp_month,
        exp_year=saved.exp_year,
    )
    audit_record(
        org=org,
        actor=actor,
        action=AuditAction.PAYMENT_METHOD_SAVED,
        summary=f"Saved card {method}",
        target=f"payment_method:{method.pk}",
    )
    return method


@transaction.atomic
def auto_recharge_set(
    *,
    org: Organization,
    below: Decimal,
    amount_minor: int,
    method: PaymentMethod,
    actor: User | None = None,
) -> CreditAccount:
    """Turn auto-recharge on (or change it): below X credits, buy amount_minor cents."""
    if below < 0:
        raise PaymentError("The threshold cannot be negative.")
    payment_amount_check(amount_minor)
    if method.organization_id != org.pk:
        raise PaymentError("That card belongs to another organization.")
    account = _locked_account(org)
    account.auto_recharge_below = credits_round(below)
    account.auto_recharge_amount_minor = amount_minor
    account.auto_recharge_method = method
    account.save(
        update_fields=["auto_recharge_below", "auto_recharge_amount_minor", "auto_recharge_method"]
    )
    logger.info("billing.auto_recharge.set", extra={"org": org.pk, "below": str(below)})
    audit_record(
        org=org,
        actor=actor,
        action=AuditAction.AUTO_RECHARGE_ENABLED,
        summary=f"Auto-recharge: below {credits_text(account.auto_recharge_below, exact=True)}, "
        f"buy {dollars_display(amount_minor)} with {method}",
        target=f"payment_method:{method.pk}",
        data={"below": str(account.auto_recharge_below), "amount_minor": amount_minor},
    )
    return account


@transaction.atomic
def auto_recharge_disable(*, org: Organization, actor: User | None = None) -> CreditAccount:
    """Turn auto-recharge off (the saved card stays)."""
    account = _locked_account(org)
    was_on = account.auto_recharge_below is not None
    account.auto_recharge_below = None
    account.auto_recharge_amount_minor = None
    account.save(update_fields=["auto_recharge_below", "auto_recharge_amount_minor"])
    if was_on:
        audit_record(
            org=org, actor=actor, action=AuditAction.AUTO_RECHARGE_DISABLED,
            summary="Turned auto-recharge off",
        )  # fmt: skip
    return account


def auto_recharge_fire(*, org_id: int, trigger_entry_id: int) -> Payment | None:
    """Buy the configured amount for the debit that crossed the threshold, once per debit.

    Does nothing if auto-recharge was turned off meanwhile or the balance is back above
    the threshold (someone added credit before the task ran).
    """
    account = (
        CreditAccount.objects.select_related("organization", "auto_recharge_method")
        .filter(organization_id=org_id)
        .first()
    )
    if account is None or account.auto_recharge_below is None:
        return None
    method = account.auto_recharge_method
    if method is None or account.auto_recharge_amount_minor is None:
        return None
    already = Payment.objects.filter(
        organization_id=org_id, idempotency_key=f"auto-recharge:{trigger_entry_id}"
    ).first()
    if already is None and account.balance >= account.auto_recharge_below:
        return None
    payment = credits_purchase(
        org=account.organization,
        amount_minor=account.auto_recharge_amount_minor,
        method=method,
        idempotency_key=f"auto-recharge:{trigger_entry_id}",
        source=PaymentSource.AUTO_RECHARGE,
    )
    logger.info(
        "billing.auto_recharge.fired",
        extra={"org": org_id, "payment": payment.pk, "status": payment.status},
    )
    return payment
