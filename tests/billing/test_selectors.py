from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import Tier
from billing.models import WorkerType
from billing.selectors import (
    MonthDebits,
    finance_overview,
    remaining_usage_time_for,
    runway_for,
    usage_debits_by_model,
    usage_debits_by_month,
)
from billing.services import ledger_post
from core.calendar import month_starts
from tests.factories import make_org, make_payment

pytestmark = pytest.mark.django_db

D = Decimal
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # a Saturday


def post(org, amount, key, *, at=None, kind=None, model=""):
    kind = kind or ("usage" if D(amount) < 0 else "grant")
    return ledger_post(
        org=org,
        kind=kind,
        amount=D(amount),
        reason="test",
        idempotency_key=key,
        at=at,
        model_name=model,
    )


# ------------------------------------------------------------ pure calculations


@pytest.mark.parametrize(
    ("balance", "rate", "days", "hours"),
    [
        ("100", "0.50", 8, 8),  # 200 h = 8 d 8 h
        ("48", "2", 1, 0),  # 24 h
        ("0.99", "0.50", 0, 1),  # 1.98 h rounds down to 1
        ("0.10", "0.50", 0, 0),
        ("-5", "0.50", 0, 0),  # a negative balance buys no time
    ],
)
def test_remaining_usage_time_is_balance_over_the_default_rate(balance, rate, days, hours):
    worker = WorkerType(name="std", hourly_rate=D(rate))
    result = remaining_usage_time_for(balance=D(balance), worker_type=worker)
    assert (result.days, result.hours) == (days, hours)


def test_no_usage_time_without_a_default_worker_type():
    assert remaining_usage_time_for(balance=D("10"), worker_type=None) is None


def test_runway_at_the_trailing_seven_day_burn():
    # 70 credits used in 7 days = 10 a day; 120 credits last 12 days from Sat 21 Nov
    # noon: Thu 3 Dec at noon.
    runway = runway_for(balance=D("120"), burn_last_7_days=D("70"), now=NOW, tz=UTC)
    assert runway.daily_burn == D("10")
    assert runway.runs_out_on == date(2026, 12, 3)
    assert not runway.no_recent_usage


def test_runway_without_recent_usage_exhausted_and_far_away():
    assert runway_for(balance=D("5"), burn_last_7_days=D("0"), now=NOW, tz=UTC).no_recent_usage
    used_up = runway_for(balance=D("0"), burn_last_7_days=D("7"), now=NOW, tz=UTC)
    assert used_up.exhausted and used_up.runs_out_on == date(2026, 11, 21)
    far = runway_for(balance=D("1000000"), burn_last_7_days=D("0.07"), now=NOW, tz=UTC)
    assert far.beyond_horizon and far.runs_out_on is None


def test_runway_date_is_in_the_organizations_time_zone():
    # 1 credit at 1 credit a day runs out 24 h later: Sun 22 Nov 12:00 UTC, which is
    # already Mon 23 Nov 01:00 in Auckland (UTC+13 in November).
    runway = runway_for(
        balance=D("1"), burn_last_7_days=D("7"), now=NOW, tz=ZoneInfo("Pacific/Auckland")
    )
    assert runway.runs_out_on == date(2026, 11, 23)


def test_month_starts_are_dense_and_end_with_this_month():
    starts = month_starts(now=NOW, tz=UTC, months=3)
    assert starts == [date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)]


# --------------------------------------------------------------------- from the DB


@time_machine.travel(NOW, tick=False)
def test_finance_overview_figures():
    org = make_org(tier=Tier.STARTUP)
    post(org, "200", "g", at=NOW - timedelta(days=30))
    post(org, "-21", "u-old", at=NOW - timedelta(days=8))  # outside the 7 days
    post(org, "-30", "u1", at=NOW - timedelta(days=6))
    post(org, "-12", "u2", at=NOW - timedelta(hours=1))
    post(org, "5", "adj", kind="adjustment", at=NOW - timedelta(days=2))
    post(org, "-4", "adj2", kind="adjustment", at=NOW - timedelta(days=2))  # not usage
    overview = finance_overview(org=org)
    # 200 - 21 - 30 - 12 + 5 - 4 = 138
    assert overview.credit_balance == D("138")
    # default worker (migration 0002): 0.50 an hour -> 276 h = 11 d 12 h
    assert overview.remaining_usage_time.worker_type == "standard"
    assert (overview.remaining_usage_time.days, overview.remaining_usage_time.hours) == (11, 12)
    # burn (30 + 12) / 7 = 6 a day; 138 / 6 = 23 days from Sat 21 Nov noon -> 14 Dec
    assert overview.runway.daily_burn == D("6")
    assert overview.runway.runs_out_on == date(2026, 12, 14)
    assert overview.last_payment_at is None


@time_machine.travel(NOW, tick=False)
def test_last_payment_is_the_latest_successful_one():
    org = make_org()
    make_payment(org=org, amount_minor=1000)
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        make_payment(org=org, amount_minor=1000, number="4000000000000002")  # declined
    assert finance_overview(org=org).last_payment_at == NOW


def test_spend_by_month_and_model():
    org = make_org(tier=Tier.ENTERPRISE, allow_overdraft=True)
    post(org, "-1.25", "a", at=datetime(2026, 11, 3, tzinfo=UTC), model="llama-3.1-8b")
    post(org, "-2.75", "b", at=datetime(2026, 11, 20, tzinfo=UTC), model="llama-3.1-70b")
    post(org, "-4", "c", at=datetime(2026, 9, 30, 23, tzinfo=UTC), model="llama-3.1-70b")
    post(org, "-0.5", "d", at=datetime(2026, 9, 1, tzinfo=UTC))
    post(org, "-9", "old", at=datetime(2025, 11, 30, tzinfo=UTC), model="phi-3-mini")  # 12+ mo
    post(org, "100", "g", at=datetime(2026, 10, 5, tzinfo=UTC))  # not spend
    months = usage_debits_by_month(org=org, months=12, now=NOW)
    assert len(months) == 12
    assert months[0] == MonthDebits(date(2025, 12, 1), D("0"))
    by_month = {m.month: m.credits for m in months}
    assert by_month[date(2026, 11, 1)] == D("4")  # 1.25 + 2.75
    assert by_month[date(2026, 10, 1)] == D("0")
    assert by_month[date(2026, 9, 1)] == D("4.5")  # 4 + 0.5


@pytest.mark.parametrize("rolled_up", [False, True], ids=["raw", "rolled-up"])
def test_spend_by_model_sums_the_charged_usage_records_of_the_last_12_months(rolled_up):
    from rollups.services.days import rollup_day
    from tests.factories import make_job, make_query, make_worker_session

    org = make_org(tier=Tier.ENTERPRISE, allow_overdraft=True)
    other = make_org()
    at = datetime(2026, 11, 3, tzinfo=UTC)
    make_query(org=org, occurred_at=at, model="llama-3.1-8b", credits="1.25")
    make_query(org=org, occurred_at=at, model="llama-3.1-70b", credits="2.75")
    make_worker_session(
        org=org,
        started_at=at,
        ended_at=at + timedelta(hours=1),
        model="llama-3.1-70b",
        credits=D("4"),
    )
    make_job(org=org, submitted_at=at, credits="0.5")
    make_query(org=org, occurred_at=datetime(2025, 11, 30, tzinfo=UTC), credits="9")  # 12+ months
    make_query(org=other, occurred_at=at, model="phi-3-mini", credits="100")  # someone else's
    if rolled_up:  # the same figures when the days are read from the daily rollups
        for day in (date(2026, 11, 3), date(2025, 11, 30)):
            rollup_day(org=org, day=day)
            rollup_day(org=other, day=day)
    models = [(m.model_name, m.credits) for m in usage_debits_by_model(org=org, months=12, now=NOW)]
    assert models == [
        ("llama-3.1-70b", D("6.75")),
        ("llama-3.1-8b", D("1.25")),
        ("Jobs (core-hours)", D("0.5")),
    ]


def test_spend_by_month_uses_the_organizations_time_zone():
    # 30 Sep 23:00 UTC is already 1 Oct in Berlin.
    org = make_org(tier=Tier.ENTERPRISE, allow_overdraft=True, time_zone="Europe/Berlin")
    post(org, "-4", "c", at=datetime(2026, 9, 30, 23, tzinfo=UTC))
    by_month = {m.month: m.credits for m in usage_debits_by_month(org=org, months=3, now=NOW)}
    assert by_month == {date(2026, 9, 1): D("0"), date(2026, 10, 1): D("4"), date(2026, 11, 1): 0}
