"""The one rule for showing credits: two decimals from a cent up, two significant digits
below a cent, the exact amount on hover and exact in CSV."""

from decimal import Decimal as D

import pytest

from billing.money import credits_display, credits_exact
from billing.services import ledger_post
from billing.templatetags.billing_tags import credits
from tests.factories import grant_credits, make_member

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "shown", "exact_on_hover"),
    [
        (D("-4.11"), "-4.11", None),
        (D("-0.0000482"), "-0.000048", "-0.0000482"),
        (D("-0.00010003"), "-0.00010", "-0.00010003"),
        (D("0.0049"), "0.0049", None),
        (D("0.00999"), "0.01", "0.00999"),  # rounds up to a cent: reads as one
        (D("0"), "0.00", None),
        (D("-0.0000000000"), "0.00", None),  # never "-0.00"
        (D("0.01"), "0.01", None),
        (D("-0.01"), "-0.01", None),
        (D("0.0000000001"), "0.00000000010", None),  # the smallest step: nothing rounded
        (D("1234567890.125"), "1,234,567,890.13", "1,234,567,890.125"),
        (D("25"), "25.00", None),
        (D("2.5000000000"), "2.50", None),  # the ledger's scale is not a difference
    ],
)
def test_credit_amounts_follow_one_rule(value, shown, exact_on_hover):
    assert credits_display(value) == shown
    html = str(credits(value))
    if exact_on_hover is None:
        assert html == shown  # nothing hidden by rounding: plain text
    else:
        assert html == f'<span class="credits" title="{exact_on_hover} credits">{shown}</span>'
        assert credits_exact(value) == exact_on_hover


def test_signed_amounts_and_missing_ones():
    assert str(credits(D("5"), "signed")) == "+5.00"
    assert str(credits(D("-5"), "signed")) == "-5.00"
    assert str(credits(D("0"), "signed")) == "0.00"
    assert credits(None) == "—"
    assert str(credits(1.5)) == "1.50"


def test_the_chip_ledger_and_csv_agree_on_a_fraction_of_a_cent(client):
    member = make_member()
    org = member.organization
    grant_credits(org=org, amount="4.11")
    ledger_post(
        org=org, kind="usage", amount=D("-0.0000482"), reason="Usage", idempotency_key="u-1"
    )
    client.force_login(member.user)

    page = client.get(f"/o/{org.slug}/finance/").content.decode()
    # The ledger: one precision for its credit columns, enough for the sub-cent debit's two
    # significant digits; the exact amount on hover where the display rounds.
    assert '<span class="credits" title="-0.0000482 credits">-0.000048</span>' in page
    assert ">+4.110000</td>" in page
    assert '<span class="credits" title="4.1099518 credits">4.109952</span>' in page
    # The chip and the balance card: 4.1099518 is 4.11 to the cent, exact on hover.
    assert page.count('<span class="credits" title="4.1099518 credits">4.11</span>') >= 2

    csv = b"".join(client.get(f"/o/{org.slug}/finance/transactions.csv").streaming_content)
    # The CSV: exact, two decimals at least, no padding zeros past the last digit.
    assert b",-0.0000482," in csv and b",4.11," in csv and b",4.1099518," in csv
