"""Card checks every processor makes before charging: Luhn, expiry, CVC. Pure functions."""

import re
from dataclasses import dataclass
from datetime import date

from core.errors import FieldError


class CardError(FieldError):
    """A card the processor refuses before trying to charge it; the message is for the user."""


@dataclass(frozen=True)
class CardDetails:
    """A card as typed into the payment form. Lives only for the request that submits it."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    name: str = ""

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def brand(self) -> str:
        return card_brand(self.number)


def card_number_normalize(raw: str) -> str:
    """Digits only: people type spaces and dashes."""
    return re.sub(r"[\s-]", "", raw or "")


def luhn_valid(number: str) -> bool:
    """The Luhn checksum every card number carries (catches most typos)."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"34", "37"}:
        return "Amex"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "Mastercard"
    return "Card"


def expiry_parse(raw: str) -> tuple[int, int]:
    """MM/YY or MM/YYYY to (month, four-digit year); CardError if it is neither."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", raw or "")
    if not match:
        raise CardError("expiry", "Enter the expiry date as MM/YY.")
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise CardError("expiry", "The expiry month must be 01 to 12.")
    return month, year


def expiry_valid(*, month: int, year: int, today: date) -> bool:
    """A card is good through the last day of its expiry month."""
    return (year, month) >= (today.year, today.month)


def cvc_valid(*, cvc: str, number: str) -> bool:
    """Four digits on American Express cards, three on the others."""
    expected = 4 if card_brand(number) == "Amex" else 3
    return cvc.isdigit() and len(cvc) == expected


def card_check(card: CardDetails, *, today: date) -> None:
    """Raise CardError (with the field at fault) unless number, expiry and CVC are valid."""
    if not luhn_valid(card.number):
        raise CardError("number", "This card number is not valid: check it for typos.")
    if not expiry_valid(month=card.exp_month, year=card.exp_year, today=today):
        raise CardError("expiry", "This card has expired.")
    if not cvc_valid(cvc=card.cvc, number=card.number):
        digits = 4 if card.brand == "Amex" else 3
        raise CardError("cvc", f"The security code (CVC) is {digits} digits.")
