"""The ingestion service: validation, replays, job lifecycle and exact charging."""

from decimal import Decimal

import pytest

from accounts.models import Tier
from billing.models import LedgerEntry
from billing.selectors import credit_balance, ledger_sum
from ingest.services.ingest import usage_records_ingest
from tests.factories import grant_credits, make_api_key, make_controller, make_org, make_user
from usage.models import IngestBatch, Job, MatchingRun, Query, WorkerSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


def good_batch() -> list[dict]:
    """docs/api.md's example batch plus a few more, with credits worked out by hand below."""
    return [
        {"id": "q-1", "kind": "query", "occurred_at": "2026-11-20T10:00:00Z",
         "model": "llama-3.1-8b", "input_tokens": 25, "output_tokens": 100,
         "endpoint": "/v1/chat/completions", "member": "ana@example.com"},
        {"id": "w-1", "kind": "worker_session", "model": "llama-3.1-8b",
         "started_at": "2026-11-20T08:00:00Z", "ended_at": "2026-11-20T09:30:00Z"},
        {"id": "m-1", "kind": "matching", "task": "IDR", "num_records": 5000,
         "started_at": "2026-11-20T08:00:00Z", "ended_at": "2026-11-20T08:02:00Z"},
        {"id": "j-1", "kind": "job", "status": "completed", "cores": 8,
         "controller": "dgx-01", "submitted_at": "2026-11-20T07:59:00Z",
         "started_at": "2026-11-20T08:00:00Z", "ended_at": "2026-11-20T10:00:00Z"},
        {"id": "j-2", "kind": "job", "status": "failed", "cores": 4,
         "submitted_at": "2026-11-20T07:00:00Z", "started_at": "2026-11-20T07:00:00Z",
         "ended_at": "2026-11-20T08:00:00Z"},
        {"id": "q-2", "kind": "query", "occurred_at": "2026-11-20T10:01:00+01:00",
         "model": "llama-3.1-70b", "input_tokens": 1000, "output_tokens": 500},
        {"id": "q-3", "kind": "query", "occurred_at": "2026-11-19T23:00:00Z",
         "model": "e5-large-v2", "input_tokens": 1_000_000, "output_tokens": 0},
        {"id": "q-4", "kind": "query", "occurred_at": "2026-11-19T23:00:00Z",
         "model": "phi-3-mini", "input_tokens": 333, "output_tokens": 333},
        {"id": "w-2", "kind": "worker_session", "model": "phi-3-mini",
         "started_at": "2026-11-20T08:00:00Z", "ended_at": "2026-11-20T08:00:01Z"},
    ]  # fmt: skip


# By hand, from the shipped price list (per million tokens, input and output alike;
# worker-hour rates from billing/migrations/0002; core-hours managed 0.12, BYOC 0.03):
EXPECTED = {
    "q-1": Decimal("125") * Decimal("0.10") / 10**6,  # 0.0000125
    "w-1": Decimal("1.5") * Decimal("0.60"),  # 0.90
    "m-1": Decimal("0"),  # matching runs are not priced
    "j-1": Decimal("16") * Decimal("0.03"),  # 8 cores × 2 h on a controller = 0.48
    "j-2": Decimal("4") * Decimal("0.12"),  # 4 cores × 1 h managed = 0.48
    "q-2": Decimal("1500") * Decimal("0.90") / 10**6,  # 0.00135
    "q-3": Decimal("0.01"),
    "q-4": Decimal("666") * Decimal("0.05") / 10**6,  # 0.0000333
    "w-2": (Decimal("0.30") / 3600).quantize(Decimal("1e-10")),  # one second: 0.0000833333
}


@pytest.fixture
def org():
    org = make_org(tier=Tier.STARTUP)
    make_controller(org=org, name="dgx-01")
    grant_credits(org=org, amount="100")
    return org


def snapshot(org) -> dict:
    """Everything ingestion may write for an organization."""
    return {
        "queries": sorted(
            Query.objects.filter(organization=org).values_list("client_id", "credits")
        ),
        "sessions": sorted(
            WorkerSession.objects.filter(organization=org).values_list("client_id", "credits")
        ),
        "matching": sorted(MatchingRun.objects.filter(organization=org).values_list("client_id")),
        "jobs": sorted(
            Job.objects.filter(organization=org).values_list(
                "client_id", "status", "core_hours", "credits", "updated_at"
            )
        ),
        "batches": IngestBatch.objects.filter(organization=org).count(),
        "ledger": sorted(LedgerEntry.objects.filter(organization=org).values_list("pk", "amount")),
        "balance": credit_balance(org=org),
    }


def test_a_batch_is_stored_and_charged_exactly(org):
    key, _ = make_api_key(org=org)
    result = usage_records_ingest(org=org, records=good_batch(), api_key=key)

    assert result.rejected == []
    assert result.accepted == [r["id"] for r in good_batch()]
    total = sum(EXPECTED.values())
    assert result.credits == total
    entry = LedgerEntry.objects.get(organization=org, kind="usage")
    assert entry.amount == -total
    assert entry.idempotency_key == entry.reference == f"usage-batch:{result.batch_id}"
    assert credit_balance(org=org) == ledger_sum(org=org) == Decimal("100") - total
    for model in (Query, WorkerSession, Job):
        for client_id, credits in model.objects.filter(organization=org).values_list(
            "client_id", "credits"
        ):
            assert credits == EXPECTED[client_id], client_id
    j1 = Job.objects.get(client_id="j-1")
    assert j1.controller.name == "dgx-01" and j1.core_hours == Decimal("16")
    assert j1.api_key == key and j1.charge_reference == entry.reference
    assert Job.objects.get(client_id="j-2").controller is None  # managed compute
    q1 = Query.objects.get(client_id="q-1")
    assert (q1.total_tokens, q1.endpoint) == (125, "/v1/chat/completions")
    assert q1.member == "ana@example.com"
    assert WorkerSession.objects.get(client_id="w-1").runtime_seconds == Decimal("5400")
    assert MatchingRun.objects.get(client_id="m-1").run_time_seconds == Decimal("120")


def test_replaying_a_batch_or_any_subset_changes_nothing(org):
    key, _ = make_api_key(org=org)
    usage_records_ingest(org=org, records=good_batch(), api_key=key)
    before = snapshot(org)

    subsets = (good_batch(), good_batch()[::2], good_batch()[3:5], good_batch()[::-1])
    for records in subsets:
        result = usage_records_ingest(org=org, records=records, api_key=key)
        assert result.accepted == [] and result.rejected == []
        assert sorted(result.duplicates) == sorted(r["id"] for r in records)
        assert result.batch_id is None and result.credits == 0
        assert snapshot(org) == before


def test_a_partial_replay_stores_and_charges_only_the_new_records(org):
    usage_records_ingest(org=org, records=good_batch()[:4])
    result = usage_records_ingest(org=org, records=good_batch())
    assert result.duplicates == ["q-1", "w-1", "m-1", "j-1"]
    assert result.accepted == ["j-2", "q-2", "q-3", "q-4", "w-2"]
    assert result.credits == sum(EXPECTED[i] for i in result.accepted)
    assert credit_balance(org=org) == ledger_sum(org=org) == Decimal("100") - sum(EXPECTED.values())


def _bad(index_of_good: int, **changes) -> dict:
    record = dict(good_batch()[index_of_good])
    for name, value in changes.items():
        if value is KeyError:
            record.pop(name)
        else:
            record[name] = value
    return record


# (record, field): one bad record of each kind the issue names, and a few more.
BAD = [
    (_bad(0, id="bad-missing", input_tokens=KeyError), "input_tokens"),
    (_bad(0, id="bad-type", output_tokens="100"), "output_tokens"),
    (_bad(0, id="bad-negative", input_tokens=-5), "input_tokens"),
    (_bad(3, id="bad-nan", core_hours=float("nan")), "core_hours"),
    (_bad(3, id="bad-inf", core_hours=float("inf")), "core_hours"),
    (_bad(0, id="bad-float", input_tokens=2.5), "input_tokens"),
    (_bad(1, id="bad-order", ended_at="2026-11-20T07:00:00Z"), "ended_at"),
    (_bad(0, id="bad-future", occurred_at="2026-11-21T12:00:00Z"), "occurred_at"),
    (_bad(0, id="bad-model", model="gpt-99"), "model"),
    (_bad(3, id="bad-controller", controller="their-box"), "controller"),
    (_bad(3, id="bad-unknown-controller", controller="nope"), "controller"),
    (_bad(0, id="bad-naive", occurred_at="2026-11-20T10:00:00"), "occurred_at"),
    (_bad(0, id="bad-kind", kind="sandwich"), "kind"),
    (_bad(2, id="bad-task", task="XYZ"), "task"),
    (_bad(3, id="bad-cores", cores=0), "cores"),
    (_bad(3, id="bad-status", status="paused"), "status"),
    (_bad(0, id=17), "id"),
    (_bad(0, id=KeyError), "id"),
]


def test_each_bad_record_is_rejected_with_index_and_field_and_the_good_ones_charged(org):
    other = make_org()
    make_controller(org=other, name="their-box")  # another organization's controller
    records: list = []
    expected_rejections = {}
    for record, field in BAD:
        expected_rejections[len(records)] = field
        records.append(record)
        good = good_batch()[len(records) % len(good_batch())]
        records.append(good | {"id": f"ok-{len(records)}"})
    expected_rejections[len(records)] = None
    records.append("not an object")

    result = usage_records_ingest(org=org, records=records)

    assert {r.index: r.field for r in result.rejected} == expected_rejections
    for r in result.rejected:
        assert r.error
        if isinstance(records[r.index], dict) and isinstance(records[r.index].get("id"), str):
            assert r.id == records[r.index]["id"]
    assert len(result.accepted) == len(BAD)
    assert all(i.startswith("ok-") for i in result.accepted)
    stored = (
        set(Query.objects.values_list("client_id", flat=True))
        | set(WorkerSession.objects.values_list("client_id", flat=True))
        | set(MatchingRun.objects.values_list("client_id", flat=True))
        | set(Job.objects.values_list("client_id", flat=True))
    )
    assert stored == set(result.accepted)
    expected_total = sum(
        EXPECTED[good_batch()[(i + 1) % len(good_batch())]["id"]] for i in range(0, 2 * len(BAD), 2)
    )
    assert result.credits == expected_total
    debit = LedgerEntry.objects.get(organization=org, kind="usage")
    assert debit.amount == -expected_total
    assert credit_balance(org=org) == ledger_sum(org=org) == Decimal("100") - expected_total


def test_the_same_id_twice_in_one_batch_counts_once(org):
    record = good_batch()[0]
    result = usage_records_ingest(org=org, records=[record, record | {"input_tokens": 9}])
    assert result.accepted == ["q-1"] and result.duplicates == ["q-1"]
    assert Query.objects.get(client_id="q-1").input_tokens == 25


def test_a_job_moves_forward_only_and_is_charged_once(org):
    base = {"id": "j-9", "kind": "job", "cores": 2, "submitted_at": "2026-11-20T06:00:00Z"}
    running = base | {"status": "running", "started_at": "2026-11-20T06:30:00Z"}
    done = running | {"status": "completed", "ended_at": "2026-11-20T09:30:00Z"}

    submitted = base | {"status": "submitted"}
    assert usage_records_ingest(org=org, records=[submitted]).accepted == ["j-9"]
    assert Job.objects.get(client_id="j-9").credits == 0
    assert usage_records_ingest(org=org, records=[running]).accepted == ["j-9"]
    assert Job.objects.get(client_id="j-9").status == "running"
    result = usage_records_ingest(org=org, records=[done])
    assert result.accepted == ["j-9"]
    job = Job.objects.get(client_id="j-9")
    # 2 cores × 3 h managed = 6 core-hours × 0.12
    assert (job.status, job.core_hours, job.credits) == ("completed", Decimal("6"), Decimal("0.72"))
    debit = LedgerEntry.objects.filter(organization=org, kind="usage").get()
    assert debit.amount == Decimal("-0.72")

    before = snapshot(org)
    for stale in (base | {"status": "submitted"}, running, done):
        assert usage_records_ingest(org=org, records=[stale]).duplicates == ["j-9"]
    conflicting = usage_records_ingest(org=org, records=[done | {"status": "failed"}])
    assert [(r.field, r.index) for r in conflicting.rejected] == [("status", 0)]
    assert snapshot(org) == before


def test_reported_core_hours_are_billed_instead_of_wall_clock(org):
    record = good_batch()[3] | {"core_hours": 1.5}
    usage_records_ingest(org=org, records=[record])
    job = Job.objects.get(client_id="j-1")
    assert (job.core_hours, job.credits) == (Decimal("1.5"), Decimal("0.045"))


def test_records_the_balance_cannot_pay_are_rejected_for_credits():
    org = make_org(tier=Tier.STARTUP)
    grant_credits(org=org, amount="0.5")
    records = good_batch()[:3]  # q-1 0.0000125, w-1 0.90 (does not fit), m-1 free
    result = usage_records_ingest(org=org, records=records)
    assert result.accepted == ["q-1", "m-1"]
    assert [(r.index, r.id, r.field) for r in result.rejected] == [(1, "w-1", "credits")]
    assert credit_balance(org=org) == ledger_sum(org=org) == Decimal("0.5") - EXPECTED["q-1"]


def test_an_organization_allowed_to_overdraw_is_charged_below_zero():
    org = make_org(tier=Tier.STARTUP, allow_overdraft=True)
    result = usage_records_ingest(org=org, records=good_batch()[:2])
    assert result.rejected == []
    assert credit_balance(org=org) == -(EXPECTED["q-1"] + EXPECTED["w-1"])


def test_a_free_organization_past_its_allocation_is_stored_charged_within_it_and_flagged():
    # Spend controls: ingestion records what happened; the refusal is
    # authorize's. A query past the allocation is stored, charged only for its tokens
    # within the allocation (input first), and flagged over cap.
    from spend.models import OverCap

    org = make_org(tier=Tier.FREE)
    grant_credits(org=org, amount="10")
    query = good_batch()[0] | {"input_tokens": 1, "output_tokens": 0}
    first = [query | {"id": f"a-{n}", "input_tokens": 40_000} for n in range(2)]  # 80,000
    assert usage_records_ingest(org=org, records=first).accepted == ["a-0", "a-1"]
    second = [
        query | {"id": "b-0", "input_tokens": 15_000},
        query | {"id": "b-1", "input_tokens": 4_000, "output_tokens": 3_000},
        query | {"id": "b-2", "input_tokens": 7},
    ]
    result = usage_records_ingest(org=org, records=second)
    assert result.accepted == ["b-0", "b-1", "b-2"] and result.rejected == []
    price = Decimal("0.10") / 10**6
    charged = dict(Query.objects.filter(organization=org).values_list("client_id", "credits"))
    assert charged["b-0"] == 15_000 * price
    assert charged["b-1"] == 5_000 * price  # 4,000 in, then 1,000 of its 3,000 out
    assert charged["b-2"] == 0
    flags = OverCap.objects.filter(organization=org, reason="allocation").order_by("pk")
    assert [f.uncharged_credits for f in flags] == [2_000 * price, 7 * price]
    # Last month's usage does not count against this month.
    old = query | {"id": "old", "occurred_at": "2026-10-31T12:00:00Z"}
    assert usage_records_ingest(org=org, records=[old]).accepted == ["old"]
    assert Query.objects.get(client_id="old").credits == price


def test_a_paid_tier_passes_its_allocation_and_is_charged_at_model_prices():
    org = make_org(tier=Tier.DEVELOPER)
    grant_credits(org=org, amount="10")
    big = good_batch()[0] | {"input_tokens": 5_000_001, "output_tokens": 0}
    result = usage_records_ingest(org=org, records=[big])
    assert result.accepted == ["q-1"]
    assert result.credits == Decimal("5000001") * Decimal("0.10") / 10**6


def test_without_a_key_records_are_unattributed_and_a_personal_key_names_its_member(org):
    usage_records_ingest(org=org, records=good_batch()[3:4])
    assert Job.objects.get(client_id="j-1").api_key is None
    user = make_user(email="Bea@Example.com")
    key, _ = make_api_key(org=org, kind="personal", user=user)
    anonymous = {k: v for k, v in good_batch()[5].items()}
    usage_records_ingest(org=org, records=[anonymous], api_key=key)
    assert Query.objects.get(client_id="q-2").member == "bea@example.com"


def test_a_batch_costs_a_fixed_number_of_queries(org, django_assert_max_num_queries):
    records = [good_batch()[n % len(good_batch())] | {"id": f"r-{n}"} for n in range(1000)]
    grant_credits(org=org, amount="1000")
    # Lookups, lock, one insert per kind, the batch, marking closed days and finished
    # hours dirty for the rollups (one upsert each), one upsert of the bucket aggregates
    # per kind written (a MERGE each, between two statements pinning their join plan)
    # and the ledger post: never per record. Spend controls add four: the spend lock,
    # overdue reservations, the spend counters, the hard budgets.
    with django_assert_max_num_queries(38):
        result = usage_records_ingest(org=org, records=records)
    assert len(result.accepted) == 1000


def test_query_credits_round_half_to_even_at_the_tenth_decimal_place(org):
    """Prices of a ten-billionth of a credit per million tokens make every halfway case:
    each query costs an exact half unit (1e-10) and is rounded to the even neighbour."""
    from billing.models import PriceModel

    PriceModel.objects.create(
        name="tiny-1",
        input_price_per_million=Decimal("0.0000000015"),
        output_price_per_million=Decimal("0.0000000025"),
    )
    records = [
        # 100,000 × 15 units / 10**6 = 1.5 units -> 2 (even above)
        {"id": "t-1", "kind": "query", "occurred_at": "2026-11-20T10:00:00Z",
         "model": "tiny-1", "input_tokens": 100_000, "output_tokens": 0},
        # 300,000 × 15 / 10**6 = 4.5 units -> 4 (even below)
        {"id": "t-2", "kind": "query", "occurred_at": "2026-11-20T10:00:00Z",
         "model": "tiny-1", "input_tokens": 300_000, "output_tokens": 0},
        # (100,000 × 15 + 200,000 × 25) / 10**6 = 6.5 units -> 6
        {"id": "t-3", "kind": "query", "occurred_at": "2026-11-20T10:00:00Z",
         "model": "tiny-1", "input_tokens": 100_000, "output_tokens": 200_000},
        # 1 × 15 / 10**6: far below half a unit -> 0
        {"id": "t-4", "kind": "query", "occurred_at": "2026-11-20T10:00:00Z",
         "model": "tiny-1", "input_tokens": 1, "output_tokens": 0},
    ]  # fmt: skip
    result = usage_records_ingest(org=org, records=records)
    assert result.accepted == ["t-1", "t-2", "t-3", "t-4"]
    credits = dict(Query.objects.filter(organization=org).values_list("client_id", "credits"))
    assert credits == {
        "t-1": Decimal("0.0000000002"),
        "t-2": Decimal("0.0000000004"),
        "t-3": Decimal("0.0000000006"),
        "t-4": Decimal("0"),
    }
    assert result.credits == Decimal("0.0000000012")
