"""Monthly statements: figures worked out by hand for two months in Berlin (edges,
a payment and its refund, usage by model and key, late usage, an operator's restatement
after issue); a property test over six months of random activity; the documents (HTML,
PDF read back with pypdf, CSV) and the task that issues them and emails the link."""

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from accounts.models import Role, Tier
from billing.models import Statement
from billing.services import (
    BillingDetailsFields,
    StatementError,
    billing_details_update,
    ledger_post,
    payment_refund,
    statement_issue,
)
from ingest.services.ingest import usage_records_ingest
from tests.factories import make_api_key, make_member, make_org, make_payment

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def query(client_id, model, tokens_in, tokens_out, occurred):
    return {"id": client_id, "kind": "query", "model": model, "input_tokens": tokens_in,
            "output_tokens": tokens_out, "occurred_at": occurred.isoformat()}  # fmt: skip


@pytest.fixture
def two_months():
    """January and February 2026 in Berlin (UTC+1), every amount chosen by hand."""
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    org.time_zone = "Europe/Berlin"
    org.save()
    key, _ = make_api_key(org=org, name="K1")
    billing_details_update(
        org=org, actor=owner.user,
        fields=BillingDetailsFields(legal_name="Acme Labs GmbH", address="Hauptstr. 1, Berlin",
                                    country="Germany", tax_id="DE123456789"),
    )  # fmt: skip
    # Jan 1 00:00 local (Dec 31 23:00 UTC): January's.
    ledger_post(org=org, kind="grant", amount=D("100"), reason="Welcome credits",
                idempotency_key="g1", at=berlin(2026, 1, 1))  # fmt: skip
    with time_machine.travel(berlin(2026, 1, 15, 12), tick=False):
        payment = make_payment(org=org, amount_minor=2500)  # +25
    with time_machine.travel(berlin(2026, 1, 20, 9), tick=False):
        # 5M tokens of llama-3.1-8b at 0.10/M = 0.50 with K1; 1M of 70b at 0.90 = 0.90.
        usage_records_ingest(org=org, api_key=key,
                             records=[query("q1", "llama-3.1-8b", 2_000_000, 3_000_000,
                                            berlin(2026, 1, 20, 8))])  # fmt: skip
        usage_records_ingest(org=org, records=[query("q2", "llama-3.1-70b", 1_000_000, 0,
                                                     berlin(2026, 1, 20, 8))])  # fmt: skip
    # The last microsecond of January, local: January's.
    last_instant = berlin(2026, 2, 1) - timedelta(microseconds=1)
    ledger_post(org=org, kind="adjustment", amount=D("-5"), reason="Credit correction",
                idempotency_key="a1", at=last_instant)  # fmt: skip
    with time_machine.travel(berlin(2026, 2, 1, 0, 0), tick=False):
        payment_refund(payment_id=payment.pk, actor=None)  # -25, February's
    january = statement_issue(org=org, month=JAN, now=berlin(2026, 2, 1, 2))
    # After January was issued: a January-dated adjustment (a restatement), and a query
    # that happened on January 30 arriving on February 3 (late usage, February's debit).
    ledger_post(org=org, kind="adjustment", amount=D("2"), reason="Late goodwill",
                idempotency_key="a2", at=berlin(2026, 1, 20))  # fmt: skip
    with time_machine.travel(berlin(2026, 2, 3, 10), tick=False):
        usage_records_ingest(org=org, api_key=key,
                             records=[query("q3", "llama-3.1-70b", 600_000, 400_000,
                                            berlin(2026, 1, 30, 23))])  # fmt: skip
    february = statement_issue(org=org, month=FEB, now=berlin(2026, 3, 1, 2))
    return owner, january, february


def test_january_by_hand(two_months):
    _owner, january, _ = two_months
    assert january.period_start == berlin(2026, 1, 1) and january.period_end == berlin(2026, 2, 1)
    assert january.opening_balance == D("0")
    # 100 + 25 - 0.50 - 0.90 - 5 = 118.60
    assert january.closing_balance == D("118.60")
    totals = january.content["totals"]
    assert {k: D(v) for k, v in totals.items()} == {
        "purchases": D("25"), "grants": D("100"), "refunds": D("0"), "adjustments": D("-5"),
        "usage": D("-1.40"), "restatements": D("0"),
    }  # fmt: skip
    usage = january.content["usage"]
    assert [(k, D(v)) for k, v in usage["by_kind"]] == [("Queries", D("-1.40"))]
    assert dict((k, D(v)) for k, v in usage["by_model"]) == {
        "llama-3.1-8b": D("-0.50"), "llama-3.1-70b": D("-0.90"),
    }  # fmt: skip
    by_key = {k.split(" (")[0]: D(v) for k, v in usage["by_api_key"]}
    assert by_key == {"K1": D("-0.50"), "Unattributed": D("-0.90")}
    assert january.buyer["legal_name"] == "Acme Labs GmbH"


def test_february_opens_at_januarys_close_and_shows_the_restatement(two_months):
    _owner, january, february = two_months
    assert february.opening_balance == january.closing_balance == D("118.60")
    # 118.60 - 25 (refund) - 0.90 (late query: 1M tokens of 70b) + 2 (restatement) = 94.70
    assert february.closing_balance == D("94.70")
    restatements = february.content["restatements"]
    assert [(r["date"], D(r["amount"])) for r in restatements] == [("2026-01-20", D("2"))]
    assert "recorded after its statement" in restatements[0]["description"]
    assert D(february.content["usage"]["occurred_before"]) == D("-0.90")
    # January, issued before, never changed (the ledger at its end is now 120.60).
    january.refresh_from_db()
    assert january.closing_balance == D("118.60") and D(
        january.content["totals"]["adjustments"]
    ) == D("-5")


def test_a_month_not_closed_or_out_of_order_is_refused(two_months):
    owner, _, _ = two_months
    with pytest.raises(StatementError):
        statement_issue(org=owner.organization, month=date(2026, 3, 1), now=berlin(2026, 3, 31))
    with pytest.raises(StatementError):
        statement_issue(org=owner.organization, month=date(2026, 5, 1), now=berlin(2026, 7, 1))
    again = statement_issue(org=owner.organization, month=JAN, now=berlin(2026, 7, 1))
    assert again.closing_balance == D("118.60")


def test_statement_page_pdf_and_csv_carry_the_same_figures(client, two_months):
    owner, january, february = two_months
    client.force_login(owner.user)
    slug = owner.organization.slug
    listing = client.get(reverse("billing:statements", args=[slug])).content.decode()
    assert "January 2026" in listing and "February 2026" in listing
    html = client.get(reverse("billing:statement", args=[slug, february.pk])).content.decode()
    assert "118.60" in html and "94.70" in html and "Restatements" in html
    response = client.get(reverse("billing:statement_pdf", args=[slug, february.pk]))
    assert response["Content-Type"] == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    for expected in ("Statement S-2026-02", "Opening balance", "118.60", "-25.00", "+2.00",
                     "Closing balance", "94.70", "Acme Labs GmbH", "DE123456789"):  # fmt: skip
        assert expected in text, expected
    csv = client.get(reverse("billing:statement_csv", args=[slug, january.pk]))
    rows = [
        line.split(",") for line in b"".join(csv.streaming_content).decode("utf-8-sig").splitlines()
    ]
    assert rows[0] == ["section", "date", "description", "amount"]
    assert D(rows[1][3]) == D("0") and rows[1][0] == "opening_balance"
    closing = next(r for r in rows if r[0] == "closing_balance")
    assert D(closing[3]) == D("118.60")
    body = sum(D(r[-1]) for r in rows[2:] if r[0] in {"purchase", "grant", "adjustment", "usage"})
    assert body == D("118.60")


def test_the_task_issues_closed_months_and_mails_owners_and_billing_a_link(
    django_capture_on_commit_callbacks,
):
    from billing.tasks import statements_issue_due_all

    owner = make_member(role=Role.OWNER)
    org = owner.organization
    make_member(org=org, role=Role.BILLING, user=None)
    make_member(org=org, role=Role.MEMBER)
    ledger_post(org=org, kind="grant", amount=D("10"), reason="start", idempotency_key="s",
                at=datetime(2026, 3, 10, tzinfo=UTC))  # fmt: skip
    with time_machine.travel(datetime(2026, 5, 1, 0, 20, tzinfo=UTC), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            statements_issue_due_all.delay()
        months = list(Statement.objects.filter(organization=org).values_list("month", flat=True))
        assert sorted(months) == [date(2026, 3, 1), date(2026, 4, 1)]
        assert len(mail.outbox) == 2
        message = mail.outbox[0]
        billing_email = org.memberships.get(role=Role.BILLING).user.email
        assert sorted(message.to) == sorted([owner.user.email, billing_email])
        assert "/finance/statements/" in message.body and not message.attachments
        with django_capture_on_commit_callbacks(execute=True):
            statements_issue_due_all.delay()  # again: nothing new, nothing sent
        assert Statement.objects.filter(organization=org).count() == 2 and len(mail.outbox) == 2


# The property: six months of random activity, edges and late entries --------------------

ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
MONTHS = [date(2026, m, 1) for m in range(1, 7)]
op = st.tuples(
    st.sampled_from(["grant", "purchase", "usage", "refund", "adjustment"]),
    st.integers(min_value=-5000, max_value=5000).filter(bool),  # cents
    st.sampled_from(["start", "middle", "end"]),  # where in its month it is dated
    st.integers(min_value=0, max_value=5),  # the month it is dated in
    st.booleans(),  # posted late: after that month's statement was issued
)


def _amount(kind, cents):
    value = D(abs(cents)) / 100
    return -value if kind in {"usage", "refund"} or (kind == "adjustment" and cents < 0) else value


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(zone=st.sampled_from(ZONES), ops=st.lists(op, max_size=30))
def test_statement_chain_property(zone, ops):
    org = make_org(tier=Tier.ENTERPRISE, allow_overdraft=True, time_zone=zone)
    tz = ZoneInfo(zone)
    nxt = [date(m.year + (m.month == 12), m.month % 12 + 1, 1) for m in MONTHS]
    bounds = [
        (datetime(m.year, m.month, 1, tzinfo=tz), datetime(e.year, e.month, 1, tzinfo=tz))
        for m, e in zip(MONTHS, nxt, strict=True)
    ]
    posted: list[tuple[datetime, D]] = []  # the reference ledger, in posting order
    issued: dict[int, tuple] = {}
    seq = 0

    def post(kind, amount, at):
        nonlocal seq
        seq += 1
        ledger_post(org=org, kind=kind, amount=amount, reason=f"{kind} {seq}",
                    idempotency_key=f"k{seq}", at=at)  # fmt: skip
        posted.append((at, amount))

    def dated(where, month):
        start, end = bounds[month]
        return {"start": start, "end": end - timedelta(microseconds=1),
                "middle": start + (end - start) / 2}[where]  # fmt: skip

    for n, (_start, end) in enumerate(bounds):
        for kind, cents, where, month, late in ops:
            if month == n and not late:
                post(kind, _amount(kind, cents), dated(where, month))
        # Entries posted after earlier months' statements, dated in those months.
        for kind, cents, where, month, late in ops:
            if late and month == n - 1:
                post(kind, _amount(kind, cents), dated(where, month))
        statement = statement_issue(org=org, month=MONTHS[n], now=end + timedelta(hours=1))
        expected_closing = sum((a for at, a in posted if at < end), D("0"))
        assert statement.closing_balance == expected_closing
        if n:
            assert statement.opening_balance == issued[n - 1][1]
        issued[n] = (statement.pk, statement.closing_balance, statement.content)
    for _n, (pk, closing, content) in issued.items():
        again = Statement.objects.get(pk=pk)
        assert (again.closing_balance, again.content) == (closing, content)
    # What the statements state adds up to the whole ledger dated before June's end,
    # except what was dated in June and posted after June's statement (none here).
    last = Statement.objects.get(pk=issued[5][0])
    assert last.closing_balance == sum((a for at, a in posted if at < bounds[5][1]), D("0"))
