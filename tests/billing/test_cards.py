from datetime import date

import pytest

from billing.cards import (
    CardDetails,
    CardError,
    card_check,
    card_number_normalize,
    cvc_valid,
    expiry_parse,
    expiry_valid,
    luhn_valid,
)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4242424242424242", True),
        ("4000000000000002", True),
        ("4000000000009995", True),
        ("4000000000000119", True),
        ("5555555555554444", True),
        ("378282246310005", True),  # Amex, 15 digits
        ("4242424242424241", False),  # last digit off by one
        ("4242424242424", False),  # too short to be this number
        ("42424242424242a2", False),
        ("", False),
    ],
)
def test_luhn(number, valid):
    assert luhn_valid(number) is valid


def test_card_numbers_are_normalized_from_what_people_type():
    assert card_number_normalize(" 4242 4242-4242 4242 ") == "4242424242424242"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12/34", (12, 2034)), ("1/30", (1, 2030)), ("07 / 2031", (7, 2031))],
)
def test_expiry_parse(raw, expected):
    assert expiry_parse(raw) == expected


@pytest.mark.parametrize("raw", ["13/30", "00/30", "1230", "12-30", "", "ab/cd"])
def test_expiry_parse_refuses_nonsense(raw):
    with pytest.raises(CardError):
        expiry_parse(raw)


@pytest.mark.parametrize(
    ("month", "year", "valid"),
    [(11, 2026, True), (12, 2026, True), (10, 2026, False), (1, 2027, True), (12, 2025, False)],
)
def test_a_card_is_good_through_its_expiry_month(month, year, valid):
    assert expiry_valid(month=month, year=year, today=date(2026, 11, 30)) is valid


@pytest.mark.parametrize(
    ("cvc", "number", "valid"),
    [
        ("123", "4242424242424242", True),
        ("1234", "4242424242424242", False),
        ("12", "4242424242424242", False),
        ("1234", "378282246310005", True),
        ("123", "378282246310005", False),
        ("12a", "4242424242424242", False),
    ],
)
def test_cvc_length_depends_on_the_brand(cvc, number, valid):
    assert cvc_valid(cvc=cvc, number=number) is valid


@pytest.mark.parametrize(
    ("card", "field"),
    [
        (CardDetails("4242424242424241", 12, 2030, "123"), "number"),
        (CardDetails("4242424242424242", 1, 2020, "123"), "expiry"),
        (CardDetails("4242424242424242", 12, 2030, "12"), "cvc"),
    ],
)
def test_card_check_names_the_field_at_fault(card, field):
    with pytest.raises(CardError) as info:
        card_check(card, today=date(2026, 11, 21))
    assert info.value.field == field
