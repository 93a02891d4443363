"""Upper bounds on every number a client sends (ingestion, jobs, heartbeats, forms).

Each bound fits its column, and every sum the rollups make of it, under one stated
design capacity: at most RECORDS_PER_ORG_DAY records of a kind per organization and
local day (a day's rollup row can sum all of them), and readers summing day rows over
all time (SQLite sums 64-bit integers and raises on overflow; PostgreSQL sums bigint as
numeric). So:

- tokens per query field, 10^9 (a billion: far past any context window). A query's
  total is at most 2·10^9, a day's at most 2·10^15 in bigint columns (max 9.2·10^18):
  over 4,000 full days before an all-time sum could overflow;
- num_records per matching run, 10^9, likewise 10^15 a day;
- cores per job or controller, 10^6 (integer columns, never summed per day);
- memory per controller, 10^6 GB;
- billed core-hours per job, 10^5: a day's sum is at most 10^11 in numeric(18, 6)
  columns (max 10^12), and its credits 10^11 × the core-hour rate in numeric(24, 10)
  (max 10^14) for any rate under 1,000 credits a core-hour. A bigger job is refused with
  the bound in the message (report it as several jobs).

The bounds appear in the OpenAPI schema (ingest/api/ingest.py) and in the refusal messages.
"""

from decimal import Decimal

RECORDS_PER_ORG_DAY = 10**6
MAX_TOKENS = 10**9
MAX_NUM_RECORDS = 10**9
MAX_CORES = 10**6
MAX_MEMORY_GB = 10**6
MAX_CORE_HOURS = Decimal(10**5)
