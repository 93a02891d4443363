"""CSV exports: their home is accounts.exports (the audit log, below billing, exports too)."""

from accounts.exports import FORMULA_PREFIXES, csv_cell, csv_lines

__all__ = ["FORMULA_PREFIXES", "csv_cell", "csv_lines"]
