"""Billing's API: who is asking (the organization and its tier), the credit balance with
the estimated remaining usage time, and buying credits (get_credits_balance and
add_credits in the reference SDKs)."""

import hashlib
import hmac
import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from ninja import Field, Header, Router, Schema

from accounts.api_core import API_KEY_OR_SESSION, Principal
from accounts.selectors import idempotency_record_get
from accounts.services import idempotency_record_save
from billing.cards import CardDetails, CardError
from billing.models import Payment, PaymentMethod, PaymentStatus
from billing.money import (
    DECIMAL,
    DecimalStr,
    decimal_str,
    minor_units_for_credits,
)
from billing.selectors import credit_balance, finance_overview, payment_methods
from billing.services import PaymentError, payment_confirm, payment_prepare
from core.api import APIError, ErrorOut, bad_parameter, not_found
from core.calendar import org_zone

account = Router(tags=["Account"], auth=API_KEY_OR_SESSION)


class APIRequest(HttpRequest):
    auth: Principal


def _org(request: APIRequest):
    return request.auth.organization


class AccountOut(Schema):
    organization_id: int
    name: str
    slug: str
    tier: str
    time_zone: str
    monthly_token_allocation: int | None
    credential: Literal["api_key", "session_token"]


class RemainingUsageTimeOut(Schema):
    """Total runtime across all workers: 4 days means 1 day for 4 workers in parallel."""

    worker_type: str = Field(description="The default worker type the estimate is based on.")
    hourly_rate: DecimalStr = Field(json_schema_extra=DECIMAL)
    total_hours: int = Field(description="Whole hours, rounded down.")
    days: int
    hours: int


class CreditBalanceOut(Schema):
    organization_id: int
    credits: DecimalStr = Field(description="Available credits.", json_schema_extra=DECIMAL)
    estimated_remaining_usage_time: RemainingUsageTimeOut | None = Field(
        description="Null when no default worker type is priced."
    )
    last_payment_at: datetime | None = Field(description="The last successful payment.")
    last_payment_date: date | None = Field(description="Its date in the organization's zone.")


class CardIn(Schema):
    number: str = Field(description="Sandbox test cards: 4242 4242 4242 4242 succeeds.")
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2200)
    cvc: str = Field(min_length=3, max_length=4)


class AddCreditsIn(Schema):
    credits: Decimal = Field(
        gt=0,
        le=1_000_000,
        description="Credits to buy (one credit is one US dollar unless configured otherwise).",
    )
    payment_method_id: int | None = Field(
        None,
        description="A saved card of the organization (default: the auto-recharge card, "
        "else the newest saved card).",
    )
    card: CardIn | None = Field(None, description="A card to charge once instead of a saved one.")


class PaymentOut(Schema):
    payment_id: int
    status: Literal[
        "succeeded", "pending", "declined", "failed", "requires_confirmation", "refunded"
    ]
    amount: DecimalStr = Field(description="Charged, in the currency.", json_schema_extra=DECIMAL)
    currency: str
    credits: DecimalStr = Field(description="Credits bought.", json_schema_extra=DECIMAL)
    credit_balance: DecimalStr = Field(description="Balance after.", json_schema_extra=DECIMAL)
    message: str = Field(description="Why it was declined or failed; empty on success.")
    checkout_url: str | None = Field(
        description="Where to pay when the provider uses a hosted checkout (status pending)."
    )


@account.get("", response=AccountOut, summary="Who is asking: the organization and credential")
def account_detail(request: APIRequest):
    org = _org(request)
    return {
        "organization_id": org.pk,
        "name": org.name,
        "slug": org.slug,
        "tier": org.tier,
        "time_zone": org.time_zone,
        "monthly_token_allocation": org.monthly_token_allocation,
        "credential": request.auth.kind,
    }


@account.get(
    "/credits",
    response=CreditBalanceOut,
    url_name="credits_balance",
    summary="Credit balance, estimated remaining usage time and last payment date",
)
def credits_balance(request: APIRequest):
    """What the main page's balance card shows (get_credits_balance)."""
    org = _org(request)
    overview = finance_overview(org=org)
    remaining = overview.remaining_usage_time
    last = overview.last_payment_at
    return {
        "organization_id": org.pk,
        "credits": decimal_str(overview.credit_balance),
        "estimated_remaining_usage_time": None
        if remaining is None
        else {
            "worker_type": remaining.worker_type,
            "hourly_rate": decimal_str(remaining.hourly_rate),
            "total_hours": remaining.total_hours,
            "days": remaining.days,
            "hours": remaining.hours,
        },
        "last_payment_at": last,
        "last_payment_date": last.astimezone(org_zone(org)).date() if last else None,
    }


def _body_fingerprint(payload: AddCreditsIn) -> str:
    """A keyed hash of the request's meaning (the body may hold card details)."""
    canonical = payload.model_dump(mode="json")
    canonical["credits"] = decimal_str(payload.credits)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hmac.new(settings.SECRET_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def _replay(status: int, body: dict) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Idempotent-Replayed"] = "true"
    return response


def _amount_minor(credits: Decimal) -> int:
    try:
        return minor_units_for_credits(credits)
    except ValueError as exc:
        raise bad_parameter("credits", str(exc)) from None


def _payment_method(org, payment_method_id: int | None) -> PaymentMethod | None:
    methods = payment_methods(org=org)
    if payment_method_id is not None:
        method = methods.filter(pk=payment_method_id).first()
        if method is None:
            raise not_found(f"no payment method {payment_method_id}")
        return method
    account_row = getattr(org, "credit_account", None)
    preferred = getattr(account_row, "auto_recharge_method", None)
    return preferred or methods.first()


@account.post(
    "/credits",
    response={
        201: PaymentOut,
        202: PaymentOut,
        402: PaymentOut,
        403: ErrorOut,
        404: ErrorOut,
        422: ErrorOut,
    },
    url_name="add_credits",
    summary="Add credits (buy them with a card)",
)
def add_credits(
    request: APIRequest,
    payload: AddCreditsIn,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        max_length=150,
        description=(
            "Send the same key to retry safely: the same key with the same body replays "
            "the first answer (header Idempotent-Replayed: true); with another body it is "
            "a 422. Keys are kept per organization."
        ),
    ),
):
    """Charge the organization's saved card (or the card sent) through the payment
    service, once per Idempotency-Key: 201 succeeded, 202 pending at a hosted checkout,
    402 declined or failed. Needs an owner's, admin's or billing member's session token."""
    principal = request.auth
    org = principal.organization
    if not principal.can_pay:
        raise APIError(
            403,
            "forbidden",
            "adding credits needs the session token of an owner, admin or billing member of "
            "the organization",
        )
    fingerprint = _body_fingerprint(payload)
    key = _idempotency_key(idempotency_key)
    kept = _answer_kept(org, key, fingerprint)
    if kept is not None:
        return kept
    payment = _buy(principal, payload, key)
    status = {PaymentStatus.SUCCEEDED: 201, PaymentStatus.PENDING: 202}.get(payment.status, 402)
    answer = _payment_answer(org, payment)
    if key is not None:
        kept_now = idempotency_record_save(
            org=org,
            endpoint="add_credits",
            key=key,
            request_hash=fingerprint,
            status_code=status,
            response_body=answer,
        )
        if kept_now.response_body != answer:  # a concurrent request with this key was first
            return _replay(kept_now.status_code, kept_now.response_body)
    return JsonResponse(answer, status=status)


def _idempotency_key(header: str | None) -> str | None:
    if header is None:
        return None
    key = header.strip()
    if not key or not key.isprintable():
        raise bad_parameter("Idempotency-Key", "must be 1 to 150 printable characters")
    return key


def _answer_kept(org, key: str | None, fingerprint: str) -> JsonResponse | None:
    """The first answer to this Idempotency-Key, replayed; 422 when the body differs."""
    if key is None:
        return None
    kept = idempotency_record_get(org=org, endpoint="add_credits", key=key)
    if kept is None:
        return None
    if kept.request_hash != fingerprint:
        raise APIError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different body",
            field="Idempotency-Key",
        )
    return _replay(kept.status_code, kept.response_body)


def _card_or_method(org, payload: AddCreditsIn) -> tuple[CardDetails | None, PaymentMethod | None]:
    """The card sent, or else the saved card to charge (400 when there is none)."""
    if payload.card is not None:
        c = payload.card
        card = CardDetails(number=c.number.replace(" ", ""), exp_month=c.exp_month,
                           exp_year=c.exp_year, cvc=c.cvc)  # fmt: skip
        return card, None
    method = _payment_method(org, payload.payment_method_id)
    if method is None:
        raise APIError(
            400,
            "no_payment_method",
            "no saved card: send card details, or save a card in Finance",
            field="card",
        )
    return None, method


def _buy(principal: Principal, payload: AddCreditsIn, key: str | None) -> Payment:
    """Charge the card through the payment service; its refusals as 400s naming the field."""
    org = principal.organization
    amount_minor = _amount_minor(payload.credits)
    card, method = _card_or_method(org, payload)
    try:
        payment = payment_prepare(
            org=org,
            amount_minor=amount_minor,
            idempotency_key=f"api:{key or uuid.uuid4().hex}",
            actor=principal.membership.user if principal.membership else None,
            card=card,
            method=method,
        )
        return payment_confirm(org=org, payment_id=payment.pk)
    except CardError as exc:
        raise APIError(
            400, "card_error", exc.message, field=f"card.{exc.field}" if exc.field else "card"
        ) from None
    except PaymentError as exc:
        raise APIError(400, "payment_error", str(exc), field="credits") from None


def _payment_answer(org, payment: Payment) -> dict:
    return {
        "payment_id": payment.pk,
        "status": payment.status,
        "amount": decimal_str(payment.amount),
        "currency": payment.currency,
        "credits": decimal_str(payment.credits),
        "credit_balance": decimal_str(credit_balance(org=org)),
        "message": payment.failure_message,
        "checkout_url": payment.redirect_url or None,
    }
