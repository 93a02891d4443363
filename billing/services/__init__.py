"""Writes for billing. `ledger_post` is the only code that writes the ledger.

The services live in modules by subject; this package re-exports them so callers
import from `billing.services` alone.
"""

from billing.services.auto_recharge import (
    auto_recharge_disable,
    auto_recharge_fire,
    auto_recharge_set,
    payment_method_save,
)
from billing.services.documents import (
    BillingDetailsFields,
    billing_details_update,
    receipt_issue,
)
from billing.services.ledger import (
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
    Posted,
    ledger_adjust,
    ledger_post,
    organization_grant_starting_credits,
)
from billing.services.payments import (
    PaymentError,
    StripeEventMalformed,
    credits_purchase,
    payment_confirm,
    payment_prepare,
    payment_refund,
    payment_settle_from_provider,
    stripe_event_apply,
)
from billing.services.statements import StatementError, statement_issue, statements_issue_due

__all__ = [
    "BillingDetailsFields",
    "StatementError",
    "billing_details_update",
    "receipt_issue",
    "statement_issue",
    "statements_issue_due",
    "StripeEventMalformed",
    "IdempotencyConflict",
    "InsufficientCredits",
    "LedgerError",
    "PaymentError",
    "Posted",
    "auto_recharge_disable",
    "auto_recharge_fire",
    "auto_recharge_set",
    "credits_purchase",
    "ledger_adjust",
    "ledger_post",
    "organization_grant_starting_credits",
    "payment_confirm",
    "payment_method_save",
    "payment_prepare",
    "payment_refund",
    "payment_settle_from_provider",
    "stripe_event_apply",
]
