"""Text a person or program names things with: visible characters only.

Names and ids (API keys, controllers, record ids, models, endpoints, members) reach page
titles, tables, CSV files and email subjects. Control characters (CR/LF among them),
bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069, U+200E/F) and
zero-width characters (U+200B-U+200D, U+2060, U+FEFF) would let one name pose as another
or break a header, so they are refused, never stripped: a stripped id would no longer be
the id the client sent (replays would not match).
"""

import unicodedata

from django.core.exceptions import ValidationError

# Other, control (Cc); other, format (Cf: bidi controls, zero-width, soft hyphen, BOM);
# line and paragraph separators (Zl, Zp).
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def invisible_character(value: str) -> str | None:
    """The first refused character as "U+XXXX", or None when the text is fine."""
    if value.isprintable():  # the common case, checked in C
        return None
    for char in value:
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def invisible_character_message(code_point: str) -> str:
    return f"must not contain control, bidirectional or zero-width characters ({code_point})"


def validate_visible_text(value: str) -> None:
    """Form validator: refuse control, bidirectional-override and zero-width characters."""
    found = invisible_character(value or "")
    if found is not None:
        raise ValidationError(invisible_character_message(found).capitalize() + ".")
