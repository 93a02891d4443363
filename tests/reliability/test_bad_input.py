"""Bad input, refused cleanly: hypothesis over the ingestion endpoint (the Add Credit
form flow and the read API's parameters are in test_bad_input_forms.py).

Pass, per input: a typed 4xx (JSON naming the field), or, inside a batch, a per-record
rejection naming the record's index and field; nothing stored for a bad record; never
a 5xx. Valid inputs that are easy to get wrong (DST changes, leap days, offsets up to
±23:59) are stored as the instant they name.

The schema-driven fuzz of every API operation (schemathesis) is
tests/api/test_schema.py::test_fuzz_the_api_against_its_schema; this file aims at the
values a schema does not describe: NaN and infinities, huge numbers, lone surrogates and
NUL, invalid UTF-8, bodies over the upload limit, over-limit batches.
"""

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from billing.models import PriceModel
from ingest.services.ingest import MAX_BATCH_RECORDS
from tests.reliability.bad_input import (
    FUZZ,
    TRIED,
    WRITE_AND_BODY_ENDPOINTS,
    _ids,
    post_records,
    stored_count,
    stored_ids,
)
from usage.limits import MAX_CORE_HOURS, MAX_CORES, MAX_NUM_RECORDS, MAX_TOKENS
from usage.models import Query, WorkerSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tried_summary")]


# --- Records: one valid record per kind, and bad values per field ----------------------------


def valid_record(kind: str) -> dict:
    rid = f"{kind[:1]}-{next(_ids)}"
    if kind == "query":
        return {
            "id": rid,
            "kind": "query",
            "occurred_at": "2024-02-29T10:00:00Z",
            "model": "llama-3.1-8b",
            "input_tokens": 25,
            "output_tokens": 100,
            "endpoint": "/v1/chat/completions",
            "member": "ana@example.com",
        }
    if kind == "worker_session":
        return {
            "id": rid,
            "kind": "worker_session",
            "model": "llama-3.1-70b",
            "started_at": "2024-03-31T00:30:00+01:00",
            "ended_at": "2024-03-31T03:30:00+02:00",
        }
    if kind == "matching":
        return {
            "id": rid,
            "kind": "matching",
            "task": "IDR",
            "num_records": 5000,
            "started_at": "2024-11-03T01:30:00-04:00",
            "ended_at": "2024-11-03T01:10:00-05:00",
        }
    return {"id": rid, "kind": "job", "status": "completed", "cores": 8, "controller": "dgx-01",
            "submitted_at": "2024-02-29T07:59:00Z", "started_at": "2024-02-29T08:00:00Z",
            "ended_at": "2024-02-29T10:00:00Z", "core_hours": 12.5}  # fmt: skip


KINDS = ("query", "worker_session", "matching", "job")

wrong_types = st.one_of(
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
not_finite = st.sampled_from([math.nan, math.inf, -math.inf])
# The extremes every numeric field is tried with (each past every bound in usage/limits.py).
EXTREMES = (2**31, 2**53, 2**63, 10**30)
extreme_integers = st.sampled_from(EXTREMES)
huge_numbers = st.one_of(
    extreme_integers,
    st.integers(min_value=int(MAX_CORE_HOURS) + 1, max_value=10**40),
    st.floats(min_value=float(MAX_CORE_HOURS) * 1.001, max_value=1e308),
)
# Control characters (CR/LF, escape), bidirectional overrides and isolates, zero-width
# characters and line separators, somewhere in otherwise fine text.
INVISIBLE = (
    "\r\n\t\x1b\x07\x7f\u0085"  # controls
    "\u200e\u200f\u202a\u202e\u2066\u2069"  # bidi marks, overrides, isolates
    "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # zero-width, soft hyphen
    "\u2028\u2029"  # line and paragraph separators
)
invisible_text = st.builds(
    lambda before, char, after: before + char + after,
    st.text(alphabet="abc-01", max_size=4),
    st.sampled_from(INVISIBLE),
    st.text(alphabet="abc-01", min_size=1, max_size=4),
)
unstorable_text = st.one_of(
    st.text(max_size=5).map(lambda s: s + "\x00"),
    st.sampled_from(["\ud800", "a\udfff", "\udbff\udc00x"[0] + "z"]),
)


def _aware_iso(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except (ValueError, TypeError):
        return False


bad_times = st.one_of(
    st.text(max_size=30).filter(lambda s: not _aware_iso(s)),
    st.sampled_from([
        "2024-02-29T10:00:00",  # no zone
        "2024-02-30T10:00:00Z",  # no such day
        "2023-02-29T10:00:00Z",  # not a leap year
        "2024-03-10T02:30:00",  # the missing hour of New York's spring forward, no zone
        "2099-01-01T00:00:00Z",  # future
        "1969-12-31T23:59:59Z",  # before the epoch
        "0001-01-01T00:00:00+05:00",  # no UTC form
        "9999-12-31T23:59:59-01:00",  # no UTC form
        "2024-02-29T10:00:00+24:00",  # offset out of range
        "2024-02-29T25:00:00Z",
    ]),
    st.integers(),
    st.floats(allow_nan=True),
    wrong_types,
    unstorable_text,
)  # fmt: skip


def bad_integer(*, minimum: int, maximum: int):
    return st.one_of(
        extreme_integers,
        st.sampled_from(EXTREMES).map(float),
        st.integers(max_value=minimum - 1),
        st.integers(min_value=maximum + 1, max_value=maximum * 10**6),
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
        not_finite,
        st.text(max_size=10),
        wrong_types,
    )


def bad_text(*, choices=None, max_length: int, required: bool):
    """Strings no field of this kind accepts, and non-strings."""
    options = [
        st.text(min_size=max_length + 1, max_size=max_length + 20),
        unstorable_text,
        invisible_text,
        st.integers(),
        st.floats(),
        wrong_types,
    ]
    if choices is not None:
        options.append(st.text(max_size=12).filter(lambda s: s not in choices))
    if required:
        options.append(st.sampled_from(["", "   "]))
    return st.one_of(*options)


MODELS = ("llama-3.1-8b", "llama-3.1-70b", "e5-large-v2", "phi-3-mini")
BAD_FIELDS: dict[str, dict[str, st.SearchStrategy]] = {
    "query": {
        "occurred_at": bad_times,
        "model": bad_text(choices=MODELS, max_length=100, required=True),
        "input_tokens": bad_integer(minimum=0, maximum=MAX_TOKENS),
        "output_tokens": bad_integer(minimum=0, maximum=MAX_TOKENS),
        "endpoint": bad_text(max_length=200, required=False),
        "member": bad_text(max_length=254, required=False),
    },
    "worker_session": {
        "model": bad_text(choices=MODELS, max_length=100, required=True),
        "started_at": bad_times,
        "ended_at": st.one_of(bad_times, st.just("2024-03-30T23:29:59Z")),  # before the start
    },
    "matching": {
        "task": bad_text(choices=("IDR", "CDM"), max_length=3, required=True),
        "num_records": bad_integer(minimum=0, maximum=MAX_NUM_RECORDS),
        "started_at": bad_times,
        "ended_at": bad_times,
    },
    "job": {
        "status": bad_text(
            choices=("submitted", "running", "completed", "failed", "cancelled"),
            max_length=20,
            required=True,
        ),
        "cores": bad_integer(minimum=1, maximum=MAX_CORES),
        "controller": st.one_of(
            bad_text(max_length=100, required=False), st.just("no-such-controller")
        ),
        "submitted_at": bad_times,
        "started_at": bad_times,
        "ended_at": bad_times,
        "core_hours": st.one_of(
            st.integers(max_value=-1),
            st.floats(max_value=-1e-9),
            not_finite,
            huge_numbers,
            st.text(max_size=5),
            wrong_types,
        ),
    },
}
BAD_ID = st.one_of(
    st.none(),
    st.sampled_from(["", "  "]),
    st.text(min_size=201, max_size=230),
    unstorable_text,
    invisible_text,
    st.integers(),
    wrong_types,
)


@st.composite
def bad_record(draw) -> tuple[dict | object, str | None]:
    """A record with exactly one bad field, and that field (None: not an object)."""
    where = draw(st.sampled_from([*KINDS, "id", "kind", "not_object"]))
    if where == "not_object":
        not_an_object = st.one_of(
            st.none(), st.integers(), st.text(max_size=5), st.lists(st.none(), max_size=2)
        )
        return draw(not_an_object), None
    if where == "id":
        record = valid_record(draw(st.sampled_from(KINDS)))
        value = draw(BAD_ID)
        if value is None and draw(st.booleans()):
            del record["id"]
        else:
            record["id"] = value
        return record, "id"
    if where == "kind":
        record = valid_record(draw(st.sampled_from(KINDS)))
        record["kind"] = draw(
            st.one_of(st.text(max_size=15).filter(lambda s: s not in KINDS), st.none(), wrong_types)
        )
        return record, "kind"
    record = valid_record(where)
    name = draw(st.sampled_from(sorted(BAD_FIELDS[where])))
    record[name] = draw(BAD_FIELDS[where][name])
    return record, name


@st.composite
def batches(draw):
    """1 to 8 records, each valid (a fresh id) or with one bad field."""
    items = draw(
        st.lists(
            st.one_of(
                st.sampled_from(KINDS).map(lambda k: (valid_record(k), None, True)),
                bad_record().map(lambda pair: (pair[0], pair[1], False)),
            ),
            min_size=1,
            max_size=8,
        )
    )
    return items


@hsettings(FUZZ, max_examples=150)
@given(batch=batches())
def test_bad_records_are_rejected_by_index_and_field_and_nothing_of_them_is_stored(
    client, api, batch
):
    org = api["org"]
    before_ids, before_count = stored_ids(org), stored_count(org)
    records = [record for record, _, _ in batch]
    response = post_records(client, api, {"records": records})
    TRIED["ingest records"] += len(records)
    TRIED["ingest batches"] += 1
    assert response.status_code < 500, response.content
    data = response.json()
    good = [i for i, (_, _, ok) in enumerate(batch) if ok]
    bad = {i: field for i, (_, field, ok) in enumerate(batch) if not ok}

    if response.status_code == 400:
        # A body-level refusal (text the database cannot hold): it names the record and
        # field, and nothing of the batch is stored.
        assert data["error"] == "invalid_json"
        assert any(data["field"].startswith(f"records[{i}]") for i in bad), data
        assert stored_count(org) == before_count
        return
    assert response.status_code == 200, data
    rejected = {r["index"]: r for r in data["rejected"]}
    assert set(rejected) == set(bad), (data, bad)
    for index, field in bad.items():
        assert rejected[index]["field"] == field, (records[index], rejected[index])
        assert rejected[index]["error"]
    assert data["accepted"] == [records[i]["id"] for i in good]
    # Nothing but the good records was stored.
    assert stored_ids(org) - before_ids == {records[i]["id"] for i in good}
    assert stored_count(org) == before_count + len(good)


@pytest.mark.parametrize(
    ("record", "field", "error"),
    [
        ({"occurred_at": "2026-01-01T00:00:00+23:59"}, None, None),  # ±23:59: stored in UTC
        ({"occurred_at": "0001-01-01T00:00:00+05:00"}, "occurred_at", "out of range"),
        ({"endpoint": "/v1/\x00"}, "endpoint", "NUL"),
        ({"member": "ana\x00@example.com"}, "member", "NUL"),
        ({"id": "q\x00"}, "id", "NUL"),
        ({"input_tokens": 2**62, "output_tokens": 2**62}, "input_tokens", "too large"),
    ],
)
def test_the_ingestion_service_itself_normalizes_times_and_refuses_what_cannot_be_stored(
    api, record, field, error
):
    """Not only behind the API's guards: the service is what every caller goes through."""
    from ingest.services.ingest import usage_records_ingest

    query = {**valid_record("query"), **record}
    result = usage_records_ingest(org=api["org"], records=[query])
    TRIED["service records"] += 1
    if field is None:
        assert result.accepted == [query["id"]]
        stored = Query.objects.get(organization=api["org"], client_id=query["id"])
        assert stored.occurred_at == datetime(2025, 12, 31, 0, 1, tzinfo=UTC)
    else:
        assert result.accepted == [] and result.rejected[0].field == field
        assert error in result.rejected[0].error
        assert stored_count(api["org"]) == 0


@pytest.mark.parametrize("name", ["\udc00x", "dgx\x00"])
def test_a_controller_name_no_query_can_carry_is_a_rejection_not_a_500(client, api, name):
    """The controller lookup runs before validation; on PostgreSQL a lone surrogate in it
    was a 500 (found by the batch fuzz above)."""
    record = {**valid_record("job"), "controller": name}
    batch = [record, valid_record("query")]
    response = post_records(client, api, {"records": batch})
    TRIED["ingest records"] += 2
    if "\x00" in name:  # refused with the body, naming the field
        assert response.status_code == 400 and response.json()["field"] == "records[0].controller"
        return
    assert response.status_code == 200, response.content
    assert response.json()["rejected"][0] | {"error": ""} == {
        "index": 0, "id": record["id"], "field": "controller", "error": ""
    }  # fmt: skip
    assert response.json()["accepted"] == [batch[1]["id"]]


# --- Times that are valid but easy to get wrong --------------------------------------------

# Instants at and around DST changes (Europe, North America, Lord Howe's half hour,
# Chatham's 45-minute zone) and on leap days.
SPECIAL_INSTANTS = [
    datetime(2024, 3, 31, 1, 0, tzinfo=UTC),  # Europe springs forward
    datetime(2024, 10, 27, 1, 0, tzinfo=UTC),  # Europe falls back
    datetime(2024, 3, 10, 7, 0, tzinfo=UTC),  # New York springs forward
    datetime(2024, 11, 3, 6, 0, tzinfo=UTC),  # New York falls back
    datetime(2024, 4, 6, 15, 0, tzinfo=UTC),  # Lord Howe: half an hour back
    datetime(2024, 4, 6, 14, 0, tzinfo=UTC),  # Chatham falls back
    datetime(2024, 2, 29, 0, 0, tzinfo=UTC),
    datetime(2020, 2, 29, 23, 59, 59, tzinfo=UTC),
    datetime(2000, 2, 29, 12, 0, tzinfo=UTC),
    datetime(1970, 1, 1, 0, 0, tzinfo=UTC),
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham"]


def render(instant: datetime, offset_seconds: int) -> str:
    if offset_seconds == 0:
        return instant.isoformat().replace("+00:00", "Z")
    return instant.astimezone(timezone(timedelta(seconds=offset_seconds))).isoformat()


instants = st.builds(
    lambda base, shift: max(base + timedelta(seconds=shift), datetime(1970, 1, 1, tzinfo=UTC)),
    st.sampled_from(SPECIAL_INSTANTS),
    st.integers(min_value=-3 * 3600, max_value=3 * 3600),
)
offsets = st.one_of(
    st.integers(min_value=-(24 * 3600 - 60), max_value=24 * 3600 - 60).map(lambda s: s // 60 * 60),
    st.sampled_from([0, 5 * 3600 + 45 * 60, -(9 * 3600 + 30 * 60), 23 * 3600 + 59 * 60,
                     -(23 * 3600 + 59 * 60), 16 * 3600, -(16 * 3600)]),
)  # fmt: skip


@FUZZ
@given(
    zone=st.sampled_from(ZONES),
    start=instants,
    minutes=st.integers(min_value=0, max_value=6 * 60),
    start_offset=offsets,
    end_offset=offsets,
)
def test_dst_changes_leap_days_and_any_offset_are_stored_as_the_instant_they_name(
    client, api, zone, start, minutes, start_offset, end_offset
):
    org = api["org"]
    org.time_zone = zone
    org.save(update_fields=["time_zone"])
    end = start + timedelta(minutes=minutes)
    query = {**valid_record("query"), "occurred_at": render(start, start_offset)}
    session = {**valid_record("worker_session"), "started_at": render(start, start_offset),
               "ended_at": render(end, end_offset)}  # fmt: skip
    response = post_records(client, api, {"records": [query, session]})
    TRIED["offset/DST/leap-day records"] += 2
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == [query["id"], session["id"]], response.content
    assert Query.objects.get(organization=org, client_id=query["id"]).occurred_at == start
    stored = WorkerSession.objects.get(organization=org, client_id=session["id"])
    assert (stored.started_at, stored.ended_at) == (start, end)
    # Elapsed time, not the difference of local wall clocks across a DST change.
    assert stored.runtime_seconds == Decimal(minutes * 60)
    rate = PriceModel.objects.get(name="llama-3.1-70b").worker_hour_rate
    assert stored.credits == (rate * Decimal(minutes) / 60).quantize(Decimal("1e-10"))


# --- Bodies -----------------------------------------------------------------------------------


def _invalid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@FUZZ
@given(
    garbage=st.one_of(
        st.binary(min_size=1, max_size=40).filter(_invalid_utf8),
        st.binary(min_size=1, max_size=10)
        .filter(_invalid_utf8)
        .map(lambda b: b'{"records": [{"id": "' + b + b'", "kind": "query"}]}'),
        st.text(min_size=1, max_size=30)
        .filter(lambda t: not t.strip().startswith(("{", "[")))
        .map(str.encode),  # fmt: skip
    )
)
def test_bodies_that_are_not_utf8_json_are_400_and_store_nothing(client, api, garbage):
    response = post_records(client, api, garbage)
    TRIED["bodies"] += 1
    assert response.status_code == 400, (garbage, response.content)
    assert response.json()["error"] in {"invalid_json", "invalid_batch"}
    assert stored_count(api["org"]) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),  # nesting past the parser's depth
        (b"NaN", "invalid_batch"),
        (b'"records"', "invalid_batch"),
        (b"[]", "invalid_batch"),
        (b'{"records": {"0": {}}}', "invalid_batch"),
        (b'{"records": null}', "invalid_batch"),
        (b"\xef\xbb\xbf{}", "invalid_batch"),  # a BOM, then no records
    ],
)
def test_body_shapes_that_are_not_a_batch_are_400(client, api, body, code):
    response = post_records(client, api, body)
    TRIED["bodies"] += 1
    assert response.status_code == 400 and response.json()["error"] in {code, "invalid_json"}


def test_an_over_limit_batch_is_400_and_stores_nothing_and_the_limit_itself_is_fine(client, api):
    over = [valid_record("query") for _ in range(MAX_BATCH_RECORDS + 1)]
    response = post_records(client, api, {"records": over})
    assert response.status_code == 400
    assert response.json()["error"] == "too_many_records"
    assert stored_count(api["org"]) == 0
    response = post_records(client, api, {"records": over[:MAX_BATCH_RECORDS]})
    assert response.status_code == 200 and len(response.json()["accepted"]) == MAX_BATCH_RECORDS
    TRIED["ingest records"] += 2 * MAX_BATCH_RECORDS + 1


@pytest.mark.parametrize("url", WRITE_AND_BODY_ENDPOINTS)
def test_a_body_over_the_upload_limit_is_a_413_in_json(client, api, url):
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    padding = "x" * (limit + 1)
    body = json.dumps({"records": [{**valid_record("query"), "endpoint": padding}]})
    response = post_records(client, api, body) if url.endswith("records") else client.post(
        url, body, content_type="application/json", headers=api["headers"]
    )  # fmt: skip
    TRIED["bodies"] += 1
    assert response.status_code == 413, (url, response.status_code, response.content[:200])
    assert response.json()["error"] == "too_large"
    assert stored_count(api["org"]) == 0
