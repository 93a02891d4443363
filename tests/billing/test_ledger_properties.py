"""Property test: for any sequence of posts and replays the ledger stays exact."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Tier
from billing.models import CreditAccount, LedgerEntry
from billing.services import IdempotencyConflict, InsufficientCredits, ledger_post
from tests.factories import make_org

pytestmark = pytest.mark.django_db

amounts = st.decimals(
    min_value=Decimal("-50"), max_value=Decimal("50"), places=4, allow_nan=False
).filter(lambda d: d != 0)
operations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=14), amounts), min_size=1, max_size=40
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, may_overdraw=st.booleans())
def test_balance_is_the_ledger_sum_and_no_overdraft_org_goes_below_zero(ops, may_overdraw):
    org = make_org(tier=Tier.ENTERPRISE, allow_overdraft=may_overdraw)
    # A reference model kept by hand: the first amount posted under each key.
    posted: dict[str, Decimal] = {}
    balance = Decimal("0")
    for key_no, amount in ops:
        key = f"k{key_no}"
        kind = "grant" if amount > 0 else "usage"
        try:
            result = ledger_post(
                org=org, kind=kind, amount=amount, reason="prop", idempotency_key=key
            )
        except IdempotencyConflict:
            assert key in posted and posted[key] != amount
        except InsufficientCredits:
            assert not may_overdraw and balance + amount < 0 and key not in posted
        else:
            if key in posted:
                assert not result.created and posted[key] == amount
            else:
                assert result.created
                posted[key] = amount
                balance += amount
        account = CreditAccount.objects.filter(organization=org).first()
        cached = account.balance if account else Decimal("0")  # no row before a first post
        entries = list(
            LedgerEntry.objects.filter(organization=org).values_list("amount", flat=True)
        )
        assert cached == sum(entries, Decimal("0")) == balance
        assert len(entries) == len(posted)
        if not may_overdraw:
            assert cached >= 0
