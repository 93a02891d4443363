"""Ingestion's PostgreSQL write path: one COPY per kind, replays looked up with one array
parameter, and every guarantee of the batch kept (duplicates, rejections, all or
nothing, a fixed number of statements)."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from billing.models import LedgerEntry
from billing.selectors import credit_balance
from ingest.services import write
from ingest.services.ingest import usage_records_ingest
from tests.factories import grant_credits, make_api_key, make_controller, make_org
from tests.ingest.test_ingest import EXPECTED, good_batch, snapshot
from usage.models import IngestBatch, Job, Query

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db,
    pytest.mark.usefixtures("frozen"),
]


@pytest.fixture
def org():
    org = make_org()
    make_controller(org=org, name="dgx-01")
    grant_credits(org=org, amount="100")
    return org


def _copies(queries) -> list[str]:
    return [
        q["sql"].split(" (")[0] for q in queries.captured_queries if q["sql"].startswith("COPY")
    ]


def test_each_kind_is_written_with_one_copy_and_charged_at_its_price(org):
    key, _ = make_api_key(org=org)
    with CaptureQueriesContext(connection) as queries:
        result = usage_records_ingest(org=org, records=good_batch(), api_key=key)
    assert sorted(_copies(queries)) == [
        'COPY "usage_job"',
        'COPY "usage_matchingrun"',
        'COPY "usage_query"',
        'COPY "usage_workersession"',
    ]
    assert not [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "usage_q')]
    assert result.credits == sum(EXPECTED.values())
    stored = dict(snapshot(org)["queries"])
    assert stored["q-1"] == EXPECTED["q-1"]
    query = Query.objects.get(organization=org, client_id="q-1")
    assert (query.api_key, query.batch_id, query.member) == (
        key,
        result.batch_id,
        "ana@example.com",
    )
    job = Job.objects.get(organization=org, client_id="j-1")
    assert job.controller.name == "dgx-01" and job.core_hours == Decimal("16")
    assert job.charge_reference == f"usage-batch:{result.batch_id}"


def test_a_replayed_batch_is_all_duplicates_and_changes_nothing(org):
    first = usage_records_ingest(org=org, records=good_batch())
    before = snapshot(org)
    again = usage_records_ingest(org=org, records=good_batch())
    assert again.accepted == [] and sorted(again.duplicates) == sorted(first.accepted)
    assert snapshot(org) == before
    assert IngestBatch.objects.filter(organization=org).count() == 1


def test_duplicates_within_and_across_batches_are_reported_and_stored_once(org):
    query = good_batch()[0]
    usage_records_ingest(org=org, records=[query | {"id": "a"}, query | {"id": "b"}])
    mixed = [
        query | {"id": "b"},  # stored by the first batch
        query | {"id": "c"},
        query | {"id": "c"},  # twice in this batch: the first counts
        query | {"id": "d"},
        query | {"id": "a"},
    ]
    result = usage_records_ingest(org=org, records=mixed)
    assert result.accepted == ["c", "d"]
    assert sorted(result.duplicates) == ["a", "b", "c"]
    ids = list(Query.objects.filter(organization=org).values_list("client_id", flat=True))
    assert sorted(ids) == ["a", "b", "c", "d"]
    assert result.credits == 2 * EXPECTED["q-1"]


@pytest.mark.parametrize(
    "client_id",
    [
        'with "quotes"',
        "back\\slash\\",
        "{braces},comma",
        " spaced ",
        "NULL",
        "ünï-çødé ✓",
        "x" * 198,
    ],
)
def test_ids_any_text_can_hold_are_stored_as_sent_and_recognised_on_replay(org, client_id):
    record = good_batch()[0] | {"id": client_id}
    other = good_batch()[0] | {"id": client_id + "-2"}
    assert usage_records_ingest(org=org, records=[record]).accepted == [client_id]
    replay = usage_records_ingest(org=org, records=[record, other])
    assert replay.duplicates == [client_id] and replay.accepted == [client_id + "-2"]
    assert Query.objects.filter(organization=org, client_id=client_id).count() == 1


def test_another_organizations_ids_are_not_replays(org):
    other = make_org()
    grant_credits(org=other, amount="100")
    usage_records_ingest(org=other, records=good_batch())
    result = usage_records_ingest(org=org, records=good_batch())
    assert len(result.accepted) == len(good_batch()) and result.duplicates == []


def test_a_row_the_database_refuses_mid_copy_leaves_nothing_written(org, monkeypatch):
    """A COPY failing on a later kind (a constraint only the database checks) rolls back
    the batch: the kinds already copied, the batch row, the dirty days and the debit."""
    usage_records_ingest(org=org, records=[good_batch()[0] | {"id": "earlier"}])
    before = snapshot(org), credit_balance(org=org), LedgerEntry.objects.count()
    real_row = write._row

    def bad_job_row(kind, c, common, **kwargs):
        row = real_row(kind, c, common, **kwargs)
        if kind == "job":
            row["cores"] = 0  # job_cores_positive
        return row

    monkeypatch.setattr(write, "_row", bad_job_row)
    with pytest.raises(IntegrityError):
        usage_records_ingest(org=org, records=good_batch())
    assert (snapshot(org), credit_balance(org=org), LedgerEntry.objects.count()) == before


def _statements(org, records) -> int:
    with CaptureQueriesContext(connection) as queries:
        result = usage_records_ingest(org=org, records=records)
    assert len(result.accepted) == len(records)
    return len(queries.captured_queries)


def test_the_statements_per_batch_do_not_grow_with_its_size(org):
    grant_credits(org=org, amount="10000", key="more")
    batch = good_batch()

    def sized(prefix: str, n: int) -> list[dict]:
        return [batch[i % len(batch)] | {"id": f"{prefix}-{i}"} for i in range(n)]

    assert _statements(org, sized("s", 9)) == _statements(org, sized("l", 1000))
