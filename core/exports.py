"""Downloads: CSV exports that stream in constant memory and open safely in a spreadsheet,
and the one way a page answers with a file. Every export uses this module (here, in
core, because every app exports, the audit log included)."""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from itertools import chain

from django.http import HttpResponse, StreamingHttpResponse

from core.numbers import decimal_plain

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
        # Exact and never an exponent ("1E-10"); zeros past the cents are dropped, so a
        # ledger amount stored at ten places reads 100.00 and 0.0000025, while a figure
        # the export already trimmed (a share of 72.1, a count of 2) stays as it is.
        exponent = value.as_tuple().exponent
        places = min(2, -exponent) if isinstance(exponent, int) and exponent < 0 else 0
        return decimal_plain(value, min_places=places)
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


# Excel reads a file as UTF-8 only with a byte-order mark (reasons carry "•", names accents).
BOM = "\ufeff"


def download(
    body, *, content_type: str, filename: str, streaming: bool = False
) -> HttpResponse | StreamingHttpResponse:
    """A document download (PDF, or a streamed CSV): named, and never kept by caches."""
    response_class = StreamingHttpResponse if streaming else HttpResponse
    response = response_class(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def csv_download(
    header: Iterable[str], rows: Iterable[Iterable[object]], *, filename: str, bom: bool = True
) -> HttpResponse | StreamingHttpResponse:
    """A CSV export streamed as a download, with a BOM for Excel unless bom=False."""
    lines = csv_lines(header, rows)
    return download(
        chain([BOM], lines) if bom else lines,
        content_type="text/csv; charset=utf-8",
        filename=filename,
        streaming=True,
    )
