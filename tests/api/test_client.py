"""The Python client against Django's live server: the reference's calls, typed results,
errors as exceptions, the API key attached to usage automatically."""

import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

import usage_console_client as console
from billing.selectors import finance_overview
from insights.selectors import summaries as summaries_selectors
from tests.api.conftest import seed
from tests.factories import make_payment_method
from usage_console_client import Client

pytestmark = pytest.mark.django_db(transaction=True)


def to_unix_millis(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


@pytest.fixture
def world(live_server):
    # The seeded records are in November 2026; the live server runs at the real time,
    # so the ranges below are explicit (no "this month" defaults).
    data = seed()
    console.reset()
    console.set_base_url(live_server.url)
    console.set_session_token(data.token_secret)
    console.set_api_key(data.key_secret)
    yield data
    console.reset()


def test_the_reference_account_calls(world):
    credits = console.get_credits_balance()
    assert credits.credits == finance_overview(org=world.org).credit_balance == Decimal("75")
    assert credits < 100 and credits >= 75 and not credits > 75  # as the reference uses it
    assert credits.estimated_remaining_usage_time.days == 6
    assert credits.last_payment_date is not None

    make_payment_method(org=world.org)
    payment = console.add_credits(200)
    assert payment.status == "succeeded" and payment.credit_balance == Decimal("275")
    assert console.get_credits_balance().credits == Decimal("275")
    again = console.default_client().add_credits(5, idempotency_key="retry-me")
    replay = console.default_client().add_credits(5, idempotency_key="retry-me")
    assert replay.replayed and replay.payment_id == again.payment_id

    start = to_unix_millis(datetime(2026, 11, 20, tzinfo=UTC))
    end = to_unix_millis(datetime(2026, 11, 20, 12, tzinfo=UTC))
    runtimes = console.get_worker_sessions(start, end)
    panel = summaries_selectors.worker_runtime_by_model(
        org=world.org,
        start=datetime(2026, 11, 20, tzinfo=UTC),
        end=datetime(2026, 11, 20, 12, tzinfo=UTC),
    )
    assert [(r.model, r.runtime, r.session_count) for r in runtimes] == [
        (p.model, p.runtime, p.sessions) for p in panel
    ]
    assert runtimes[0].runtime == timedelta(hours=2, minutes=30)
    assert [s.id for s in runtimes[0].sessions] == ["w2", "w1"]

    per_model = console.get_queries_per_model(
        to_unix_millis(datetime(2026, 11, 1, tzinfo=UTC)),
        to_unix_millis(datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)),
    )
    assert [(m.model, m.queries, m.total_tokens) for m in per_model] == [
        ("llama-3.1-70b", 1, 1500),
        ("llama-3.1-8b", 2, 625),
    ]


def test_the_reference_usage_calls(world):
    rows = console.list_llm(start_date="2026-11-01", end_date="2026-11-30", page_size=2)
    assert [r.run_id for r in rows] == ["q1", "q2", "q3", "q5"]  # every page
    assert rows[0].credits == Decimal("0.0000125") and rows[0].user_id == world.ana.pk
    assert (
        console.list_llm(start_date="2026-11-01", end_date="2026-11-30", page=2, page_size=3)[
            0
        ].run_id
        == "q5"
    )
    assert console.get_llm(rows[0].id) == rows[0]

    summary = console.get_llm_organization_summary(
        world.org.pk, start_date="2026-11-01", end_date="2026-11-30"
    )
    assert summary.credits == Decimal("0.0014145")
    with pytest.warns(DeprecationWarning, match="get_llm_organization_summary"):
        old = console.list_llm_organization_summary(
            world.org.pk, start_date="2026-11-01", end_date="2026-11-30"
        )
    assert old == summary
    with pytest.warns(DeprecationWarning):
        Client(console.default_client().base_url, api_key=world.key_secret)\
            .list_llm_organization_summary(world.org.pk)  # fmt: skip

    idr = console.list_matching(task="IDR")
    assert [(m.run_id, m.num_records) for m in idr] == [("m1", 5000), ("m3", 10)]

    usage = console.get_month_to_date_usage()
    assert usage.allocation == 25_000_000 and usage.tier == "startup"


def test_errors_are_exceptions(world):
    with pytest.raises(console.NotFoundError):
        console.get_llm_organization_summary(world.other.pk)
    with pytest.raises(console.NotFoundError):
        console.get_llm(world.queries["theirs"].pk)
    with pytest.raises(console.BadRequestError) as bad:
        console.list_matching(task="XYZ")
    assert bad.value.field == "task" and bad.value.status == 400
    with pytest.raises(console.BadRequestError) as bad:
        console.list_llm(start_date="not a date")
    assert bad.value.field == "start_date"
    client = Client(console.default_client().base_url, session_token="st-av-nope")
    with pytest.raises(console.AuthenticationError):
        client.get_credits_balance()
    with pytest.raises(console.ConfigurationError):
        Client(console.default_client().base_url, session_token=world.token_secret)\
            .submit_usage_records([])  # fmt: skip


def test_usage_and_jobs_go_with_the_api_key(world):
    now = datetime.now(UTC).replace(microsecond=0)
    result = console.submit_usage_records(
        [
            {"id": "live-q", "kind": "query", "occurred_at": now.isoformat(),
             "model": "llama-3.1-8b", "input_tokens": 25, "output_tokens": 100},
            {"id": "live-bad", "kind": "query", "occurred_at": now.isoformat(),
             "model": "nope", "input_tokens": 1, "output_tokens": 1},
        ]
    )  # fmt: skip
    assert result.accepted == ["live-q"]
    assert [(r.index, r.field) for r in result.rejected] == [(1, "model")]
    # Ingestion's only request limit is the console's ceiling: 10 × the tier's 3,000 RPM
    # (spend controls moved RPM and TPM to authorize).
    assert console.default_client().last_rate_limit.limit_requests == 30_000
    job = console.submit_job("live-job", 4)
    assert job.status == "submitted" and job.compute == "managed"
    assert console.transition_job("live-job", "running").status == "running"
    assert console.get_job("live-job").started_at is not None
    with pytest.raises(console.ConflictError):
        console.transition_job("live-job", "submitted")
    from usage.models import Query

    assert Query.objects.get(client_id="live-q").api_key.organization == world.org


def test_a_rate_limited_call_waits_retry_after_then_gives_up(world, settings):
    from accounts.selectors import apikey_for_secret

    key = apikey_for_secret(secret=world.key_secret)
    key.rate_limit_rpm = 1
    key.save()
    waits: list[float] = []
    client = Client(
        console.default_client().base_url, api_key=world.key_secret, sleep=waits.append,
        max_retries=2,
    )  # fmt: skip
    # Early in a minute, so the limiter's window cannot roll over between the calls.
    with time_machine.travel(datetime(2026, 11, 20, 12, 0, 5, tzinfo=UTC), tick=True):
        client.get_account()
        with pytest.raises(console.RateLimitError) as refused:
            client.get_account()
    assert refused.value.retry_after is not None and 50 <= refused.value.retry_after <= 60
    assert len(waits) == 2 and all(50 <= w <= 60 for w in waits)  # retried twice, then raised


def test_session_token_calls(world):
    info = console.get_session_token_info()
    assert info.email == world.owner.email and info.organization_id == world.org.pk
    renewed = console.renew_session_token()
    assert renewed.expires_at >= info.expires_at
    console.revoke_session_token()
    client = Client(console.default_client().base_url, session_token=world.token_secret)
    with pytest.raises(console.AuthenticationError) as revoked:
        client.get_credits_balance()
    assert revoked.value.code == "invalid_session_token"


def test_an_expired_token_raises_its_own_error(world):
    from accounts.models import SessionToken

    SessionToken.objects.filter(pk=world.token.pk).update(
        created_at=datetime(2020, 1, 1, tzinfo=UTC), expires_at=datetime(2020, 1, 31, tzinfo=UTC)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(console.SessionTokenExpiredError) as expired:
            console.get_credits_balance()
    assert "expired" in expired.value.message


def test_get_usage_report_gives_the_explorers_figures(live_server, explorer_seeded):
    from tests.factories import make_api_key
    from tests.insights.explorer_seed import END, START

    _key, secret = make_api_key(org=explorer_seeded["org"])
    client = Client(live_server.url, api_key=secret)
    report = client.get_usage_report(START, END, group_by="kind")
    assert report.time_zone == "America/New_York"
    assert report.total == Decimal("6.38") and report.previous_total == Decimal("2.00")
    by_kind = {g.group["kind"]: g.value for g in report.groups}
    assert by_kind == {"query": Decimal("4.6"), "job": Decimal("0.78"), "worker_session": 1}
    assert [b.values["Queries"] for b in report.buckets] == [
        Decimal("1.5"),
        Decimal("3"),
        Decimal("0.1"),
    ]
    tokens = client.get_usage_report(
        START, END, metric="tokens", filters={"member": "ana@x.example"}, bucket="1w"
    )
    assert tokens.total == 121 and len(tokens.buckets) == 2
    with pytest.raises(console.BadRequestError) as error:
        client.get_usage_report(START, END, bucket="1h", metric="tokens", group_by=["team"])
    assert error.value.field == "group_by"
    # One project (the Default): grouped by it, one group of the whole figure; the
    # `project` parameter is filter[project].
    default = _key.project
    by_project = client.get_usage_report(START, END, group_by="project", project=default.pk)
    assert [(g.group["project"], g.group["project_name"]) for g in by_project.groups] == [
        (default.pk, "Default")
    ]
    assert by_project.total == Decimal("6.38")


def test_projects_calls(world):
    names = [p.name for p in console.list_projects()]
    assert names == ["Default"]
    research = console.create_project("Research", description="The lab")
    assert research.name == "Research" and not research.archived and research.active_keys == 0
    assert console.get_project(research.id) == research
    assert (research.rate_limit_rpm, research.rate_limit_tpm) == (None, None)
    limited = console.update_project(research.id, rate_limit_rpm=600, rate_limit_tpm=90_000)
    assert (limited.rate_limit_rpm, limited.rate_limit_tpm) == (600, 90_000)
    cleared = console.update_project(research.id, rate_limit_tpm=None)  # rpm left as it is
    assert (cleared.rate_limit_rpm, cleared.rate_limit_tpm) == (600, None)
    with pytest.raises(console.BadRequestError) as bad:
        console.update_project(research.id, rate_limit_rpm=0)
    assert bad.value.field == "rate_limit_rpm"
    archived = console.update_project(research.id, name="Research lab", archived=True)
    assert archived.name == "Research lab" and archived.archived
    assert [p.name for p in console.list_projects(archived=True)] == ["Research lab"]
    default = console.list_projects(archived=False)[0]
    keys = console.list_api_keys()
    assert keys and {(k.project_name, k.project_id) for k in keys} == {("Default", default.id)}
    assert console.list_api_keys(project=research.id) == []
    with pytest.raises(console.NotFoundError):
        console.get_project(world.other.projects.get().pk)
