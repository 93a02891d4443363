from decimal import Decimal

import pytest

from billing.models import Payment, PaymentSource, PaymentStatus
from billing.services import auto_recharge_set, ledger_post
from billing.tasks import auto_recharge_run
from tests.factories import make_org, make_payment_method

pytestmark = pytest.mark.django_db


def test_crossing_enqueues_the_task_on_commit_only(django_capture_on_commit_callbacks):
    org = make_org()
    ledger_post(org=org, kind="grant", amount=Decimal("20"), reason="x", idempotency_key="g")
    method = make_payment_method(org=org)
    auto_recharge_set(org=org, below=Decimal("10"), amount_minor=1000, method=method)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        posted = ledger_post(
            org=org, kind="usage", amount=Decimal("-15"), reason="x", idempotency_key="u"
        )
    assert len(callbacks) == 1
    assert not Payment.objects.exists()  # nothing until the transaction commits
    # The task itself, run twice (a redelivery): one payment.
    first = auto_recharge_run.delay(org.pk, posted.entry.pk).get()
    second = auto_recharge_run.delay(org.pk, posted.entry.pk).get()
    assert first == second
    payment = Payment.objects.get()
    assert (payment.source, payment.status) == (
        PaymentSource.AUTO_RECHARGE,
        PaymentStatus.SUCCEEDED,
    )
