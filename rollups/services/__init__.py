"""Daily and hourly rollups: an organization's day (or finished hour) of usage records
summed per dimension.

Modelled on Zulip's analytics app (a state row per unit of work, counts built with
INSERT … SELECT … GROUP BY, idempotent refills), with one table per record kind:

- JobDaily per (API key, controller): jobs submitted that day by status, core-hours,
  credits, what failed and cancelled jobs wasted, the last submission time;
- QueryDaily: queries, tokens in/out, credits per (model, API key, endpoint, member)
  ("detail" rows), and per model, per endpoint and per member (summed from the detail
  rows), so a figure by one dimension reads a few rows a day whatever the cardinality
  of the others;
- WorkerDaily per (model, API key): runtime clipped to the day, sessions started that
  day, sessions carried in (already running at its first instant), credits;
- MatchingDaily per (task, API key): runs, records matched, run time.

A day is the organization's calendar day in its time zone, recorded in RollupState so a
changed zone is seen (such days read raw until recomputed; the sweep recomputes them).

**Idempotent, crash-safe.** `rollup_day` recomputes one org-day in one transaction: lock
the day's state row (SELECT … FOR UPDATE), delete the day's rows, insert them again from
the records with four INSERT … SELECT … GROUP BY statements, mark the state clean. A
worker killed part-way aborts the transaction, so the day keeps its previous rows (and
its dirty flag) and the retry computes the same rows a clean run does. The row lock is
the lock per org-day: two runs for the same day queue behind each other, and ingestion
marking the day dirty waits for a running recompute to commit, then sets the flag
again, so a late record is never lost between the SELECT and the state update.

**Hour rollups (closed intervals finer than a day).** The same four tables also hold
hour rows (`hour` set: the hour counted from the local day's first instant, 23 to 25 of
them a day, the last cut at the day's end; whole-day rows have hour NULL, and the two
kinds are indexed apart), each finished hour of an org-day with its own state row
(RollupHour: clean or dirty, zone; its row lock is the lock per org-hour, taken in hour
order). `rollup_hour` recomputes one finished hour (delete and insert in one
transaction, like a day); the beat's `rollup_hours_sweep` enqueues it every five minutes
for each organization's finished hours of its open and previous day not clean yet (an
hour is due HOUR_SETTLE after it ends) and for dirty hours. `rollup_day` rebuilds its
day's hours with the day when the day is among the last HOUR_DAYS (32): one more
INSERT … SELECT per kind grouped by hour as well (a CASE on the record's time), worker
sessions one statement per hour they overlap. Hour rows of older days are pruned by the
sweep. Readers (rollups/selectors/coverage.py) take whole clean days from day rows and, wherever
whole clean hours fit in the rest, hour rows: the open day's finished hours and the
partial first day of a sliding window (24 hours, 7 and 30 days start mid-day). So a
page reads raw only the current hour, a window's partial first hour, and dirty hours.
Ingestion marks dirty, in its transaction and in one upsert, the finished hours its
records land on (a worker session: every hour it overlaps), as it does closed days; a
job's status move marks its submission hour. An hour rolled up while an ingestion that
began before the hour's end is still open could miss that ingestion's records (it did
not mark the hour, which had not ended); HOUR_SETTLE (5 minutes) rules that out for any
ingestion transaction shorter than that. Hour rows are not restated (days are).

**Bucket aggregates (rollups/services/aggregates.py).** Ingestion keeps per-minute
aggregates current in its transaction; readers take from them whatever day and hour rows
leave. `rollup_day` and `rollup_hour` are their verifier: they recompute the day's (or
hour's) buckets from the records in the same transaction, and a difference is rewritten
and recorded as a Restatement of kind "buckets" (RollupResult.bucket_rows_restated);
`rollup_hours_prune` drops buckets with the hour rows past HOUR_DAYS.

**Late records and job moves.** Ingestion marks a closed day dirty (RollupState.dirty)
when a record lands on it, and a job's status move marks its submission day (and hour)
dirty (a rollup row holds statuses as of its computation). Selectors read dirty days
(and hours) from the raw records until the next run, so figures stay exact in between;
the hourly sweep recomputes dirty days, the five-minute one dirty hours. When a
recomputation changes a day that had been computed, the change is kept as Restatement
rows (one per changed dimension, figures before and after).

**Partitioning (PostgreSQL).** The raw record tables are partitioned by month so that
retention can drop whole months (usage/services/partitions.py, retention.py); the
(organization, client_id) idempotency lives in the unpartitioned key table
(usage/services/record_keys.py), so a replayed id is a duplicate whatever its time.
Partitions do not make the rollups faster: measured with `manage.py bench_rollup` on 10
million records of one organization (2 cores), a young open day's aggregate through the
(organization, occurred_at) index takes 0.4-2 ms and rolling up a day of 1 million
records 1.0 s in random physical order, 0.2 s clustered by time; those index range scans
cost what the day holds, not what the table holds. A day whose month retention dropped
is final: its rows are never recomputed.

**Measured with hour rollups** (`manage.py bench_rollup`, 10 million records against
10 thousand, ~110k records a day, 2 shared cores; p95 page time at 10M / at 10k).
Before them the open day was read raw: 1.3-1.4 just after midnight but 6-33 in the
afternoon (~110k records by then, scanned once per figure, plus up to half a day of a
sliding window's first day). With them, in the organization's afternoon (zone UTC+14,
15:1x-15:2x, 15 finished hours rolled up): usage panel 1.19, main page 1.15 with the
records in random physical order; 1.09 and 1.02 clustered by time. Just after midnight
(UTC, 01:1x-01:2x): 1.30 / 1.13 random, 1.07 / 1.03 clustered. Page p50 at 10M: 69-89 ms
(panel; 65-74 ms at 10k), 47-64 ms (main page). Half of what first remained at 10M (a
panel ratio of 2.2 clustered) was PostgreSQL starting parallel workers, 10-15 ms a
figure, for these small UNION ALL aggregates: hence max_parallel_workers_per_gather=0
on the app's connections (console/settings.py). Rolling up the day of 1 million
records with its hours: 2.7 s in random order, 2.1 s clustered (rebuilding the hours one
statement per hour per kind took 9.6 s), a second run changing no row; the 90-day
backfill of the 10M organization 48-57 s / 25 s; one finished hour of the open day
~35-50 ms.
"""
