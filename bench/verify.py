"""What a load run must leave behind: every accepted record stored once, the ledger's usage
debits equal to the stored records' credits, the balance equal to what was granted less
those debits, and `manage.py reconcile` (ledger, rollups, spend counters against
PostgreSQL) finding nothing. Each check prints one line and returns its problems."""

import io
import time
from collections.abc import Callable
from decimal import Decimal

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Sum

from bench.orgs import STARTING_CREDITS, BenchOrg
from bench.product import RECORD_MODELS, CreditAccount, EntryKind, IngestBatch, LedgerEntry

Say = Callable[[str], object]


def accepted(setup: BenchOrg) -> int:
    """Records the server has answered as accepted for the organization (committed)."""
    found = IngestBatch.objects.filter(organization=setup.org).aggregate(n=Sum("accepted"))
    return found["n"] or 0


def accepted_settled(setup: BenchOrg, *, quiet: float = 1.0, limit: float = 30.0) -> int:
    """`accepted` once no batch has committed for `quiet` seconds: a load generator stops
    with batches still in flight, and those commit after it returns."""
    last, since, deadline = accepted(setup), time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.2)
        now = accepted(setup)
        if now != last:
            last, since = now, time.monotonic()
    return last


def records_stored_once(setup: BenchOrg, say: Say) -> list[str]:
    """Stored rows equal the batches' accepted count, and no record id is stored twice."""
    stored = distinct = 0
    for model in RECORD_MODELS.values():
        counts = model.objects.filter(organization=setup.org).aggregate(
            rows=Count("id"), ids=Count("client_id", distinct=True)
        )
        stored += counts["rows"]
        distinct += counts["ids"]
    answered = accepted(setup)
    ok = stored == answered == distinct
    say(
        f"verify records:      accepted {answered:,}, stored {stored:,}, "
        f"duplicated {stored - distinct}: {'OK' if ok else 'FAILED'}"
    )
    return [] if ok else [f"records: accepted {answered}, stored {stored}, distinct {distinct}"]


def money_matches(setup: BenchOrg, say: Say, *, charged: Decimal | None = None) -> list[str]:
    """Usage debits = the stored records' credits (= `charged`, the prices worked out by
    the benchmark, when it knows them); balance = granted - debits."""
    org = setup.org
    debits = LedgerEntry.objects.filter(organization=org, kind=EntryKind.USAGE).aggregate(
        total=Sum("amount")
    )["total"] or Decimal(0)
    records = sum(
        (
            model.objects.filter(organization=org).aggregate(total=Sum("credits"))["total"]
            or Decimal(0)
            for model in RECORD_MODELS.values()
        ),
        Decimal(0),
    )
    balance = CreditAccount.objects.get(organization=org).balance
    ok = -debits == records and balance == STARTING_CREDITS + debits
    priced = ""
    if charged is not None:
        ok = ok and charged == records
        priced = f" = prices from the price list {charged:f}"
    say(
        f"verify ledger:       usage debits {-debits:f}{priced} = records' credits "
        f"{records:f}; balance {balance:f}: {'OK' if ok else 'FAILED'}"
    )
    return [] if ok else [f"ledger debits {-debits} vs records' credits {records}"]


def reconcile_clean(setup: BenchOrg, say: Say) -> list[str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("reconcile", org=setup.org.slug, stdout=out, stderr=err)
        ok = True
    except CommandError:
        ok = False
    summary = (out.getvalue().strip().splitlines() or ["(no output)"])[-1]
    say(f"verify reconcile:    {summary}: {'OK' if ok else 'FAILED'}")
    return [] if ok else [f"reconcile: {err.getvalue().strip()[:300]}"]
