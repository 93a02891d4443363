"""On PostgreSQL: 20 threads posting at one organization lose no update and post no
duplicate, whatever the interleaving."""

import contextlib
import random
import threading
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import Tier
from billing.models import CreditAccount, LedgerEntry
from billing.services import InsufficientCredits, ledger_post
from tests.factories import make_org

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20
POSTS_PER_THREAD = 200
SHARED_KEYS = 50  # keys every thread may replay: each must post exactly once


def shared_amount(n: int) -> Decimal:
    """The fixed amount of shared key n, so any thread replaying it sends the same post."""
    return Decimal(n % 7 + 1) * (1 if n % 2 else -1) / 4


def run_threads(org, *, seed: int):
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def worker(thread_no: int) -> None:
        rng = random.Random(seed + thread_no)
        try:
            barrier.wait()
            for i in range(POSTS_PER_THREAD):
                if rng.random() < 0.25:
                    n = rng.randrange(SHARED_KEYS)
                    key, amount = f"shared-{n}", shared_amount(n)
                else:
                    key = f"t{thread_no}-{i}"
                    amount = Decimal(rng.randint(-500, 500) or 1) / 100
                kind = "grant" if amount > 0 else "usage"
                # A no-overdraft org refuses some debits whole; that is the point.
                with contextlib.suppress(InsufficientCredits):
                    ledger_post(
                        org=org, kind=kind, amount=amount, reason="load", idempotency_key=key
                    )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def expected_from_the_threads(seed: int) -> dict[str, Decimal]:
    """Every distinct key and its amount, recomputed from the same random streams."""
    distinct: dict[str, Decimal] = {}
    for thread_no in range(THREADS):
        rng = random.Random(seed + thread_no)
        for i in range(POSTS_PER_THREAD):
            if rng.random() < 0.25:
                n = rng.randrange(SHARED_KEYS)
                distinct[f"shared-{n}"] = shared_amount(n)
            else:
                distinct[f"t{thread_no}-{i}"] = Decimal(rng.randint(-500, 500) or 1) / 100
    return distinct


def test_concurrent_posts_and_replays_are_exact():
    org = make_org(tier=Tier.ENTERPRISE, allow_overdraft=True)
    start = Decimal("1000")
    ledger_post(org=org, kind="grant", amount=start, reason="start", idempotency_key="start")
    run_threads(org, seed=7)

    distinct = expected_from_the_threads(seed=7)
    entries = dict(
        LedgerEntry.objects.filter(organization=org)
        .exclude(idempotency_key="start")
        .values_list("idempotency_key", "amount")
    )
    assert entries == distinct  # every key once, with its amount: no loss, no duplicate
    balance = CreditAccount.objects.get(organization=org).balance
    assert balance == start + sum(distinct.values(), Decimal("0"))
    # balance_after forms one unbroken chain: each entry starts where the previous ended.
    chain = list(
        LedgerEntry.objects.filter(organization=org)
        .order_by("id")
        .values_list("amount", "balance_after")
    )
    running = Decimal("0")
    for amount, balance_after in chain:
        running += amount
        assert balance_after == running


def test_concurrent_debits_never_take_a_no_overdraft_org_below_zero():
    org = make_org(tier=Tier.STARTUP, allow_overdraft=False)
    ledger_post(org=org, kind="grant", amount=Decimal("50"), reason="s", idempotency_key="start")
    run_threads(org, seed=11)
    balance = CreditAccount.objects.get(organization=org).balance
    total = sum(
        LedgerEntry.objects.filter(organization=org).values_list("amount", flat=True),
        Decimal("0"),
    )
    assert balance == total
    assert balance >= 0
    assert not LedgerEntry.objects.filter(organization=org, balance_after__lt=0).exists()
