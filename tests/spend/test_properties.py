"""Property: for random sequences of authorize, settle, expire, budget changes and period
roll-overs, spent + reserved never passes a hard level (the organization's, a key's, a
member's or a project's; beyond what a lowered level already found), and every budget's
figures equal an independent sum of the records and the reservations."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import PriceModel
from ingest.services.ingest import usage_records_ingest
from spend.models import Budget, Reservation
from spend.selectors.budgets import budget_figures
from spend.services.authorize import request_authorize
from spend.services.holds import reservations_expire, spend_lock
from tests.factories import grant_credits, make_api_key, make_org, make_project
from usage.models import Query

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)  # a Friday evening, near month end
MEMBERS = ["ana@example.com", "bo@example.com"]

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("auth"),
            st.integers(0, 1),
            st.integers(0, 1),
            st.integers(0, 400_000),
            st.integers(0, 400_000),
        ),
        st.tuples(st.just("settle"), st.integers(0, 20), st.integers(0, 100)),
        st.tuples(st.just("expire")),
        st.tuples(st.just("cap"), st.integers(0, 3), st.integers(0, 30)),
        st.tuples(st.just("roll"), st.integers(1, 30)),
    ),
    max_size=25,
)


def _independent(budget: Budget, now: datetime) -> tuple[Decimal, Decimal]:
    """Spent in the budget's period from the stored queries (charged when their batch
    arrived), reserved from the held reservations: by hand, in UTC."""
    day = now.date()
    first = {
        "day": day,
        "week": day - timedelta(days=day.weekday()),
        "month": day.replace(day=1),
    }[budget.period]
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    records = Query.objects.filter(organization=budget.organization, batch__received_at__gte=start)
    holds = Reservation.objects.filter(organization=budget.organization, status="held")
    if budget.scope == "api_key":
        records, holds = (
            records.filter(api_key=budget.api_key),
            holds.filter(api_key=budget.api_key),
        )
    elif budget.scope == "member":
        records, holds = records.filter(member=budget.member), holds.filter(member=budget.member)
    elif budget.scope == "project":  # through the keys' project, not the rows' own column
        records, holds = (
            records.filter(api_key__project=budget.project),
            holds.filter(api_key__project=budget.project),
        )
    return (
        sum(records.values_list("credits", flat=True), Decimal(0)),
        sum(holds.values_list("credits", flat=True), Decimal(0)),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops)
def test_spent_plus_reserved_stays_within_hard_levels_and_equals_the_ledger(steps):
    with time_machine.travel(START, tick=False) as clock:
        org = make_org()
        grant_credits(org=org, amount="1000")
        project = make_project(org=org, name="Other")
        keys = [make_api_key(org=org)[0], make_api_key(org=org, project=project)[0]]
        model = PriceModel.objects.get(name="llama-3.1-8b")
        unit = Decimal("0.01")
        budgets = [
            Budget.objects.create(organization=org, scope="organization", period="day",
                                  soft_limit=0, hard_limit=20 * unit),
            Budget.objects.create(organization=org, scope="api_key", api_key=keys[0],
                                  period="week", soft_limit=0, hard_limit=12 * unit),
            Budget.objects.create(organization=org, scope="member", member=MEMBERS[1],
                                  period="month", soft_limit=0, hard_limit=9 * unit),
            Budget.objects.create(organization=org, scope="project", project=project,
                                  period="day", soft_limit=0, hard_limit=7 * unit),
        ]  # fmt: skip
        bound = {b.pk: b.hard_limit for b in budgets}  # the cap, or the sum a cut found
        held: list[Reservation] = []
        n = 0
        for step in steps:
            now = datetime.now(UTC)
            if step[0] == "auth":
                _, k, m, tokens_in, tokens_out = step
                verdict = request_authorize(
                    key=keys[k], model=model, input_tokens=tokens_in,
                    max_output_tokens=tokens_out, member=MEMBERS[m],
                )  # fmt: skip
                if verdict.allowed:
                    held.append(verdict.reservation)
            elif step[0] == "settle" and held:
                r = held.pop(step[1] % len(held))
                r.refresh_from_db()
                fraction = step[2] / 100
                n += 1
                record = {
                    "id": f"q-{n}", "kind": "query", "occurred_at": now.isoformat(),
                    "model": "llama-3.1-8b", "member": r.member, "reservation": r.public_id,
                    "input_tokens": int(r.tokens * fraction), "output_tokens": 0,
                }  # fmt: skip
                assert usage_records_ingest(org=org, records=[record], api_key=r.api_key).accepted
            elif step[0] == "expire":
                clock.shift(timedelta(minutes=11))
                spend_lock(org.pk)
                reservations_expire(org_id=org.pk)
                # An expired reservation authorizes nothing any more: usage sent with it
                # now is unreserved (stored, flagged over cap), outside this property.
                held = [r for r in held if r.expires_at > datetime.now(UTC)]
            elif step[0] == "cap":
                b = budgets[step[1]]
                b.hard_limit = step[2] * unit
                b.save()
                spent, reserved = _independent(b, now)
                bound[b.pk] = max(b.hard_limit, spent + reserved)
            elif step[0] == "roll":
                clock.shift(timedelta(hours=step[1]))
            now = datetime.now(UTC)
            figures = {f.budget.pk: f for f in budget_figures(org=org, budgets=budgets, now=now)}
            for b in budgets:
                spent, reserved = _independent(b, now)
                f = figures[b.pk]
                assert (f.spent, f.reserved) == (spent, reserved), (b.scope, step)
                assert spent + reserved <= bound[b.pk], (b.scope, step)
                # A cut level stays the bound only until the sum falls under it.
                bound[b.pk] = max(b.hard_limit, min(bound[b.pk], spent + reserved))
