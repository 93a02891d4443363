"""One formatter per kind of figure (docs/numbers.md): counts with their noun, tokens,
durations in their largest unit, percentages, decimals as typed and in files, and the
credit and dollar rules built on them. Expected strings are written out by hand."""

from datetime import timedelta
from decimal import Decimal as D

import pytest

from billing.money import (
    credits_csv,
    credits_fixed,
    credits_places,
    credits_text,
    dollars_csv,
)
from core.exports import csv_cell
from core.numbers import (
    count_display,
    count_of,
    decimal_input,
    decimal_plain,
    duration_display,
    percent_display,
    tokens_display,
)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (1, "1"), (-3, "-3"), (21152, "21,152"), (10**12, "1,000,000,000,000"),
     (None, "—")],
)  # fmt: skip
def test_counts_are_grouped(value, shown):
    assert count_display(value) == shown


@pytest.mark.parametrize(
    ("n", "noun", "shown"),
    [
        (0, "record", "0 records"),
        (1, "record", "1 record"),
        (2, "record", "2 records"),
        (-1, "credit", "-1 credit"),
        (21152, "record", "21,152 records"),
        (1, "query", "1 query"),
        (3, "query", "3 queries"),
        (2, "core-hour", "2 core-hours"),
    ],
)
def test_a_count_takes_the_right_noun(n, noun, shown):
    assert count_of(n, noun) == shown


def test_an_irregular_plural_can_be_given():
    assert count_of(2, "person", "people") == "2 people"
    assert count_of(1, "person", "people") == "1 person"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0 tokens"), (1, "1 token"), (131923, "131,923 tokens"), (None, "—")],
)
def test_tokens_carry_their_unit(value, shown):
    assert tokens_display(value) == shown


@pytest.mark.parametrize(
    ("elapsed", "shown"),
    [
        (timedelta(0), "less than a minute"),
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(minutes=45, seconds=59), "45 minutes"),
        (timedelta(minutes=80), "1 hour 20 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=2, minutes=59), "2 hours"),
        (timedelta(hours=29), "1 day 5 hours"),
        (timedelta(days=1), "1 day"),
        (timedelta(minutes=4333), "3 days"),  # not "4,333 minutes"
        (timedelta(days=400), "400 days"),
        (timedelta(minutes=-90), "-1 hour 30 minutes"),
        (7200, "2 hours"),  # seconds
        (None, "—"),
    ],
)
def test_durations_read_in_their_largest_unit(elapsed, shown):
    assert duration_display(elapsed) == shown


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        (0, 1, "0.0%"),
        (0.04, 1, "< 0.1%"),
        (12.345, 1, "12.3%"),
        (12.35, 1, "12.4%"),  # half up
        (133.4, 0, "133%"),
        (-5, 1, "-5.0%"),
        (12345.6, 1, "12,345.6%"),
        (D("0.00001"), 4, "< 0.0001%"),
        (None, 1, "—"),
    ],
)
def test_percentages(value, places, shown):
    assert percent_display(value, places) == shown


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        (D("50.0000000000"), "50"),
        (D("12.5000"), "12.5"),
        (D("0E-10"), "0"),
        (D("-0.0000"), "0"),
        (D("1E+2"), "100"),
        (D("0.0000025000"), "0.0000025"),
        (D("123456789012.3400000000"), "123456789012.34"),
        (None, ""),
    ],
)
def test_a_form_shows_a_stored_decimal_as_a_person_types_it(stored, typed):
    assert decimal_input(stored) == typed


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (D("100.0000000000"), "100.00"),
        (D("0"), "0.00"),
        (D("-0E-10"), "0.00"),
        (D("-12.5"), "-12.50"),
        (D("0.0000482000"), "0.0000482"),  # sub-cent: every digit, exactly
        (D("1234567890123.4567890123"), "1234567890123.4567890123"),  # huge: never grouped
        (D("1E+3"), "1000.00"),  # never an exponent
    ],
)
def test_a_file_gets_the_exact_decimal_with_two_places_at_least(value, cell):
    assert decimal_plain(value) == cell
    assert credits_csv(value) == cell


@pytest.mark.parametrize(
    ("minor", "cell"), [(0, "0.00"), (10000, "100.00"), (-2500, "-25.00"), (1, "0.01")]
)
def test_dollars_in_a_file_have_two_decimals(minor, cell):
    assert dollars_csv(minor) == cell


@pytest.mark.parametrize(
    ("values", "places"),
    [
        ([], 2),
        ([D("0"), D("12.69")], 2),
        ([D("0.03"), D("0.0059"), D("0.00016")], 5),  # the smallest keeps two digits
        ([D("-0.0041"), D("-12.69")], 4),  # negative amounts count by their size
        ([D("0.0000000001")], 6),  # at most six
        ([None, "", D("1")], 2),
    ],
)
def test_a_credit_column_takes_one_precision_from_its_smallest_amount(values, places):
    assert credits_places(values) == places


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        (D("0.03"), 5, "0.03000"),
        (D("0.0059"), 5, "0.00590"),
        (D("0.00016"), 5, "0.00016"),
        (D("21152.125"), 2, "21,152.13"),  # half up
        (D("-12.69"), 4, "-12.6900"),
        (D("-0.0000001"), 2, "> -0.01"),
        (D("0.0000000001"), 6, "< 0.000001"),  # never a plain 0 for a non-zero amount
        (D("0"), 3, "0.000"),
        (D("-0.004"), 2, "> -0.01"),
    ],
)
def test_credits_at_a_column_precision(value, places, shown):
    assert credits_fixed(value, places) == shown


@pytest.mark.parametrize(
    ("value", "exact", "shown"),
    [
        (D("42.5"), False, "42.50 credits"),
        (D("42.5"), True, "42.50 credits"),
        (D("0.00099"), False, "0.00099 credits"),
        (D("0.123456"), False, "0.12 credits"),
        (D("0.123456"), True, "0.123456 credits"),  # the audit log keeps every digit
        (D("21152.0000000000"), True, "21,152.00 credits"),
        (D("-6.1"), False, "-6.10 credits"),
    ],
)
def test_credits_in_a_sentence_carry_their_unit(value, exact, shown):
    assert credits_text(value, exact=exact) == shown


def test_a_signed_adjustment_says_its_sign():
    assert credits_text(D("5"), signed=True, exact=True) == "+5.00 credits"
    assert credits_text(D("-5"), signed=True, exact=True) == "-5.00 credits"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (D("100.0000000000"), "100.00"),  # a ledger amount at the ledger's scale
        (D("-0.0000482000"), "-0.0000482"),
        (D("72.1"), "72.1"),  # already trimmed by its export: left as it is
        (D("2"), "2"),
        (D("1E-10"), "0.0000000001"),
    ],
)
def test_a_csv_cell_keeps_a_decimal_exact_and_drops_zeros_past_the_cents(value, cell):
    assert csv_cell(value) == cell
