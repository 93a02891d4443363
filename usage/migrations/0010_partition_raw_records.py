"""PostgreSQL only: the four raw record tables become partitioned by month of their
time column, with a default partition for anything older than the first month made;
their (organization, client_id) uniqueness moves to usage_recordkey, filled by a
statement trigger on each table (see usage.models.RecordKey for why).

Each table is rebuilt: renamed aside, recreated partitioned with the same columns,
checks, foreign keys and indexes (same names, so later migrations find them), its rows
copied over, its keys copied into usage_recordkey. The copy rewrites every row once: on
a large installation, run it in a maintenance window (docs/data-lifecycle.md, "Partitioned history").
SQLite keeps plain tables.
"""

from django.db import migrations

# Table -> (time column, RecordKey kind). Frozen here: a later change to the app's
# constants must not change what this migration did.
TABLES = {
    "usage_query": ("occurred_at", "q"),
    "usage_workersession": ("started_at", "w"),
    "usage_matchingrun": ("started_at", "m"),
    "usage_job": ("submitted_at", "j"),
}
# Monthly partitions made now: from the oldest month with records (at most this many
# months back; older records go to the default partition) to a few months ahead.
MONTHS_BACK = 36
MONTHS_AT_LEAST = 12
MONTHS_AHEAD = 3

KEY_FUNCTIONS = """
CREATE OR REPLACE FUNCTION usage_record_keys_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO usage_recordkey (organization_id, kind, client_id, at)
  SELECT n.organization_id, TG_ARGV[0], n.client_id, n.{column} FROM new_rows AS n;
  RETURN NULL;
END $$;
"""


def _key_function_sql(column: str) -> str:
    # One function per time column name: the trigger passes the kind, the column is fixed.
    return (
        KEY_FUNCTIONS.replace("usage_record_keys_add", f"usage_record_keys_add_{column}")
        .replace("{column}", column)
        .strip()
    )


DELETE_FUNCTION = """
CREATE OR REPLACE FUNCTION usage_record_keys_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM usage_recordkey AS k USING old_rows AS o
  WHERE k.organization_id = o.organization_id AND k.kind = TG_ARGV[0]
    AND k.client_id = o.client_id;
  RETURN NULL;
END $$;
"""


def _months(cursor, table: str, column: str) -> list[str]:
    """First days (UTC) of the months to make: from the oldest with records (at least
    MONTHS_AT_LEAST back, at most MONTHS_BACK back) to MONTHS_AHEAD ahead."""
    cursor.execute(
        "WITH now_month AS (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AS m) "
        "SELECT to_char(month, 'YYYY-MM-DD') FROM now_month, generate_series("
        "greatest(least(coalesce(date_trunc('month', "
        f"(SELECT min({column}) FROM {table}) AT TIME ZONE 'UTC'), m), "  # noqa: S608
        "m - make_interval(months => %s)), m - make_interval(months => %s)), "
        "m + make_interval(months => %s), interval '1 month') AS month",
        [MONTHS_AT_LEAST, MONTHS_BACK, MONTHS_AHEAD],
    )
    return [month for (month,) in cursor.fetchall()]


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return f"{year:04d}-{number:02d}-01"


def _partition(cursor, table: str, column: str, kind: str) -> None:
    aside = f"{table}_unpartitioned"
    cursor.execute(f"ALTER TABLE {table} RENAME TO {aside}")
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') ORDER BY conname",
        [aside],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [aside, aside],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conrelid::regclass FROM pg_constraint WHERE confrelid = %s::regclass", [aside]
    )
    pointing = cursor.fetchall()
    if pointing:  # a foreign key to a partitioned table needs its partition key: none today
        raise RuntimeError(f"{table} is referenced by {pointing}: extend this migration")
    cursor.execute(
        f"CREATE TABLE {table} (LIKE {aside} INCLUDING DEFAULTS INCLUDING IDENTITY "
        f"INCLUDING CONSTRAINTS) PARTITION BY RANGE ({column})"
    )
    for month in _months(cursor, aside, column):
        name = f"{table}_p{month[:4]}_{month[5:7]}"
        cursor.execute(
            f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM "
            f"('{month} 00:00+00') TO ('{_next_month(month)} 00:00+00')"
        )
    cursor.execute(f"CREATE TABLE {table}_pdefault PARTITION OF {table} DEFAULT")
    cursor.execute(f"INSERT INTO {table} SELECT * FROM {aside}")  # noqa: S608
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
        f"coalesce((SELECT max(id) FROM {aside}), 0) + 1, false)"
    )
    cursor.execute(f"DROP TABLE {aside}")
    for name, kind_code, definition in constraints:
        if kind_code == "p":
            definition = f"PRIMARY KEY (id, {column})"
        elif kind_code == "u":
            # Unique per partition only; the exact key is usage_recordkey's.
            definition = definition.rstrip(")") + f", {column})"
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for _name, definition in indexes:
        cursor.execute(definition.replace(f" ON public.{aside} ", f" ON public.{table} "))
    cursor.execute(
        "INSERT INTO usage_recordkey (organization_id, kind, client_id, at) "  # noqa: S608
        f"SELECT organization_id, %s, client_id, {column} FROM {table}",
        [kind],
    )
    cursor.execute(
        f"CREATE TRIGGER {table}_keys_add AFTER INSERT ON {table} "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION usage_record_keys_add_{column}('{kind}')"
    )
    cursor.execute(
        f"CREATE TRIGGER {table}_keys_remove AFTER DELETE ON {table} "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION usage_record_keys_remove('{kind}')"
    )


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for column in sorted({column for column, _kind in TABLES.values()}):
            cursor.execute(_key_function_sql(column))
        cursor.execute(DELETE_FUNCTION.strip())
        for table, (column, kind) in TABLES.items():
            _partition(cursor, table, column, kind)


class Migration(migrations.Migration):
    dependencies = [("usage", "0009_record_keys")]

    # Forward only: going back would have to rebuild four plain tables and re-check
    # every key; restore from a backup instead.
    operations = [migrations.RunPython(partition, migrations.RunPython.noop, elidable=False)]
