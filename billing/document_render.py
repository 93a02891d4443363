"""Receipts and statements rendered as documents: the same Django templates render the console's
page and the PDF (WeasyPrint), and the CSV carries the same lines."""

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from billing.models import Receipt, Statement

SECTION_TITLES = {
    "purchase": "Purchases",
    "grant": "Grants",
    "refund": "Refunds",
    "adjustment": "Adjustments",
}


def _line(line: dict) -> dict:
    return {**line, "date": date.fromisoformat(line["date"]), "amount": Decimal(line["amount"])}


def _table(rows: list[list[str]]) -> list[tuple[str, Decimal]]:
    return [(label, Decimal(amount)) for label, amount in rows]


def statement_context(statement: Statement) -> dict:
    """What the statement templates print: the issued content as numbers and dates."""
    content = statement.content
    totals = {name: Decimal(value) for name, value in content.get("totals", {}).items()}
    lines = [_line(line) for line in content.get("lines", [])]
    usage = content.get("usage", {})
    sections = [
        {
            "title": title,
            "lines": [line for line in lines if line["section"] == kind],
            "total": totals.get(f"{kind}s", Decimal("0")),
        }
        for kind, title in SECTION_TITLES.items()
    ]
    return {
        "statement": statement,
        "sections": sections,
        "totals": totals,
        "restatements": [_line(line) for line in content.get("restatements", [])],
        "usage_by_kind": _table(usage.get("by_kind", [])),
        "usage_by_model": _table(usage.get("by_model", [])),
        "usage_by_api_key": _table(usage.get("by_api_key", [])),
        "usage_by_project": _table(usage.get("by_project", [])),
        "usage_occurred_before": Decimal(usage.get("occurred_before", "0")),
        "seller": statement.seller,
        "buyer": statement.buyer,
    }


def receipt_context(receipt: Receipt) -> dict:
    return {"receipt": receipt, "seller": receipt.seller, "buyer": receipt.buyer}


def _pdf(template: str, context: dict) -> bytes:
    # Imported here: WeasyPrint loads pango at import, which only PDF requests need.
    from weasyprint import CSS, HTML

    html = render_to_string(template, context)
    stylesheet = finders.find("css/documents.css")
    return HTML(string=html).write_pdf(stylesheets=[CSS(filename=stylesheet)])


def statement_pdf(statement: Statement) -> bytes:
    """The statement as a PDF, from the templates the console's page uses."""
    return _pdf("billing/documents/statement_pdf.html", statement_context(statement))


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as a PDF, from the templates the console's page uses."""
    return _pdf("billing/documents/receipt_pdf.html", receipt_context(receipt))


STATEMENT_CSV_HEADER = ["section", "date", "description", "amount"]


def statement_csv_rows(statement: Statement) -> Iterator[list]:
    """The statement line by line: opening, entries, usage, restatements, closing, then
    the usage breakdowns (their rows repeat the usage line, split by kind, model, API key
    and, on statements issued since projects exist, project)."""
    context = statement_context(statement)
    start = statement.month.isoformat()
    yield ["opening_balance", start, "Opening balance", statement.opening_balance]
    for section in context["sections"]:
        for line in section["lines"]:
            yield [line["section"], line["date"].isoformat(), line["description"], line["amount"]]
    usage = context["totals"].get("usage", Decimal("0"))
    if usage:
        yield ["usage", start, "Usage", usage]
    for line in context["restatements"]:
        yield ["restatement", line["date"].isoformat(), line["description"], line["amount"]]
    yield ["closing_balance", start, "Closing balance", statement.closing_balance]
    for name, rows in (
        ("usage_by_kind", context["usage_by_kind"]),
        ("usage_by_model", context["usage_by_model"]),
        ("usage_by_api_key", context["usage_by_api_key"]),
        ("usage_by_project", context["usage_by_project"]),
    ):
        for label, amount in rows:
            yield [name, start, label, amount]
