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
from billing.money import credits_round, credits_text
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


def _checked_amount(*, kind: str, amount: Decimal, reason: str, key: str) -> Decimal:
    """The amount rounded to the ledger's scale; LedgerError for a post never valid."""
    if kind not in EntryKind.values:
        raise LedgerError(f"unknown entry kind {kind!r}")
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise LedgerError("amount must be a finite Decimal")
    amount = credits_round(amount)
    if amount == 0:
        raise LedgerError("amount must not be zero")
    if not key or len(key) > 200:
        raise LedgerError("idempotency_key must be 1 to 200 characters")
    if not reason.strip():
        raise LedgerError("a reason is required")
    return amount


def _replayed(*, org: Organization, kind: str, amount: Decimal, key: str) -> LedgerEntry | None:
    """The entry already posted with this key (None if none); IdempotencyConflict when it
    was another amount or kind."""
    existing = LedgerEntry.objects.filter(organization=org, idempotency_key=key).first()
    if existing is not None and (existing.amount != amount or existing.kind != kind):
        raise IdempotencyConflict(f"key {key!r} was used for {existing.kind} {existing.amount}")
    return existing


def _announce_threshold_crossing(
    account: CreditAccount, entry: LedgerEntry, new_balance: Decimal
) -> None:
    """After commit, announce a debit that took the balance from at-or-above the
    auto-recharge threshold to below it (once per crossing)."""
    threshold = account.auto_recharge_below
    if entry.amount < 0 and threshold is not None and account.balance >= threshold > new_balance:
        transaction.on_commit(
            partial(
                auto_recharge_due.send,
                sender=auto_recharge_due,
                organization_id=entry.organization_id,
                entry_id=entry.pk,
            )
        )


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
    `model_name` names the price-list model a usage debit charged (usage debits by model);
    `at` backdates the entry (demo data and imports; default now). A debit that takes
    the balance across the auto-recharge threshold enqueues one recharge after commit.
    """
    amount = _checked_amount(kind=kind, amount=amount, reason=reason, key=idempotency_key)
    account = _locked_account(org)
    replayed = _replayed(org=org, kind=kind, amount=amount, key=idempotency_key)
    if replayed is not None:
        return Posted(entry=replayed, created=False)

    new_balance = account.balance + amount
    if amount < 0 and new_balance < 0 and not org.may_overdraw:
        raise InsufficientCredits(
            f"balance {credits_text(account.balance, exact=True)} does not cover "
            f"{credits_text(-amount, exact=True)}"
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
    _announce_threshold_crossing(account, entry, new_balance)
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
                summary=f"Adjusted credits by "
                f"{credits_text(posted.entry.amount, signed=True, exact=True)}: "
                f"{reason.strip()}",
                target=f"ledger_entry:{posted.entry.pk}",
                data={"amount": str(posted.entry.amount)},
            )
    return posted
