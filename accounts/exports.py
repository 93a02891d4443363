"""CSV exports that stream in constant memory and open safely in a spreadsheet (here, in
the lowest app, because the audit log exports too; billing.exports re-exports them)."""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal

# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One cell as text; text that a spreadsheet would run as a formula gets a ' prefix.

    Numbers and timestamps the export writes itself stay as they are, so "-1.50" is
    still a number in the spreadsheet; only text (reasons, references...) is escaped.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, and never an exponent ("1E-10")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Echo:
    """A file-like object whose write returns the line, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The CSV text line by line: a header, then each row with every cell escaped."""
    writer = csv.writer(_Echo())
    yield writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        yield writer.writerow([csv_cell(v) for v in row])
