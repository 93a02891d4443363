"""The credit ledger. ledger_post is the only code that writes it."""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditAction, Organization, User
from billing.models import CreditAccount, EntryKind, LedgerEntry
from billing.money import credits_round
from billing.signals import auto_recharge_due

logger = logging.getLogger(__name__)


class LedgerError(Exception):
    """A post the ledger refuses; nothing was written."""


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used for a different entry."""


class InsufficientCredits(LedgerError):
    """The debit would take an organization that may not overdraw below zero."""


@dataclass(frozen=True)
class Posted:
    entry: LedgerEntry
    created: bool  # False when the key was replayed and the first entry returned


def _locked_account(org: Organization) -> CreditAccount:
    # get_or_create first so the row exists to lock; the lock serializes posts per org.
    CreditAccount.objects.get_or_create(organization=org)
    return CreditAccount.objects.select_for_update().get(organization=org)


@transaction.atomic
def ledger_post(
    *,
    org: Organization,
    kind: str,
    amount: Decimal,
    reason: str,
    idempotency_key: str,
    actor: User | None = None,
    reference: str = "",
    model_name: str = "",
    at: datetime | None = None,
) -> Posted:
    """Post one entry and move the cached balance with it, once per idempotency key.

    Replaying a key returns the first entry; the same key with another amount or kind
    raises IdempotencyConflict. A debit that would take an organization that may not
    overdraw below zero raises InsufficientCredits. Either way nothing is written.
    `model_name` names the price-list model a usage debit charged (spend by model);
    `at` backdates the entry (demo data and imports; default now). A debit that takes
    the balance across the auto-recharge threshold enqueues one recharge after commit.
    """
    if kind not in EntryKind.values:
        raise LedgerError(f"unknown entry kind {kind!r}")
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise LedgerError("amount must be a finite Decimal")
    amount = credits_round(amount)
    if amount == 0:
        raise LedgerError("amount must not be zero")
    if not idempotency_key or len(idempotency_key) > 200:
        raise LedgerError("idempotency_key must be 1 to 200 characters")
    if not reason.strip():
        raise LedgerError("a reason is required")

    account = _locked_account(org)
    existing = LedgerEntry.objects.filter(organization=org, idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.amount != amount or existing.kind != kind:
            raise IdempotencyConflict(
                f"key {idempotency_key!r} was used for {existing.kind} {existing.amount}"
            )
        return Posted(entry=existing, created=False)

    new_balance = account.balance + amount
    if amount < 0 and new_balance < 0 and not org.may_overdraw:
        raise InsufficientCredits(
            f"balance {account.balance.normalize():f} does not cover {(-amount).normalize():f}"
        )
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                organization=org,
                kind=kind,
                amount=amount,
                balance_after=new_balance,
                reason=reason[:500],
                actor=actor,
                idempotency_key=idempotency_key,
                reference=reference,
                model_name=model_name,
                created_at=at or timezone.now(),
            )
    except IntegrityError as exc:  # a constraint (sign, key) the checks above did not see
        raise LedgerError(str(exc)) from exc
    CreditAccount.objects.filter(organization=org).update(
        balance=new_balance, updated_at=timezone.now()
    )
    threshold = account.auto_recharge_below
    if amount < 0 and threshold is not None and account.balance >= threshold > new_balance:
        # Once per crossing: only the debit that goes from at-or-above to below fires.
        transaction.on_commit(
            partial(
                auto_recharge_due.send,
                sender=auto_recharge_due,
                organization_id=org.pk,
                entry_id=entry.pk,
            )
        )
    logger.info(
        "billing.ledger.posted",
        extra={"org": org.pk, "kind": kind, "amount": str(amount), "entry": entry.pk},
    )
    return Posted(entry=entry, created=True)


def organization_grant_starting_credits(
    *, org: Organization, amount: Decimal, actor: User | None = None
) -> Posted | None:
    """Grant a new organization its starting credits (nothing when amount is zero)."""
    if not amount:
        return None
    return ledger_post(
        org=org,
        kind=EntryKind.GRANT,
        amount=amount,
        reason="Starting credits",
        idempotency_key="starting-credits",
        actor=actor,
    )


def ledger_adjust(
    *, org: Organization, amount: Decimal, reason: str, actor: User, idempotency_key: str
) -> Posted:
    """An operator's adjustment (either sign); the reason is required and recorded."""
    if not (reason or "").strip():
        raise LedgerError("an adjustment needs a reason")
    with transaction.atomic():
        posted = ledger_post(
            org=org,
            kind=EntryKind.ADJUSTMENT,
            amount=amount,
            reason=reason.strip(),
            idempotency_key=idempotency_key,
            actor=actor,
        )
        if posted.created:
            audit_record(
                org=org,
                actor=actor,
                action=AuditAction.CREDITS_ADJUSTED,
                summary=f"Adjusted credits by {posted.entry.amount.normalize():+f}: "
                f"{reason.strip()}",
                target=f"ledger_entry:{posted.entry.pk}",
                data={"amount": str(posted.entry.amount)},
            )
    return posted
