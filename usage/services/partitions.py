"""Monthly partitions of the raw record tables (PostgreSQL only; migration 0009 made them).

Each table is partitioned by month (UTC) of its time column (usage.models.PARTITION_COLUMNS)
into `<table>_pYYYY_MM` partitions, plus `<table>_pdefault` for anything no month holds
(records older than the first month made at migrate time). Months are made a few ahead
(the beat's `usage-partitions-ahead` and every `migrate`), so current records never
land in the default partition: a month cannot be made once the default partition holds
rows of it.
"""

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from usage.models import PARTITION_COLUMNS

logger = logging.getLogger(__name__)

MONTHS_AHEAD = 3
_MONTH_SUFFIX = re.compile(r"_p(\d{4})_(\d{2})$")


def partitions_enabled() -> bool:
    """Whether the record tables are partitioned (PostgreSQL) or plain (SQLite)."""
    return connection.vendor == "postgresql"


def month_first(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_start(month: date) -> datetime:
    """The month's first instant (UTC): partitions are cut at UTC month boundaries."""
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y_%m}"


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    month: date | None  # None: the default partition


def partitions_of(table: str) -> list[Partition]:
    """The table's attached partitions, monthly ones oldest first, the default last."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        names = [name for (name,) in cursor.fetchall()]
    monthly, default = [], []
    for name in names:
        found = _MONTH_SUFFIX.search(name)
        if found:
            monthly.append(Partition(table, name, date(int(found[1]), int(found[2]), 1)))
        else:
            default.append(Partition(table, name, None))
    return sorted(monthly, key=lambda p: p.month) + default  # type: ignore[arg-type, return-value]


def partitions_make_ahead(*, months: int = MONTHS_AHEAD, now: datetime | None = None) -> list[str]:
    """Make this month's and the next `months` months' partitions where missing; returns
    the names made. Idempotent; a month that cannot be made (the default partition holds
    rows of it, or the table is busy past the lock timeout) is logged and skipped."""
    if not partitions_enabled():
        return []
    first = month_first(now or timezone.now())
    made = []
    for table in PARTITION_COLUMNS:
        have = {p.month for p in partitions_of(table)}
        for offset in range(months + 1):
            month = month_add(first, offset)
            if month in have:
                continue
            name = partition_name(table, month)
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    # Making a partition locks its parent briefly; never queue behind a
                    # long read for longer than this (the next run tries again).
                    cursor.execute("SET LOCAL lock_timeout = '5s'")
                    cursor.execute(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                        f"FOR VALUES FROM ('{month_start(month).isoformat()}') "
                        f"TO ('{month_start(month_add(month, 1)).isoformat()}')"
                    )
            except DatabaseError as error:
                logger.warning(
                    "usage.partitions.not_made", extra={"partition": name, "error": str(error)}
                )
                continue
            made.append(name)
    if made:
        logger.info("usage.partitions.made", extra={"partitions": made})
    return made
