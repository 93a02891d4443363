"""The panel's selectors against known records, with records on every window's edge."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from insights.selectors import chip as chip_selectors
from insights.selectors import panel as sel
from insights.selectors import panel_controllers, panel_keys
from insights.selectors import summaries as summaries_selectors
from tests.factories import make_job, make_org, make_query, make_worker_session
from tests.insights import panel_seed as seed
from tests.insights.panel_seed import NOW, WINDOW_STARTS
from usage.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return make_org(tier="developer")


@pytest.fixture
def seeded(org):
    return seed.seed(org)


WINDOWS = list(WINDOW_STARTS)


def test_the_24_hour_overview_by_hand(org, seeded):
    # Jobs 1 h, 2 h and exactly 24 h ago; the one 24 h + 1 µs ago and the one at now are out.
    assert sel.jobs_overview(org=org, start=WINDOW_STARTS["24h"], end=NOW) == sel.JobsOverview(
        submitted=3,
        completed=1,
        running=1,
        failed=1,
        cancelled=0,
        on_controllers=1,
        managed=2,
        core_hours_managed=D("1.5"),
        core_hours_byoc=D("2.5"),
        wasted_credits=D("0.18"),
        wasted_core_hours=D("1.5"),
    )


@pytest.mark.parametrize("window", WINDOWS)
def test_overview_matches_a_reference_count_in_every_window(org, seeded, window):
    overview = sel.jobs_overview(org=org, start=WINDOW_STARTS[window], end=NOW)
    expected = seed.expected_overview(window)
    assert {name: getattr(overview, name) for name in expected} == expected
    billed = expected["core_hours_managed"] + expected["core_hours_byoc"]
    assert overview.core_hours_billed == billed
    assert overview.failure_pressure == expected["failed"] + expected["cancelled"]


def test_another_organizations_jobs_never_count(org, seeded):
    other = make_org()
    make_job(org=other, submitted_at=NOW - timedelta(hours=1), core_hours="99")
    assert sel.jobs_overview(org=other, start=None, end=NOW).submitted == 1
    assert sel.jobs_overview(org=org, start=None, end=NOW).submitted == len(seed.jobs_in("all"))


def test_an_empty_window_is_all_zeros(org):
    assert sel.jobs_overview(org=org, start=None, end=NOW) == sel.JobsOverview()
    assert panel_keys.api_key_activity(org=org, start=None, end=NOW) == []
    assert sel.queries_by_model(org=org, start=None, end=NOW) == []
    assert panel_controllers.controller_load(org=org, start=None, end=NOW, now=NOW) == []
    assert sel.token_trend(org=org, start=None, end=NOW, tz="UTC").empty


@pytest.mark.parametrize("window", WINDOWS)
def test_api_key_cards_match_a_reference_count(org, seeded, window):
    cards = panel_keys.api_key_activity(org=org, start=WINDOW_STARTS[window], end=NOW)
    expected = seed.expected_keys(window)
    names = {"lab": "Lab workstation", "ci": "CI runner", None: "Unattributed"}
    by_name = {card.name: card for card in cards}
    assert set(by_name) == {names[key] for key in expected}
    for key, figures in expected.items():
        card = by_name[names[key]]
        assert {name: getattr(card, name) for name in figures} == figures, key
    # Unattributed work is its own card, after every key's.
    assert [c.unattributed for c in cards] == sorted(c.unattributed for c in cards)


def test_api_key_cards_carry_the_key_for_display(org, seeded):
    cards = {c.name: c for c in panel_keys.api_key_activity(org=org, start=None, end=NOW)}
    lab = seeded["keys"]["lab"]
    assert cards["Lab workstation"].display == lab.display
    assert cards["Lab workstation"].kind == "Workspace key"
    assert cards["CI runner"].kind == "Personal key"
    assert cards["Unattributed"].display == ""


def test_key_limits_come_from_the_key_else_the_tier_and_count_this_minute(org, seeded):

    from spend import ratelimit

    lab = seeded["keys"]["lab"]
    lab.rate_limit_rpm = 42
    lab.save(update_fields=["rate_limit_rpm"])
    state = ratelimit.ratelimit_request(key=lab)
    ratelimit.ratelimit_tokens(key=lab, state=state, tokens=1234)
    ratelimit.ratelimit_request(key=lab)
    cards = panel_keys.api_key_activity(org=org, start=None, end=NOW)
    loaded = {
        c.name: c for c in panel_keys.key_recent_load(org=org, cards=cards, start=None, end=NOW)
    }
    tier_rpm, tier_tpm = ratelimit.DEFAULT_RATE_LIMITS["developer"]
    assert (loaded["Lab workstation"].rate_limit_rpm, loaded["Lab workstation"].rate_limit_tpm) == (
        42,
        tier_tpm,
    )
    assert loaded["Lab workstation"].requests_last_minute == 2
    assert loaded["Lab workstation"].tokens_last_minute == 1234
    assert (loaded["CI runner"].rate_limit_rpm, loaded["CI runner"].requests_last_minute) == (
        tier_rpm,
        0,
    )


def test_key_cards_count_the_requests_refused_in_the_window(org, seeded):
    from spend.models import RateLimitRefusal

    lab = seeded["keys"]["lab"]
    start = NOW - timedelta(hours=24)
    for minute, count in [
        (start - timedelta(minutes=1), 5),  # before the window: not counted
        (start, 2),  # exactly on the window's start: counted
        (NOW - timedelta(minutes=3), 4),
        (NOW, 7),  # the window is half-open: not counted
    ]:
        RateLimitRefusal.objects.create(organization=org, api_key=lab, minute=minute, count=count)
    cards = panel_keys.api_key_activity(org=org, start=start, end=NOW)
    loaded = {
        c.name: c for c in panel_keys.key_recent_load(org=org, cards=cards, start=start, end=NOW)
    }
    assert loaded["Lab workstation"].refused == 6


@pytest.mark.parametrize("window", WINDOWS)
def test_controller_cards_match_a_reference_count(org, seeded, window):
    cards = panel_controllers.controller_load(
        org=org, start=WINDOW_STARTS[window], end=NOW, now=NOW
    )
    assert [c.name for c in cards] == ["dgx-01", "edge-02", "idle-03"]
    expected = seed.expected_controllers(window)
    for card in cards:
        figures = expected[card.name]
        assert {name: getattr(card, name) for name in figures} == figures, card.name
    assert [c.online for c in cards] == [True, False, False]
    assert (cards[0].cores, cards[0].memory_gb) == (64, 256)


def test_timeline_has_fourteen_days_with_zeros_and_the_days_by_hand(org, seeded):
    days = sel.job_timeline(org=org, now=NOW, tz="UTC")
    assert [d.day for d in days] == [date(2026, 11, 8) + timedelta(days=i) for i in range(14)]
    by_day = {d.day: d for d in days}
    # 21 Nov: 1 h ago (dgx-01, 2.5), 2 h ago (running) and the one at now (1.0 managed).
    assert by_day[date(2026, 11, 21)] == sel.JobDay(
        date(2026, 11, 21), 3, 2, 0, 0, D("1"), D("2.5")
    )
    # 20 Nov: the failed one exactly 24 h ago and the cancelled one on edge-02.
    assert by_day[date(2026, 11, 20)] == sel.JobDay(
        date(2026, 11, 20), 2, 0, 1, 1, D("1.5"), D("0.25")
    )
    assert by_day[date(2026, 11, 18)] == sel.JobDay(date(2026, 11, 18), 1, 1, 0, 0, D("4"), D(0))
    assert by_day[date(2026, 11, 14)] == sel.JobDay(date(2026, 11, 14), 2, 0, 1, 0, D(0), D("3"))
    empty = [d for d in days if d.day not in {date(2026, 11, n) for n in (14, 18, 20, 21)}]
    assert len(empty) == 10
    assert all(d == sel.JobDay(d.day) for d in empty)


def test_timeline_days_are_the_organizations_calendar_days(org):
    tz = "America/Los_Angeles"  # UTC-8 in November
    make_job(org=org, submitted_at=datetime(2026, 11, 21, 7, 59, 59, tzinfo=UTC))  # 20 Nov local
    make_job(org=org, submitted_at=datetime(2026, 11, 21, 8, 0, tzinfo=UTC))  # 21 Nov local
    make_job(org=org, submitted_at=datetime(2026, 11, 8, 8, 0, tzinfo=UTC))  # first day, 00:00
    make_job(org=org, submitted_at=datetime(2026, 11, 8, 7, 59, 59, tzinfo=UTC))  # 7 Nov: out
    days = {d.day: d.submitted for d in sel.job_timeline(org=org, now=NOW, tz=tz)}
    assert len(days) == 14
    assert (days[date(2026, 11, 20)], days[date(2026, 11, 21)], days[date(2026, 11, 8)]) == (
        1,
        1,
        1,
    )
    assert sum(days.values()) == 3


def test_tokens_month_to_date_counts_from_the_first_of_the_month(org, seeded):
    allocation = sel.tokens_month_to_date(org=org, now=NOW, tz="UTC")
    # November: 500 + 2,000 + 5,000 + 5,000 + 5 (1 Nov 00:00); not 31 Oct 23:59:59.999999.
    assert allocation.used == 12_505
    assert allocation.allocation == 5_000_000
    assert allocation.percent == pytest.approx(100 * 12_505 / 5_000_000)
    assert allocation.remaining == 5_000_000 - 12_505


def test_allocation_for_unlimited_and_full_tiers(org):
    enterprise = make_org(tier="enterprise")
    make_query(org=enterprise, occurred_at=NOW - timedelta(hours=1), input_tokens=10)
    unlimited = sel.tokens_month_to_date(org=enterprise, now=NOW, tz="UTC")
    assert (unlimited.allocation, unlimited.percent, unlimited.bar_percent) == (None, None, 0)
    free = make_org(tier="free")
    make_query(org=free, occurred_at=NOW, input_tokens=150_000, output_tokens=0)
    full = sel.tokens_month_to_date(org=free, now=NOW, tz="UTC")
    assert (full.percent, full.bar_percent, full.remaining) == (150.0, 100, 0)


@pytest.mark.parametrize("window", WINDOWS)
def test_usage_by_model_endpoint_and_member_match_a_reference_count(org, seeded, window):
    start = WINDOW_STARTS[window]
    models = sel.queries_by_model(org=org, start=start, end=NOW)
    assert {
        m.model: {"queries": m.queries, "tokens": m.total_tokens, "credits": m.credits}
        for m in models
    } == seed.expected_models(window)
    assert all(m.input_tokens + m.output_tokens == m.total_tokens for m in models)
    tokens = [m.total_tokens for m in models]
    assert tokens == sorted(tokens, reverse=True)
    endpoints = sel.top_endpoints(org=org, start=start, end=NOW)
    assert {
        e.name: {"queries": e.queries, "tokens": e.total_tokens} for e in endpoints
    } == seed.expected_groups(window, "endpoint")
    members = sel.usage_by_member(org=org, start=start, end=NOW)
    assert {
        m.name: {"queries": m.queries, "tokens": m.total_tokens} for m in members
    } == seed.expected_groups(window, "member")


def test_top_endpoints_keeps_the_busiest(org):
    for i in range(12):
        for _ in range(i + 1):
            make_query(org=org, occurred_at=NOW - timedelta(hours=1), endpoint=f"/v1/e{i}")
    endpoints = sel.top_endpoints(org=org, start=None, end=NOW)
    assert [e.name for e in endpoints] == [f"/v1/e{i}" for i in range(11, 1, -1)]


def test_token_trend_is_dense_per_model(org, seeded):
    trend = sel.token_trend(org=org, start=WINDOW_STARTS["24h"], end=NOW, tz="UTC")
    assert trend.days == [date(2026, 11, 20), date(2026, 11, 21)]
    assert trend.models == ["llama-3.1-70b", "llama-3.1-8b"]
    assert trend.tokens == {"llama-3.1-70b": [2000, 0], "llama-3.1-8b": [0, 500]}
    everything = sel.token_trend(org=org, start=None, end=NOW, tz="UTC")
    assert everything.days[0] == (NOW - timedelta(days=45)).date()
    assert everything.days[-1] == NOW.date()
    assert len(everything.days) == 46


# --- Main page summaries ------------------------------------------------------------

NY = "America/New_York"  # October 2026 in New York: 1 Oct 04:00 UTC to 1 Nov 04:00 UTC


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_worker_runtime_is_clipped_to_each_period(org):
    make_worker_session(
        org=org, started_at=_utc(2026, 11, 20, 14, 30), ended_at=_utc(2026, 11, 20, 16, 30)
    )  # crosses the daily start (20 Nov 15:30): 1 h daily
    make_worker_session(
        org=org,
        model="llama-3.1-70b",
        started_at=_utc(2026, 10, 1, 3),
        ended_at=_utc(2026, 10, 1, 5),
    )  # crosses the start of October in New York: 1 h monthly
    make_worker_session(
        org=org, started_at=_utc(2026, 11, 1, 3), ended_at=_utc(2026, 11, 1, 5)
    )  # crosses the end of October: 1 h monthly
    make_worker_session(
        org=org,
        model="e5-large-v2",
        started_at=_utc(2025, 6, 1, 10),
        ended_at=_utc(2025, 6, 1, 12, 30),
    )  # 2.5 h yearly
    make_worker_session(
        org=org, started_at=_utc(2026, 1, 1, 4), ended_at=_utc(2026, 1, 1, 6)
    )  # crosses the end of 2025 in New York (05:00 UTC): 1 h yearly
    make_worker_session(
        org=org, model="phi-3-mini", started_at=_utc(2024, 6, 1), ended_at=_utc(2024, 6, 2)
    )  # in no period

    summaries = summaries_selectors.usage_summaries(org=org, now=NOW, tz=NY)

    assert [p.key for p in summaries.periods] == ["daily", "monthly", "yearly"]
    assert summaries.periods[1].start == _utc(2026, 10, 1, 4)
    hour = timedelta(hours=1)
    assert [c.runtime for c in summaries.runtime_total.cells] == [hour, 2 * hour, 3.5 * hour]
    assert [c.sessions for c in summaries.runtime_total.cells] == [1, 2, 2]
    rows = {r.model: [c.runtime for c in r.cells] for r in summaries.runtime_rows}
    assert rows == {
        "e5-large-v2": [timedelta(0), timedelta(0), 2.5 * hour],
        "llama-3.1-70b": [timedelta(0), hour, timedelta(0)],
        "llama-3.1-8b": [hour, hour, hour],
    }


def test_query_summary_per_period_and_model(org):
    def q(at, model="llama-3.1-8b", tokens=(10, 20)):
        make_query(
            org=org, occurred_at=at, model=model, input_tokens=tokens[0], output_tokens=tokens[1]
        )

    q(NOW - timedelta(hours=24))  # daily: first instant
    q(NOW - timedelta(hours=24, microseconds=1))  # in no period
    q(_utc(2026, 10, 1, 4), model="llama-3.1-70b", tokens=(100, 0))  # monthly: first instant
    q(_utc(2026, 10, 1, 3, 59, 59, 999999), model="llama-3.1-70b")  # 30 Sep in New York
    q(_utc(2026, 11, 1, 4))  # November in New York: in no period
    q(_utc(2025, 1, 1, 5), model="e5-large-v2", tokens=(7, 0))  # yearly: first instant
    q(_utc(2025, 1, 1, 4, 59, 59), model="e5-large-v2")  # 2024 in New York
    q(_utc(2026, 1, 1, 4, 59, 59), model="phi-3-mini", tokens=(1, 1))  # still 2025 in New York

    summaries = summaries_selectors.usage_summaries(org=org, now=NOW, tz=NY)

    assert [(c.queries, c.total_tokens) for c in summaries.queries_total.cells] == [
        (1, 30),
        (1, 100),
        (2, 9),
    ]
    rows = {r.model: [c.queries for c in r.cells] for r in summaries.queries_rows}
    assert rows == {
        "e5-large-v2": [0, 0, 1],
        "llama-3.1-70b": [0, 1, 0],
        "llama-3.1-8b": [1, 0, 0],
        "phi-3-mini": [0, 0, 1],
    }


def test_summaries_are_empty_without_usage(org):
    summaries = summaries_selectors.usage_summaries(org=org, now=NOW, tz="UTC")
    assert summaries.runtime_empty and summaries.queries_empty
    assert [c.runtime for c in summaries.runtime_total.cells] == [timedelta(0)] * 3


def test_core_hour_balance_uses_the_default_worker_type():
    from billing.models import WorkerType

    worker = WorkerType.objects.get(is_default=True)
    expected = D("100") * worker.cores / worker.hourly_rate
    assert chip_selectors.core_hour_balance(credits=D("100")) == expected


def test_jobs_are_counted_in_the_window_they_were_submitted_in(org):
    # A job submitted before the window and finished inside it belongs to its own window.
    make_job(org=org, submitted_at=NOW - timedelta(days=2), ended_at=NOW - timedelta(hours=1))
    assert sel.jobs_overview(org=org, start=WINDOW_STARTS["24h"], end=NOW).submitted == 0
    assert Job.objects.count() == 1
