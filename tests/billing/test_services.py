from decimal import Decimal

import pytest

from accounts.models import Tier
from billing.cards import CardDetails, CardError
from billing.models import CreditAccount, LedgerEntry, Payment, PaymentSource, PaymentStatus
from billing.providers import ChargeStatus
from billing.services import (
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
    PaymentError,
    auto_recharge_disable,
    auto_recharge_fire,
    auto_recharge_set,
    ledger_adjust,
    ledger_post,
    payment_confirm,
    payment_prepare,
    payment_refund,
    payment_settle_from_provider,
)
from tests.factories import make_org, make_payment, make_payment_method, make_user

pytestmark = pytest.mark.django_db

D = Decimal


def balance_of(org) -> Decimal:
    return CreditAccount.objects.get(organization=org).balance


def ledger_total(org) -> Decimal:
    return sum((e.amount for e in LedgerEntry.objects.filter(organization=org)), D("0"))


def card(number="4242424242424242") -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=2099, cvc="123")


# ------------------------------------------------------------------------ ledger


def test_posts_move_the_cached_balance_and_record_balance_after():
    org = make_org()
    ledger_post(org=org, kind="grant", amount=D("10"), reason="start", idempotency_key="a")
    posted = ledger_post(
        org=org, kind="usage", amount=D("-2.5"), reason="jobs", idempotency_key="b"
    )
    assert posted.created
    assert posted.entry.balance_after == D("7.5")
    assert balance_of(org) == D("7.5") == ledger_total(org)


def test_replaying_a_key_returns_the_first_entry_and_posts_nothing():
    org = make_org()
    first = ledger_post(org=org, kind="grant", amount=D("5"), reason="x", idempotency_key="k")
    again = ledger_post(org=org, kind="grant", amount=D("5"), reason="x", idempotency_key="k")
    assert not again.created
    assert again.entry.pk == first.entry.pk
    assert LedgerEntry.objects.filter(organization=org).count() == 1
    assert balance_of(org) == D("5")


@pytest.mark.parametrize(("kind", "amount"), [("grant", "6"), ("adjustment", "5")])
def test_the_same_key_with_another_amount_or_kind_is_an_error(kind, amount):
    org = make_org()
    ledger_post(org=org, kind="grant", amount=D("5"), reason="x", idempotency_key="k")
    with pytest.raises(IdempotencyConflict):
        ledger_post(org=org, kind=kind, amount=D(amount), reason="x", idempotency_key="k")
    assert balance_of(org) == D("5")


def test_keys_are_per_organization():
    one, two = make_org(), make_org()
    ledger_post(org=one, kind="grant", amount=D("5"), reason="x", idempotency_key="k")
    posted = ledger_post(org=two, kind="grant", amount=D("7"), reason="x", idempotency_key="k")
    assert posted.created
    assert (balance_of(one), balance_of(two)) == (D("5"), D("7"))


def test_an_org_that_may_not_overdraw_refuses_the_whole_debit():
    org = make_org(tier=Tier.STARTUP, allow_overdraft=False)
    ledger_post(org=org, kind="grant", amount=D("3"), reason="x", idempotency_key="g")
    with pytest.raises(InsufficientCredits, match="does not cover"):
        ledger_post(org=org, kind="usage", amount=D("-3.01"), reason="x", idempotency_key="u")
    assert balance_of(org) == D("3")
    assert LedgerEntry.objects.filter(organization=org).count() == 1
    # Exactly down to zero is allowed.
    ledger_post(org=org, kind="usage", amount=D("-3"), reason="x", idempotency_key="u2")
    assert balance_of(org) == D("0")


def test_the_free_tier_never_overdraws_even_if_the_flag_is_set():
    org = make_org(tier=Tier.FREE, allow_overdraft=True)
    with pytest.raises(InsufficientCredits):
        ledger_post(org=org, kind="usage", amount=D("-1"), reason="x", idempotency_key="u")


def test_an_org_allowed_to_overdraw_goes_below_zero():
    org = make_org(tier=Tier.ENTERPRISE, allow_overdraft=True)
    ledger_post(org=org, kind="usage", amount=D("-4.25"), reason="x", idempotency_key="u")
    assert balance_of(org) == D("-4.25") == ledger_total(org)


@pytest.mark.parametrize(
    ("kind", "amount"),
    [("purchase", "-1"), ("grant", "-1"), ("usage", "1"), ("bogus", "1"), ("grant", "0")],
)
def test_amounts_must_match_their_kind(kind, amount):
    org = make_org(tier=Tier.ENTERPRISE, allow_overdraft=True)
    with pytest.raises(LedgerError):
        ledger_post(org=org, kind=kind, amount=D(amount), reason="x", idempotency_key="k")
    assert not LedgerEntry.objects.filter(organization=org).exists()


def test_amounts_are_rounded_to_the_ledger_scale_once():
    org = make_org()
    posted = ledger_post(
        org=org, kind="grant", amount=D("0.000000000051"), reason="x", idempotency_key="k"
    )
    # 5.1e-11 rounds half-even to 1e-10 at ten places.
    assert posted.entry.amount == D("0.0000000001")


def test_an_adjustment_needs_a_reason_and_records_the_operator():
    org, operator = make_org(), make_user(is_staff=True)
    with pytest.raises(LedgerError):
        ledger_adjust(org=org, amount=D("5"), reason="  ", actor=operator, idempotency_key="a")
    posted = ledger_adjust(
        org=org, amount=D("5"), reason="Goodwill for outage", actor=operator, idempotency_key="a"
    )
    assert posted.entry.kind == "adjustment"
    assert posted.entry.actor == operator
    assert posted.entry.reason == "Goodwill for outage"


# ---------------------------------------------------------------------- payments


@pytest.mark.parametrize(
    ("number", "status", "message"),
    [
        ("4242424242424242", PaymentStatus.SUCCEEDED, ""),
        ("5555555555554444", PaymentStatus.SUCCEEDED, ""),
        ("4000000000000002", PaymentStatus.DECLINED, "declined"),
        ("4000000000009995", PaymentStatus.DECLINED, "insufficient funds"),
        ("4000000000000119", PaymentStatus.FAILED, "error occurred while processing"),
    ],
)
def test_each_sandbox_card_outcome(number, status, message):
    org = make_org()
    payment = make_payment(org=org, amount_minor=2500, number=number)
    assert payment.status == status
    assert message in payment.failure_message
    if status == PaymentStatus.SUCCEEDED:
        assert balance_of(org) == D("25")
        entry = LedgerEntry.objects.get(organization=org)
        assert (entry.kind, entry.amount, entry.reference) == (
            "purchase",
            D("25"),
            f"payment:{payment.pk}",
        )
        assert payment.completed_at is not None
    else:
        assert not LedgerEntry.objects.filter(organization=org).exists()


def test_prepare_refuses_a_non_test_card_and_amounts_out_of_bounds():
    org = make_org()
    with pytest.raises(CardError):
        payment_prepare(
            org=org, amount_minor=2500, idempotency_key="k", card=card("4012888888881881")
        )
    for amount_minor in (499, 1_000_001):
        with pytest.raises(PaymentError):
            payment_prepare(org=org, amount_minor=amount_minor, idempotency_key="k", card=card())
    assert not Payment.objects.exists()


def test_confirming_twice_charges_once():
    org = make_org()
    payment = payment_prepare(org=org, amount_minor=5000, idempotency_key="k", card=card())
    payment_confirm(org=org, payment_id=payment.pk)
    again = payment_confirm(org=org, payment_id=payment.pk)
    assert again.status == PaymentStatus.SUCCEEDED
    assert LedgerEntry.objects.filter(organization=org).count() == 1
    assert balance_of(org) == D("50")


def test_preparing_with_the_same_key_finds_the_same_payment():
    org = make_org()
    first = payment_prepare(org=org, amount_minor=5000, idempotency_key="k", card=card())
    second = payment_prepare(
        org=org, amount_minor=5000, idempotency_key="k", card=card("5555555555554444")
    )
    assert first.pk == second.pk
    assert second.card_last4 == "4444"  # the card may change before confirmation
    with pytest.raises(PaymentError):
        payment_prepare(org=org, amount_minor=6000, idempotency_key="k", card=card())


def test_another_orgs_payment_cannot_be_confirmed():
    org, other = make_org(), make_org()
    payment = payment_prepare(org=org, amount_minor=5000, idempotency_key="k", card=card())
    with pytest.raises(Payment.DoesNotExist):
        payment_confirm(org=other, payment_id=payment.pk)


def test_refund_takes_the_credits_back_once():
    org, operator = make_org(), make_user(is_staff=True)
    payment = make_payment(org=org, amount_minor=2000)
    payment_refund(payment_id=payment.pk, actor=operator, reason="customer asked")
    payment_refund(payment_id=payment.pk, actor=operator)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    refund = LedgerEntry.objects.get(organization=org, kind="refund")
    assert refund.amount == D("-20")
    assert balance_of(org) == D("0")


def test_refund_is_refused_whole_when_the_credits_are_spent():
    org = make_org(tier=Tier.STARTUP, allow_overdraft=False)
    payment = make_payment(org=org, amount_minor=2000)
    ledger_post(org=org, kind="usage", amount=D("-15"), reason="x", idempotency_key="u")
    with pytest.raises(InsufficientCredits):
        payment_refund(payment_id=payment.pk, actor=None)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert balance_of(org) == D("5")


def test_a_declined_payment_cannot_be_refunded():
    org = make_org()
    payment = make_payment(org=org, number="4000000000000002")
    with pytest.raises(PaymentError):
        payment_refund(payment_id=payment.pk, actor=None)


def test_provider_settlement_checks_the_amount_and_ignores_replays():
    org = make_org()
    pending = Payment.objects.create(
        organization=org,
        amount_minor=3000,
        credits=D("30"),
        status=PaymentStatus.PENDING,
        provider="stripe",
        provider_reference="cs_1",
        idempotency_key="k1",
    )
    wrong = Payment.objects.create(
        organization=org,
        amount_minor=3000,
        credits=D("30"),
        status=PaymentStatus.PENDING,
        provider="stripe",
        provider_reference="cs_2",
        idempotency_key="k2",
    )
    for _ in range(2):
        payment_settle_from_provider(
            provider="stripe",
            provider_reference="cs_1",
            status=ChargeStatus.SUCCEEDED,
            amount_minor=3000,
            currency="usd",
        )
    payment_settle_from_provider(
        provider="stripe",
        provider_reference="cs_2",
        status=ChargeStatus.SUCCEEDED,
        amount_minor=100,
        currency="usd",
    )
    pending.refresh_from_db()
    wrong.refresh_from_db()
    assert pending.status == PaymentStatus.SUCCEEDED
    assert wrong.status == PaymentStatus.FAILED
    assert balance_of(org) == D("30")
    assert LedgerEntry.objects.filter(organization=org).count() == 1


# ------------------------------------------------------------------ auto-recharge


def _auto_recharge_org(*, balance="30", below="10", amount_minor=2000, number=None):
    org = make_org()
    ledger_post(org=org, kind="grant", amount=D(balance), reason="x", idempotency_key="g")
    method = make_payment_method(org=org, **({"number": number} if number else {}))
    auto_recharge_set(org=org, below=D(below), amount_minor=amount_minor, method=method)
    return org


def test_auto_recharge_fires_once_per_crossing(django_capture_on_commit_callbacks):
    org = _auto_recharge_org(balance="30", below="10", amount_minor=2000)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ledger_post(org=org, kind="usage", amount=D("-15"), reason="x", idempotency_key="u1")
    assert callbacks == []  # 30 -> 15: still above 10
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ledger_post(org=org, kind="usage", amount=D("-8"), reason="x", idempotency_key="u2")
    assert len(callbacks) == 1  # 15 -> 7 crosses below 10: one recharge of $20
    assert balance_of(org) == D("27")  # 7 + 20
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ledger_post(org=org, kind="usage", amount=D("-1"), reason="x", idempotency_key="u3")
    assert callbacks == []  # 27 -> 26: no crossing
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ledger_post(org=org, kind="usage", amount=D("-20"), reason="x", idempotency_key="u4")
    assert len(callbacks) == 1  # 26 -> 6 is a second crossing: a second recharge
    assert balance_of(org) == D("26")
    payments = Payment.objects.filter(organization=org, source=PaymentSource.AUTO_RECHARGE)
    assert payments.count() == 2
    assert set(payments.values_list("status", flat=True)) == {PaymentStatus.SUCCEEDED}


def test_debits_while_already_below_do_not_fire_again(django_capture_on_commit_callbacks):
    org = _auto_recharge_org(balance="30", below="10", number="4000000000000002")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ledger_post(org=org, kind="usage", amount=D("-25"), reason="x", idempotency_key="u1")
        ledger_post(org=org, kind="usage", amount=D("-1"), reason="x", idempotency_key="u2")
        ledger_post(org=org, kind="usage", amount=D("-1"), reason="x", idempotency_key="u3")
    assert len(callbacks) == 1
    declined = Payment.objects.get(organization=org)
    assert declined.status == PaymentStatus.DECLINED  # shows in history; no credits
    assert balance_of(org) == D("3")


def test_the_recharge_task_is_safe_to_run_twice():
    org = _auto_recharge_org(balance="30", below="10")
    posted = ledger_post(org=org, kind="usage", amount=D("-25"), reason="x", idempotency_key="u")
    first = auto_recharge_fire(org_id=org.pk, trigger_entry_id=posted.entry.pk)
    second = auto_recharge_fire(org_id=org.pk, trigger_entry_id=posted.entry.pk)
    assert first.pk == second.pk
    assert balance_of(org) == D("25")  # 5 + 20, once


def test_no_recharge_when_turned_off_or_already_topped_up():
    org = _auto_recharge_org(balance="30", below="10")
    posted = ledger_post(org=org, kind="usage", amount=D("-25"), reason="x", idempotency_key="u")
    ledger_post(org=org, kind="grant", amount=D("50"), reason="x", idempotency_key="g2")
    assert auto_recharge_fire(org_id=org.pk, trigger_entry_id=posted.entry.pk) is None
    auto_recharge_disable(org=org)
    posted = ledger_post(org=org, kind="usage", amount=D("-50"), reason="x", idempotency_key="u2")
    assert auto_recharge_fire(org_id=org.pk, trigger_entry_id=posted.entry.pk) is None
    assert not Payment.objects.filter(organization=org).exists()


def test_auto_recharge_refuses_another_orgs_card_and_bad_amounts():
    org, other = make_org(), make_org()
    method = make_payment_method(org=other)
    with pytest.raises(PaymentError):
        auto_recharge_set(org=org, below=D("5"), amount_minor=2000, method=method)
    own = make_payment_method(org=org)
    with pytest.raises(PaymentError):
        auto_recharge_set(org=org, below=D("5"), amount_minor=100, method=own)
    with pytest.raises(PaymentError):
        auto_recharge_set(org=org, below=D("-1"), amount_minor=2000, method=own)
