import pytest

from billing.models import CreditAccount, LedgerEntry, Payment, PaymentMethod, PaymentStatus
from billing.selectors import ledger_sum
from console.demo import demo_seed

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        list(LedgerEntry.objects.order_by("id").values_list("id", "amount", "balance_after")),
        list(Payment.objects.order_by("id").values_list("id", "status", "amount_minor")),
        PaymentMethod.objects.count(),
        list(CreditAccount.objects.values_list("organization_id", "balance")),
    )


def test_demo_adds_payments_and_a_realistic_balance_and_is_idempotent():
    logins = demo_seed()
    org = logins.organization
    payments = Payment.objects.filter(organization=org)
    assert payments.filter(status=PaymentStatus.SUCCEEDED).count() == 5
    assert payments.filter(status=PaymentStatus.DECLINED).count() == 1
    balance = CreditAccount.objects.get(organization=org).balance
    assert balance == ledger_sum(org=org)
    assert balance > 0
    # Every usage debit comes from ingested records, so each one says what it charged.
    debits = LedgerEntry.objects.filter(organization=org, kind="usage")
    assert debits.exists()
    assert not debits.exclude(reference__regex=r"^(usage-batch|job):[0-9]+$").exists()
    # Posted in the order of their times: read by time, each "balance after" follows
    # from the one before, as on a bank statement.
    running = None
    for amount, after in (
        LedgerEntry.objects.filter(organization=org)
        .order_by("created_at", "id")
        .values_list("amount", "balance_after")
    ):
        assert running is None or after == running + amount
        running = after
    assert running == balance
    before = snapshot()
    demo_seed()
    assert snapshot() == before
