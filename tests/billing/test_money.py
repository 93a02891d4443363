"""Money has one home (billing/money.py): dollars and cents both ways, and the one way
credits are shown, at the edges (negative, under a cent, huge)."""

from decimal import Decimal as D

import pytest

from billing.money import (
    credits_display,
    dollars_display,
    dollars_for_minor_units,
    minor_units_for_credits,
    minor_units_for_dollars,
)
from billing.templatetags.billing_tags import credits


@pytest.mark.parametrize(
    ("minor", "dollars", "shown"),
    [
        (0, D("0"), "$0.00"),
        (1, D("0.01"), "$0.01"),
        (500, D("5"), "$5.00"),
        (123456, D("1234.56"), "$1,234.56"),
        (-2500, D("-25"), "-$25.00"),
        (10**13, D("100000000000"), "$100,000,000,000.00"),
        (
            10**28 + 7,
            D("100000000000000000000000000.07"),
            "$100,000,000,000,000,000,000,000,000.07",
        ),
    ],
)
def test_cents_to_dollars_is_exact_and_shown_with_two_decimals(minor, dollars, shown):
    assert dollars_for_minor_units(minor) == dollars
    assert dollars_display(minor) == shown


@pytest.mark.parametrize(
    ("minor", "shown"), [(1000049, "$10,000"), (1000050, "$10,001"), (0, "$0")]
)
def test_whole_dollars_round_half_up(minor, shown):
    assert dollars_display(minor, places=0) == shown


@pytest.mark.parametrize(
    ("typed", "minor"),
    [
        (D("10"), 1000),
        (D("10.005"), 1001),  # half up, as people round (not banker's 1000)
        (D("10.004"), 1000),
        (D("0.01"), 1),
        (D("99999.995"), 10000000),
    ],
)
def test_a_typed_dollar_amount_is_rounded_half_up_to_the_cent(typed, minor):
    assert minor_units_for_dollars(typed) == minor


@pytest.mark.parametrize(
    ("credits_bought", "minor"),
    [(D("10"), 1000), (D("0.01"), 1), (D("12.34"), 1234), (D("1000000"), 100000000)],
)
def test_credits_bought_are_a_whole_number_of_cents(credits_bought, minor):
    assert minor_units_for_credits(credits_bought) == minor


@pytest.mark.parametrize("fraction", [D("0.001"), D("10.005"), D("0.0000001")])
def test_credits_that_are_not_whole_cents_are_refused_not_rounded(fraction):
    with pytest.raises(ValueError, match="whole number of cents"):
        minor_units_for_credits(fraction)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (D("-0.00000005"), "-0.000000050"),  # the sign of a sub-cent debit is kept
        (D("-0.004"), "-0.0040"),
        (D("-1234.5"), "-1,234.50"),
        (D("999999999999.9999999999"), "1,000,000,000,000.00"),
        (D("0.00000001"), "0.000000010"),
    ],
)
def test_credits_keep_their_sign_and_never_read_as_zero_under_a_cent(value, shown):
    assert credits_display(value) == shown
    assert shown in str(credits(value))
