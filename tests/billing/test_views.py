import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from accounts.models import Role, Tier
from billing.models import LedgerEntry, Payment, PaymentStatus
from billing.services import ledger_post
from tests.factories import make_member, make_org, make_payment, make_query

pytestmark = pytest.mark.django_db

D = Decimal
SUCCESS, DECLINE, NO_FUNDS, ERROR = (
    "4242424242424242",
    "4000000000000002",
    "4000000000009995",
    "4000000000000119",
)


def url(name, org, *args):
    return reverse(f"billing:{name}", args=[org.slug, *args])


def owner_client(client, *, role=Role.OWNER, org=None):
    member = make_member(role=role, org=org or make_org(tier=Tier.STARTUP))
    client.force_login(member.user)
    return member


def start_payment(client, org, *, amount="25"):
    """Steps 1 and 2 as a browser does them; returns the details form's hidden fields."""
    assert client.get(url("add_credit", org)).status_code == 200
    response = client.get(url("add_credit_details", org), {"amount": amount})
    assert response.status_code == 200
    form = response.context["form"]
    return {
        "amount_minor": form.initial["amount_minor"],
        "idempotency_key": form.initial["idempotency_key"],
    }


def card_fields(number=SUCCESS, expiry="12/34", cvc="123"):
    return {"number": number, "expiry": expiry, "cvc": cvc, "name": "Ana Owner"}


def pay(client, org, *, number=SUCCESS, amount="25"):
    hidden = start_payment(client, org, amount=amount)
    response = client.post(url("add_credit_details", org), {**hidden, **card_fields(number)})
    assert response.status_code == 302, response.content
    confirm_url = response["Location"]
    page = client.get(confirm_url)
    assert page.status_code == 200
    response = client.post(confirm_url)
    assert response.status_code == 302
    return page, client.get(response["Location"]), hidden


# ------------------------------------------------------------------- the flow


@pytest.mark.parametrize(
    ("number", "status", "message"),
    [
        (SUCCESS, PaymentStatus.SUCCEEDED, "Payment succeeded"),
        (DECLINE, PaymentStatus.DECLINED, "Your card was declined"),
        (NO_FUNDS, PaymentStatus.DECLINED, "insufficient funds"),
        (ERROR, PaymentStatus.FAILED, "error occurred while processing"),
    ],
)
def test_each_sandbox_card_end_to_end_through_the_views(client, number, status, message):
    member = owner_client(client)
    org = member.organization
    ledger_post(org=org, kind="grant", amount=D("10"), reason="start", idempotency_key="g")
    confirm, result, _ = pay(client, org, number=number, amount="25")

    # The confirmation shows amount, credits and the balance after (10 + 25 = 35).
    assert confirm.context["payment"].amount_minor == 2500
    assert confirm.context["balance_after"] == D("35")
    assert b"$25.00" in confirm.content
    assert b"35.00" in confirm.content

    payment = Payment.objects.get(organization=org)
    assert payment.status == status
    assert message.encode() in result.content
    entries = list(LedgerEntry.objects.filter(organization=org).values_list("kind", "amount"))
    if status == PaymentStatus.SUCCEEDED:
        assert sorted(entries) == [("grant", D("10")), ("purchase", D("25"))]
        assert result.context["overview"].credit_balance == D("35")
        assert result.context["chip"].credit_balance == D("35")  # the session chip
    else:
        assert entries == [("grant", D("10"))]  # the ledger is unchanged
        assert b"Nothing was charged" in result.content


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"amount": "custom", "custom_amount": "4.99"}, "Choose an amount from $5.00"),
        ({"amount": "custom", "custom_amount": "10000.01"}, "Choose an amount from $5.00"),
        ({"amount": "custom", "custom_amount": "abc"}, "Enter a number"),
        ({"amount": "custom"}, "Choose an amount or enter one"),
        ({"amount": "13"}, "Select a valid choice"),
    ],
)
def test_amount_step_errors(client, params, error):
    org = owner_client(client).organization
    response = client.get(url("add_credit_details", org), params)
    assert response.status_code == 200
    assert response.templates[0].name == "billing/add_credit_amount.html"
    assert error.encode() in response.content


@pytest.mark.parametrize(
    ("params", "amount_minor"),
    [
        ({"amount": "", "custom_amount": "12.34"}, 1234),
        ({"amount": "custom", "custom_amount": "12.345"}, None),  # cents only
        ({"amount": "25", "custom_amount": "12.34"}, 1234),  # typed wins over the preset
        ({"amount": "100", "custom_amount": ""}, 10000),
    ],
)
def test_amounts_are_carried_in_cents(client, params, amount_minor):
    org = owner_client(client).organization
    response = client.get(url("add_credit_details", org), params)
    form = response.context["form"]
    assert form.initial.get("amount_minor") == amount_minor


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (card_fields(number="4242424242424241"), "not valid"),
        (card_fields(expiry="01/20"), "expired"),
        (card_fields(expiry="2/2"), "MM/YY"),
        (card_fields(cvc="12"), "3 digits"),
        (card_fields(number="4012888888881881"), "test card numbers"),
    ],
)
def test_card_errors_show_on_the_form_and_create_nothing(client, fields, error):
    org = owner_client(client).organization
    hidden = start_payment(client, org)
    response = client.post(url("add_credit_details", org), {**hidden, **fields})
    assert response.status_code == 200
    assert error.encode() in response.content
    assert not Payment.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_tampered_amount_is_refused(client):
    org = owner_client(client).organization
    hidden = start_payment(client, org)
    response = client.post(
        url("add_credit_details", org), {**hidden, **card_fields(), "amount_minor": "1"}
    )
    assert response.status_code == 200
    assert not Payment.objects.exists()


def test_double_submit_and_back_and_resubmit_charge_once(client):
    org = owner_client(client).organization
    hidden = start_payment(client, org, amount="50")
    details = url("add_credit_details", org)
    first = client.post(details, {**hidden, **card_fields()})
    second = client.post(details, {**hidden, **card_fields()})  # double click
    assert first["Location"] == second["Location"]
    confirm_url = first["Location"]
    client.post(confirm_url)
    client.post(confirm_url)  # double click on Pay
    # Back to the details page and submit the same form again.
    resubmit = client.post(details, {**hidden, **card_fields()})
    payment = Payment.objects.get(organization=org)
    assert resubmit["Location"] == url("payment", org, payment.pk)
    assert Payment.objects.count() == 1
    assert list(LedgerEntry.objects.values_list("amount", flat=True)) == [D("50")]


def test_after_a_decline_the_customer_can_try_another_card(client):
    org = owner_client(client).organization
    _, result, _ = pay(client, org, number=DECLINE)
    assert b"Try another card" in result.content
    _, result, _ = pay(client, org, number=SUCCESS)
    assert Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() == 1
    assert result.context["overview"].credit_balance == D("25")


def test_flow_works_without_javascript_forms_have_real_actions(client):
    org = owner_client(client).organization
    page = client.get(url("add_credit", org)).content.decode()
    assert f'action="{url("add_credit_details", org)}"' in page
    assert 'method="get"' in page


# ------------------------------------------------------------- roles and scoping


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_see_the_balance_but_cannot_add_credit(client, role):
    member = owner_client(client, role=role)
    org = member.organization
    payment = make_payment(org=org)
    dashboard = client.get(url("dashboard", org))
    assert dashboard.status_code == 200
    assert b'data-testid="balance"' in dashboard.content
    assert b'data-testid="add-credit"' not in dashboard.content
    main = client.get(reverse("main", args=[org.slug]))
    assert b'data-testid="add-credit-link"' not in main.content
    for target in [
        url("add_credit", org),
        url("add_credit_details", org) + "?amount=25",
        url("add_credit_confirm", org, payment.pk),
        url("payment", org, payment.pk),
        url("auto_recharge", org),
    ]:
        assert client.get(target).status_code == 403, target
    assert client.post(url("add_credit_details", org), card_fields()).status_code == 403
    assert client.post(url("add_credit_confirm", org, payment.pk)).status_code == 403


def test_admins_add_credit_but_only_owners_set_auto_recharge(client):
    member = owner_client(client, role=Role.ADMIN)
    org = member.organization
    dashboard = client.get(url("dashboard", org))
    assert b'data-testid="add-credit"' in dashboard.content
    assert client.get(url("add_credit", org)).status_code == 200
    assert client.get(url("auto_recharge", org)).status_code == 403


def test_another_organizations_member_gets_404_everywhere(client):
    target = make_org()
    payment = make_payment(org=target)
    outsider = owner_client(client)  # owner of their own organization only
    pages = [
        url("dashboard", target),
        url("transactions_csv", target),
        url("add_credit", target),
        url("add_credit_details", target) + "?amount=25",
        url("add_credit_confirm", target, payment.pk),
        url("payment", target, payment.pk),
        url("auto_recharge", target),
    ]
    for page in pages:
        assert client.get(page).status_code == 404, page
    assert client.post(url("add_credit_confirm", target, payment.pk)).status_code == 404
    # Their own slug with the other organization's payment id: 404 too.
    own = outsider.organization
    assert client.get(url("payment", own, payment.pk)).status_code == 404
    assert client.post(url("add_credit_confirm", own, payment.pk)).status_code == 404
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_anonymous_visitors_are_sent_to_log_in(client):
    org = make_org()
    response = client.get(url("dashboard", org))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# ---------------------------------------------------------------- dashboard


def _fill_ledger(org, n):
    for i in range(n):
        ledger_post(
            org=org,
            kind="usage",
            amount=D("-0.5"),
            reason=f"usage {i}",
            idempotency_key=f"u{i}",
            reference=f"usage-batch:{i}",
            model_name="llama-3.1-8b" if i % 2 else "phi-3-mini",
            at=datetime.now(UTC) - timedelta(days=i % 40),
        )


@pytest.mark.parametrize("project", [False, True], ids=["all-projects", "one-project"])
def test_dashboard_query_count_does_not_grow_with_the_data(
    client, django_assert_max_num_queries, project
):
    member = owner_client(client)
    org = member.organization
    # One project chosen: one query to check it against those the person sees, and spend
    # by month from the usage records (their rollup coverage and one union) instead of
    # the ledger's one query.
    query = f"?project={org.projects.get().pk}" if project else ""
    ledger_post(org=org, kind="grant", amount=D("1000"), reason="start", idempotency_key="g")
    make_payment(org=org)
    _fill_ledger(org, 5)
    client.get(url("dashboard", org))  # the first visit also records the org in the session
    # 17: spend by model reads the rollup coverage first (one query, whatever the data);
    # 18: the payment history's receipts, one prefetch for the whole page;
    # 19: the freshness line (when the newest usage debit was posted);
    # 20: the project switcher's choices.
    bound = 22 if project else 20
    with django_assert_max_num_queries(bound):
        small = client.get(url("dashboard", org) + query)
    for i in range(5):
        make_payment(org=org, number=SUCCESS if i % 2 else DECLINE)
    for i in range(5, 80):
        ledger_post(
            org=org,
            kind="usage",
            amount=D("-0.25"),
            reason="more",
            idempotency_key=f"more{i}",
            model_name="llama-3.1-70b",
        )
    with django_assert_max_num_queries(bound):
        large = client.get(url("dashboard", org) + query)
    assert small.status_code == large.status_code == 200


def test_dashboard_shows_the_figures(client):
    member = owner_client(client)
    org = member.organization
    ledger_post(org=org, kind="grant", amount=D("100"), reason="start", idempotency_key="g")
    ledger_post(
        org=org,
        kind="usage",
        amount=D("-14"),
        reason="jobs",
        idempotency_key="u",
        reference="job:42",
    )
    make_query(org=org, occurred_at=datetime.now(UTC), model="llama-3.1-70b", credits="14")
    payment = make_payment(org=org, amount_minor=1000)
    page = client.get(url("dashboard", org)).content.decode()
    # balance 100 - 14 + 10 = 96; at 0.50/h: 192 h = 8 days 0 hours
    assert '<p class="figure" data-testid="balance">96.00</p>' in page
    assert "8 days 0 hours" in page
    assert "total runtime across all workers" in page
    # burn 14 / 7 = 2 a day; 96 / 2 = 48 days
    assert "assuming 2.00 credits a day" in page
    assert "spend-month-data" in page and "spend-model-data" in page
    assert 'data-plotly-figure="spend-model-data"' in page
    assert "<script>" not in page.replace('<script id="', "")  # no inline code
    # The purchase links to its payment; a usage reference shows what it charged.
    assert f'href="{url("payment", org, payment.pk)}"' in page
    assert f'href="/o/{org.slug}/usage/charges/job/42/">job:42</a>' in page


def test_dashboard_empty_states(client):
    org = owner_client(client).organization
    page = client.get(url("dashboard", org)).content.decode()
    assert "No recent usage" in page
    assert "No payments yet." in page
    assert "No usage was charged in the last 12 months." in page


def test_ledger_pages_and_htmx_partial(client):
    org = owner_client(client, org=make_org(tier=Tier.ENTERPRISE, allow_overdraft=True))
    org = org.organization
    _fill_ledger(org, 30)
    page2 = client.get(url("dashboard", org), {"page": 2})
    assert page2.context["ledger"].number == 2
    assert len(page2.context["ledger"].object_list) == 5
    partial = client.get(
        url("dashboard", org), {"page": 2}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="ledger"
    )
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="ledger"')
    assert "<html" not in body
    assert "Page 2 of 2" in body


def test_main_page_shows_balance_usage_time_and_last_payment(client):
    org = owner_client(client).organization
    make_payment(org=org, amount_minor=5000)
    page = client.get(reverse("main", args=[org.slug])).content.decode()
    assert '<p class="figure" data-testid="balance">50.00</p>' in page
    assert "4 days 4 hours" in page  # 50 / 0.50 = 100 h
    assert 'data-testid="last-payment"' in page
    assert 'id="usage-summaries"' in page


# -------------------------------------------------------------------------- CSV


def test_transactions_csv_streams_and_escapes_formulas(client):
    member = owner_client(client, role=Role.VIEWER)
    org = member.organization
    ledger_post(org=org, kind="grant", amount=D("10"), reason="=HYPERLINK(1)", idempotency_key="a")
    for n, reason in enumerate(["+1", "-2 credits", "@SUM(A1)", "\tx", "\rx", "plain"]):
        ledger_post(
            org=org,
            kind="usage",
            amount=D("-0.5"),
            reason=reason,
            idempotency_key=f"k{n}",
            reference="=cmd|' /C calc'!A0",
        )
    response = client.get(url("transactions_csv", org))
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [
        "time",
        "kind",
        "amount",
        "balance_after",
        "reason",
        "reference",
        "model",
        "actor",
        "idempotency_key",
    ]
    reasons = [row[4] for row in rows[1:]]
    assert reasons == ["'=HYPERLINK(1)", "'+1", "'-2 credits", "'@SUM(A1)", "'\tx", "'\rx", "plain"]
    assert {row[5] for row in rows[2:]} == {"'=cmd|' /C calc'!A0"}
    # Numbers stay numbers: the debit is -0.5, not '-0.5.
    assert D(rows[2][2]) == D("-0.5")
    assert D(rows[-1][3]) == D("7")  # 10 - 6 * 0.5


# ---------------------------------------------------------------- auto-recharge


def test_owner_saves_a_card_and_sets_auto_recharge(client):
    org = owner_client(client).organization
    page = url("auto_recharge", org)
    assert b"Off." in client.get(page).content
    refused = client.post(page, {"action": "save_card", **card_fields(number="4242424242424241")})
    assert b"not valid" in refused.content
    assert client.post(page, {"action": "save_card", **card_fields()}).status_code == 302
    too_small = client.post(page, {"action": "enable", "below": "20", "amount": "1"})
    assert b"Choose an amount from $5.00" in too_small.content
    assert client.post(page, {"action": "enable", "below": "20", "amount": "40"}).status_code == 302
    status = client.get(page).content.decode()
    assert "below 20.00 credits, buy $40.00 with Visa •••• 4242" in status
    dashboard = client.get(url("dashboard", org)).content.decode()
    assert "Auto-recharge: below 20.00 credits, buy $40.00." in dashboard
    assert client.post(page, {"action": "disable"}).status_code == 302
    assert b"Off." in client.get(page).content
