"""Seeded records with known figures for the API tests (hand-computed in the tests).

The organization keeps its books in Europe/Berlin (UTC+1 in November), so "this month"
starts at 2026-10-31T23:00Z: the query at 23:30Z on 31 October belongs to November.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.models import Organization, Role, SessionToken, Tier, User
from accounts.services import session_token_issue
from tests.factories import (
    grant_credits,
    make_api_key,
    make_member,
    make_org,
    make_payment,
    make_query,
    make_user,
    make_worker_session,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RATE_HEADERS = tuple(
    f"X-RateLimit-{what}-{unit}"
    for unit in ("RPM", "TPM")
    for what in ("Limit", "Remaining", "Reset")
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ms(text: str) -> int:
    return int(at(text).timestamp() * 1000)


def make_matching(*, org, client_id, task, num_records, started_at, ended_at, **fields):
    from accounts.projects import project_default_for
    from usage.models import MatchingRun

    fields.setdefault("project", project_default_for(org=org))
    return MatchingRun.objects.create(
        organization=org,
        client_id=client_id,
        task=task,
        num_records=num_records,
        started_at=started_at,
        ended_at=ended_at,
        run_time_seconds=Decimal((ended_at - started_at).total_seconds()),
        **fields,
    )


@dataclass
class Seeded:
    org: Organization
    owner: User
    ana: User
    key_secret: str
    token_secret: str
    token: SessionToken
    other: Organization
    other_secret: str
    queries: dict
    matching: dict


def seed(frozen_now: datetime = NOW) -> Seeded:
    org = make_org(tier=Tier.STARTUP, time_zone="Europe/Berlin")
    owner = make_member(org=org, role=Role.OWNER).user
    ana = make_user(email="ana@example.com")
    make_member(org=org, user=ana, role=Role.MEMBER)
    grant_credits(org=org, amount="50")
    make_payment(org=org, amount_minor=2500)  # +25 credits, the last payment
    _, secret = make_api_key(org=org)
    issued = session_token_issue(user=owner, org=org)

    q = {
        "q1": make_query(org=org, client_id="q1", occurred_at=at("2026-11-20T10:00"),
                         model="llama-3.1-8b", input_tokens=25, output_tokens=100,
                         credits="0.0000125", member="ana@example.com",
                         endpoint="/v1/chat/completions"),
        "q2": make_query(org=org, client_id="q2", occurred_at=at("2026-11-19T09:00"),
                         model="llama-3.1-70b", input_tokens=1000, output_tokens=500,
                         credits="0.00135"),
        "q3": make_query(org=org, client_id="q3", occurred_at=at("2026-11-05T08:00"),
                         model="llama-3.1-8b", input_tokens=200, output_tokens=300,
                         credits="0.00005"),
        # 31 Oct 23:30 in Berlin: last month.
        "q4": make_query(org=org, client_id="q4", occurred_at=at("2026-10-31T22:30"),
                         model="llama-3.1-8b", input_tokens=7, output_tokens=7,
                         credits="0.0000014"),
        # 1 Nov 00:30 in Berlin: this month.
        "q5": make_query(org=org, client_id="q5", occurred_at=at("2026-10-31T23:30"),
                         model="llama-3.1-8b", input_tokens=10, output_tokens=10,
                         credits="0.000002"),
    }  # fmt: skip
    make_worker_session(
        org=org,
        client_id="w1",
        model="llama-3.1-8b",
        started_at=at("2026-11-20T08:00"),
        ended_at=at("2026-11-20T09:30"),
    )
    make_worker_session(
        org=org,
        client_id="w2",
        model="llama-3.1-8b",
        started_at=at("2026-11-19T23:00"),
        ended_at=at("2026-11-20T01:00"),
    )
    make_worker_session(
        org=org,
        client_id="w3",
        model="llama-3.1-70b",
        started_at=at("2026-11-20T10:00"),
        ended_at=at("2026-11-20T11:00"),
    )
    m = {
        "m1": make_matching(org=org, client_id="m1", task="IDR", num_records=5000,
                            started_at=at("2026-11-20T08:00"), ended_at=at("2026-11-20T08:02")),
        "m2": make_matching(org=org, client_id="m2", task="CDM", num_records=300,
                            started_at=at("2026-11-18T08:00"), ended_at=at("2026-11-18T08:01")),
        "m3": make_matching(org=org, client_id="m3", task="IDR", num_records=10,
                            started_at=at("2026-11-01T08:00"), ended_at=at("2026-11-01T08:00:30")),
    }  # fmt: skip

    other = make_org(tier=Tier.STARTUP)
    _, other_secret = make_api_key(org=other)
    q["theirs"] = make_query(org=other, client_id="q1", occurred_at=at("2026-11-20T10:00"),
                             input_tokens=99, output_tokens=1, credits="1")  # fmt: skip
    make_worker_session(org=other, client_id="w1", started_at=at("2026-11-20T08:00"),
                        ended_at=at("2026-11-20T11:00"))  # fmt: skip
    m["theirs"] = make_matching(org=other, client_id="m1", task="IDR", num_records=1,
                                started_at=at("2026-11-20T08:00"),
                                ended_at=at("2026-11-20T08:01"))  # fmt: skip
    return Seeded(
        org=org,
        owner=owner,
        ana=ana,
        key_secret=secret,
        token_secret=issued.secret,
        token=issued.token,
        other=other,
        other_secret=other_secret,
        queries=q,
        matching=m,
    )


@pytest.fixture
def seeded(frozen) -> Seeded:
    return seed()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
