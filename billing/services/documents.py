"""Billing details and receipts. A receipt's number is the organization's next, taken
under the credit account's row lock (the lock every ledger post holds), so concurrent
payments get distinct consecutive numbers; the unique constraint backs it."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditAction, Organization, User
from billing.models import BillingDetails, CreditAccount, Payment, Receipt, ReceiptKind

logger = logging.getLogger(__name__)

BILLING_DETAIL_FIELDS = ("legal_name", "address", "country", "tax_id", "billing_email")


def seller_details() -> dict[str, str]:
    """The platform's own details as a document prints them (settings.BILLING_SELLER)."""
    seller = settings.BILLING_SELLER or {}
    return {key: str(seller.get(key, "")) for key in ("name", "address", "tax_id", "email")}


def buyer_details(*, org: Organization) -> dict[str, str]:
    """The organization's billing details now, as a document copies them."""
    details = BillingDetails.objects.filter(organization=org).first()
    values = {name: getattr(details, name, "") or "" for name in BILLING_DETAIL_FIELDS}
    values["legal_name"] = values["legal_name"] or org.name
    return values


@dataclass(frozen=True)
class BillingDetailsFields:
    legal_name: str = ""
    address: str = ""
    country: str = ""
    tax_id: str = ""
    billing_email: str = ""


@transaction.atomic
def billing_details_update(
    *, org: Organization, fields: BillingDetailsFields, actor: User | None
) -> BillingDetails:
    """Save the billing details; documents issued from now on carry them."""
    details, _ = BillingDetails.objects.select_for_update().get_or_create(organization=org)
    changed = [
        name
        for name in BILLING_DETAIL_FIELDS
        if getattr(details, name) != getattr(fields, name).strip()
    ]
    if not changed:
        return details
    for name in changed:
        setattr(details, name, getattr(fields, name).strip())
    details.updated_at, details.updated_by = timezone.now(), actor
    details.save()
    audit_record(
        org=org,
        actor=actor,
        action=AuditAction.BILLING_DETAILS_UPDATED,
        summary="Changed " + ", ".join(name.replace("_", " ") for name in changed),
        target=f"billing_details:{org.pk}",
        data={"changed": changed},
    )
    return details


def _next_receipt_number(org: Organization) -> int:
    CreditAccount.objects.get_or_create(organization=org)
    list(CreditAccount.objects.select_for_update().filter(organization=org).values("pk"))
    top = Receipt.objects.filter(organization=org).aggregate(top=Max("number"))["top"]
    return (top or 0) + 1


@transaction.atomic
def receipt_issue(
    *, payment: Payment, kind: str = ReceiptKind.PAYMENT, at: datetime | None = None
) -> Receipt:
    """The receipt for a succeeded payment or a refund (issued once; replays return it),
    dated `at` (the payment's time) or now."""
    existing = Receipt.objects.filter(payment=payment, kind=kind).first()
    if existing is not None:
        return existing
    org = payment.organization
    receipt = Receipt.objects.create(
        organization=org,
        number=_next_receipt_number(org),
        kind=kind,
        payment=payment,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        credits=payment.credits,
        card_brand=payment.card_brand,
        card_last4=payment.card_last4,
        seller=seller_details(),
        buyer=buyer_details(org=org),
        issued_at=at or timezone.now(),
    )
    logger.info(
        "billing.receipt.issued",
        extra={"org": org.pk, "receipt": receipt.pk, "number": receipt.number, "kind": kind},
    )
    return receipt
