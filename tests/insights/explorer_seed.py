"""Organization, keys, controller and records for the explorer's tests and its API's.

The organization is in New York, where DST ended on 2026-11-01 at 02:00 (01:00-02:00
happened twice). Figures over [START, END) are added up by hand in the tests.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from tests.factories import (
    make_api_key,
    make_controller,
    make_job,
    make_org,
    make_query,
    make_worker_session,
)

NOW = datetime(2026, 11, 20, 14, 40, tzinfo=UTC)
# 2026-10-31 12:45 EDT to 2026-11-02 10:30 EST.
START = datetime(2026, 10, 31, 16, 45, tzinfo=UTC)
END = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)
D = Decimal


@pytest.fixture
def explorer_seeded():
    """The seeded organization, with the clock at NOW (registered in tests/conftest.py)."""
    with time_machine.travel(NOW, tick=False):
        yield _seed()


def _seed() -> dict:
    org = make_org(time_zone="America/New_York")
    a, _secret = make_api_key(org=org, name="Alpha")
    b, _secret = make_api_key(org=org, name="Beta")
    dgx, _token = make_controller(org=org, name="dgx-01")

    def at(*args):
        return datetime(*args, tzinfo=UTC)

    # Before the range: the previous period (2026-10-29 18:00 to 10-31 16:45 UTC).
    make_query(org=org, occurred_at=at(2026, 10, 30, 12), api_key=a, credits="2.00")
    # Oct 31 13:10 EDT
    make_query(
        org=org,
        occurred_at=at(2026, 10, 31, 17, 10),
        api_key=a,
        member="ana@x.example",
        endpoint="/v1/chat",
        input_tokens=100,
        output_tokens=10,
        credits="1.50",
    )
    # Nov 1 01:30 EDT (the first 01:30)
    make_query(
        org=org,
        occurred_at=at(2026, 11, 1, 5, 30),
        model="llama-3.1-70b",
        api_key=b,
        member="bo@x.example",
        input_tokens=200,
        output_tokens=20,
        credits="2.25",
    )
    # Nov 1 01:30 EST (the second 01:30): no key, no member
    make_query(
        org=org,
        occurred_at=at(2026, 11, 1, 6, 30),
        input_tokens=50,
        output_tokens=5,
        credits="0.75",
    )
    # Nov 2 10:00 EST; and one at 10:40 EST, after the range's end
    make_query(
        org=org,
        occurred_at=at(2026, 11, 2, 15),
        api_key=a,
        member="ana@x.example",
        input_tokens=10,
        output_tokens=1,
        credits="0.10",
    )
    make_query(org=org, occurred_at=at(2026, 11, 2, 15, 40), api_key=a, credits="9.00")
    # Jobs: Nov 1 12:00 EST on dgx-01; Oct 31 23:30 EDT managed
    make_job(
        org=org,
        submitted_at=at(2026, 11, 1, 17),
        controller=dgx,
        api_key=a,
        core_hours="2.5",
        credits="0.30",
    )
    make_job(
        org=org, submitted_at=at(2026, 11, 1, 3, 30), api_key=b, core_hours="4", credits="0.48"
    )
    # A worker from Oct 31 23:00 EDT to Nov 1 01:00 EDT: an hour on each local day.
    make_worker_session(
        org=org,
        started_at=at(2026, 11, 1, 3),
        ended_at=at(2026, 11, 1, 5),
        api_key=a,
        credits=D("1.00"),
    )
    return {"org": org, "a": a, "b": b, "dgx": dgx}
