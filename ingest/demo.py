"""Demo usage: 90 days of a small AI team's work, sent through the ingestion service.

Everything is deterministic: each day's events come from a random generator seeded by
the organization and the date, and every record's id names its day, so rerunning the
demo replays the same records (duplicates: nothing changes) and only adds what has
happened since the last run (a job running then is moved forward now).

API keys and controller tokens are derived from SECRET_KEY (HMAC), so a rerun prints
the same working key without storing any secret. If someone revoked the printed key,
the next run derives the next one in its series and issues it.
"""

import hashlib
import hmac
import random
import string
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_dated
from accounts.demo import demo_controller_project, demo_key_project
from accounts.models import APIKey, APIKeyKind, Organization, User
from accounts.selectors import apikey_for_secret
from accounts.services import API_KEY_PREFIX, apikey_create, apikey_revoke
from billing.demo import demo_owner
from billing.models import EntryKind
from billing.services import ledger_post
from ingest.services.ingest import MAX_BATCH_RECORDS, usage_records_ingest
from rollups.services.days import rollup_catch_up
from usage.selectors.records import controller_for_token
from usage.services.controllers import (
    CONTROLLER_TOKEN_PREFIX,
    controller_heartbeat,
    controller_register,
)

DEMO_DAYS = 90
DEMO_CREDITS = Decimal("5000")
_ALPHABET = string.ascii_letters + string.digits

# (name, kind, personal owner's email); the project each works for is in accounts/demo.py
# (Research, Production app; the CI keys in Default).
KEYS = [
    ("Lab workstation", APIKeyKind.WORKSPACE, None),
    ("Production backend", APIKeyKind.WORKSPACE, None),
    ("Ana's notebook", APIKeyKind.PERSONAL, "ana@acme.example"),
    ("Old CI key", APIKeyKind.WORKSPACE, None),  # revoked a month ago
    ("CI pipeline", APIKeyKind.WORKSPACE, None),  # what CI has sent with since
]
PRINTED_KEY = "Lab workstation"
OLD_KEY_REVOKED_DAYS_AGO = 30

# (name, cores, memory GB, days since its last heartbeat: 0 = online now); dgx-01 is
# shared (Default), gpu-box-02 Production app's, lab-node-03 Research's.
CONTROLLERS = [("dgx-01", 64, 256, 0), ("gpu-box-02", 32, 128, 0), ("lab-node-03", 16, 64, 3)]

# (model, share of queries, endpoint, typical input tokens, typical output tokens)
QUERY_MIX = [
    ("llama-3.1-8b", 0.50, "/v1/chat/completions", 400, 250),
    ("llama-3.1-70b", 0.15, "/v1/chat/completions", 900, 500),
    ("e5-large-v2", 0.25, "/v1/embeddings", 300, 0),
    ("phi-3-mini", 0.10, "/v1/completions", 150, 120),
]
MEMBERS = ["owner@acme.example", "ana@acme.example", "ben@acme.example", "dana@acme.example"]
# (model, hours a weekday its worker runs, first hour)
WORKERS = [("llama-3.1-8b", 9, 8), ("llama-3.1-70b", 4, 10), ("e5-large-v2", 12, 7)]


@dataclass(frozen=True)
class DemoUsage:
    api_key: str  # the printed workspace key's secret
    records_sent: int
    accepted: int


def _derived(purpose: str, prefix: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), purpose.encode(), hashlib.sha512).digest()
    body = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:40])
    return f"{prefix}-{body}"


def _demo_key(org: Organization, name: str, kind: str, user: User | None) -> tuple[APIKey, str]:
    """The demo key of this name: the first of its derived series not revoked, else a new one."""
    for generation in range(1000):
        secret = _derived(f"demo-api-key:{org.slug}:{name}:{generation}", API_KEY_PREFIX)
        key = apikey_for_secret(secret=secret)
        if key is None:
            # Demo keys date from before the usage they sent.
            created = timezone.now() - timedelta(days=DEMO_DAYS + 5)
            with audit_dated(created):
                key = apikey_create(
                    org=org,
                    name=name,
                    kind=kind,
                    user=user,
                    created_by=user or demo_owner(org),
                    secret=secret,
                    project=demo_key_project(org=org, key_name=name),
                ).key
            key.created_at = created
            key.save(update_fields=["created_at"])
            return key, secret
        if key.organization_id == org.pk and (not key.is_revoked or name == "Old CI key"):
            return key, secret
    raise RuntimeError("no demo key left in the series")  # pragma: no cover


def usage_demo_heartbeat(*, org: Organization, now: datetime | None = None) -> int:
    """Beat for the demo's controllers that are online by design (the one that went quiet
    days ago stays quiet), as their agents would; how many beat."""
    now = now or timezone.now()
    online = [name for name, *_, silent_days in CONTROLLERS if not silent_days]
    controllers = list(org.controllers.filter(name__in=online))
    for controller in controllers:
        controller_heartbeat(controller=controller, at=now)
    return len(controllers)


def _ensure_controllers(org: Organization, now: datetime) -> None:
    for name, cores, memory, silent_days in CONTROLLERS:
        token = _derived(f"demo-controller:{org.slug}:{name}", CONTROLLER_TOKEN_PREFIX)
        controller = controller_for_token(token=token)
        if controller is None:
            controller = org.controllers.filter(name=name).first()
        if controller is None:
            # Registered when the demo's usage began, as its audit event says.
            with audit_dated(now - timedelta(days=DEMO_DAYS + 5)):
                controller = controller_register(
                    org=org,
                    name=name,
                    cores=cores,
                    memory_gb=memory,
                    token=token,
                    project=demo_controller_project(org=org, controller_name=name),
                ).controller
        if silent_days:  # the offline one went quiet days ago
            if controller.last_heartbeat_at is None:
                controller_heartbeat(controller=controller, at=now - timedelta(days=silent_days))
        elif not controller.online:  # a rerun a minute later changes nothing
            controller_heartbeat(controller=controller, at=now)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _hour_of_day(rng: random.Random) -> float:
    """A moment of the day, in hours: office hours dominate; nights and weekends see a
    trickle."""
    return rng.triangular(6, 22, 14) if rng.random() < 0.85 else rng.uniform(0, 24)


def _day_records(org: Organization, day: date, keys: dict[str | None, APIKey | None]) -> list:
    """(key name or None, record) for everything that happened on this day."""
    rng = random.Random(f"{org.slug}:{day.isoformat()}")  # noqa: S311 - demo data
    # The same draws in the same order every run: queries, workers, matching, jobs.
    return [
        *_day_queries(rng, day),
        *_day_worker_sessions(rng, day),
        *_day_matching_runs(rng, day),
        *_day_jobs(rng, day),
    ]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _ci_key(day: date) -> str:
    """The key CI sent with that day: the old one until it was revoked, then its successor."""
    old_key_alive = day < (timezone.now() - timedelta(days=OLD_KEY_REVOKED_DAYS_AGO)).date()
    return "Old CI key" if old_key_alive else "CI pipeline"


def _day_queries(rng: random.Random, day: date) -> list[tuple[str | None, dict]]:
    """Queries: a weekly rhythm (weekends are quiet) and slow growth over the quarter."""
    midnight = _midnight(day)
    growth = 1 + (day.toordinal() % 90) / 180
    weekday = day.weekday() < 5
    count = int((rng.randint(180, 260) if weekday else rng.randint(40, 80)) * growth)
    senders = ["Production backend", "Lab workstation", "Ana's notebook", _ci_key(day)]
    out: list[tuple[str | None, dict]] = []
    for n in range(count):
        model, _, endpoint, typical_in, typical_out = rng.choices(
            QUERY_MIX, weights=[m[1] for m in QUERY_MIX]
        )[0]
        key = rng.choices(senders, weights=[50, 25, 15, 10])[0]
        record = {
            "id": f"demo-{day:%Y%m%d}-q{n:04d}",
            "kind": "query",
            "occurred_at": _iso(midnight + timedelta(hours=_hour_of_day(rng))),
            "model": model,
            "input_tokens": max(1, int(rng.lognormvariate(0, 0.6) * typical_in)),
            "output_tokens": int(rng.lognormvariate(0, 0.6) * typical_out),
            "endpoint": endpoint,
        }
        if key != "Ana's notebook":
            record["member"] = rng.choices(MEMBERS, weights=[2, 4, 3, 1])[0]
        out.append((key, record))
    return out


def _day_worker_sessions(rng: random.Random, day: date) -> list[tuple[str | None, dict]]:
    """Worker sessions: the serving workers run on weekdays; phi-3-mini now and then."""
    midnight = _midnight(day)
    weekday = day.weekday() < 5
    out: list[tuple[str | None, dict]] = []
    for n, (model, hours, first) in enumerate(WORKERS):
        if not weekday and model != "e5-large-v2":
            continue
        start = midnight + timedelta(hours=first, minutes=rng.randint(0, 40))
        length = timedelta(hours=hours * rng.uniform(0.7, 1.1))
        record = {
            "id": f"demo-{day:%Y%m%d}-w{n}",
            "kind": "worker_session",
            "model": model,
            "started_at": _iso(start),
            "ended_at": _iso(start + length),
        }
        out.append(("Production backend", record))
    if rng.random() < 0.3:
        start = midnight + timedelta(hours=rng.uniform(9, 16))
        out.append(
            (
                "Lab workstation",
                {
                    "id": f"demo-{day:%Y%m%d}-w9",
                    "kind": "worker_session",
                    "model": "phi-3-mini",
                    "started_at": _iso(start),
                    "ended_at": _iso(start + timedelta(minutes=rng.randint(20, 150))),
                },
            )
        )
    return out


def _day_matching_runs(rng: random.Random, day: date) -> list[tuple[str | None, dict]]:
    """Matching runs: a couple a weekday."""
    midnight = _midnight(day)
    out: list[tuple[str | None, dict]] = []
    for n in range(rng.randint(1, 3) if day.weekday() < 5 else 0):
        start = midnight + timedelta(hours=rng.uniform(8, 18))
        num = int(rng.lognormvariate(10, 1.2))
        out.append(
            (
                "Lab workstation",
                {
                    "id": f"demo-{day:%Y%m%d}-m{n}",
                    "kind": "matching",
                    "task": rng.choice(["IDR", "IDR", "CDM"]),
                    "num_records": num,
                    "started_at": _iso(start),
                    "ended_at": _iso(start + timedelta(seconds=30 + num / 400)),
                },
            )
        )
    return out


# Where a key's jobs run (managed, dgx-01, gpu-box-02, lab-node-03, in %): each team on
# its own controller or the shared dgx-01; CI on managed capacity and dgx-01. A job takes
# its key's project; one sent without a key, its controller's (docs/projects.md).
_RESEARCH_PLACES = [40, 25, 0, 35]
_PLACES: dict[str | None, list[int]] = {
    "Lab workstation": _RESEARCH_PLACES,
    "Ana's notebook": _RESEARCH_PLACES,
    "Production backend": [50, 20, 30, 0],
    "Old CI key": [60, 40, 0, 0],
    "CI pipeline": [60, 40, 0, 0],
    None: [30, 40, 10, 20],
}


def _day_jobs(rng: random.Random, day: date) -> list[tuple[str | None, dict]]:
    """Jobs: managed or on a controller; failures, cancellations, unattributed ones."""
    midnight = _midnight(day)
    offline_since = day >= (timezone.now() - timedelta(days=CONTROLLERS[2][3])).date()
    senders = ["Lab workstation", "Production backend", "Ana's notebook", _ci_key(day), None]
    out: list[tuple[str | None, dict]] = []
    for n in range(rng.randint(18, 32) if day.weekday() < 5 else rng.randint(3, 8)):
        submitted = midnight + timedelta(hours=_hour_of_day(rng))
        key = rng.choices(senders, weights=[38, 30, 12, 12, 8])[0]
        where = rng.choices(["managed", "dgx-01", "gpu-box-02", "lab-node-03"], _PLACES[key])[0]
        if where == "lab-node-03" and offline_since:
            where = "managed"
        cores = rng.choice([4, 8, 8, 16, 16, 32]) if where != "lab-node-03" else rng.choice([4, 8])
        started = submitted + timedelta(seconds=rng.randint(5, 600))
        ended = started + timedelta(minutes=rng.lognormvariate(3.8, 0.8))
        fate = rng.choices(["completed", "failed", "cancelled"], weights=[88, 7, 5])[0]
        record = {
            "id": f"demo-{day:%Y%m%d}-j{n:03d}",
            "kind": "job",
            "status": fate,
            "cores": cores,
            "submitted_at": _iso(submitted),
            "started_at": _iso(started),
            "ended_at": _iso(ended),
        }
        if where != "managed":
            record["controller"] = where
        if fate == "failed":
            record["ended_at"] = _iso(started + (ended - started) * rng.uniform(0.05, 0.6))
        if fate == "cancelled" and rng.random() < 0.5:  # cancelled while queued
            del record["started_at"]
            record["ended_at"] = _iso(started)
        out.append((key, record))
    return out


def _as_of(record: dict, now: datetime) -> dict | None:
    """The record as it stands at `now`: None if it has not begun, a live job if running."""

    def at(name: str) -> datetime | None:
        value = record.get(name)
        return datetime.fromisoformat(value) if value else None

    if record["kind"] != "job":
        last = at("ended_at") or at("occurred_at")
        return record if last is not None and last <= now else None
    if at("submitted_at") > now:  # type: ignore[operator]
        return None
    started, ended = at("started_at"), at("ended_at")
    if ended is not None and ended <= now:
        return record
    live = {k: v for k, v in record.items() if k not in {"ended_at", "started_at"}}
    if started is not None and started <= now:
        return {**live, "status": "running", "started_at": record["started_at"]}
    return {**live, "status": "submitted"}


def _last_time(record: dict) -> datetime:
    names = ("ended_at", "started_at", "occurred_at", "submitted_at")
    return max(datetime.fromisoformat(record[n]) for n in names if record.get(n))


@transaction.atomic
def usage_demo_seed(
    *,
    org: Organization,
    days: int = DEMO_DAYS,
    events: Sequence[tuple[datetime, Callable[[], object]]] = (),
    progress: Callable[[str], object] | None = None,
) -> DemoUsage:
    """Give the demo organization keys, controllers, credits and `days` days of usage.

    Everything is posted in time order, `events` (other dated actions, such as the
    billing demo's payments) included, so the ledger reads as it would have happened.
    `progress`, if given, hears one line per calendar month sent.
    """
    now = timezone.now()
    first_day = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    pending = sorted(events, key=lambda event: event[0])

    def run_events_before(moment: datetime) -> None:
        while pending and pending[0][0] < moment:
            pending.pop(0)[1]()

    run_events_before(first_day)
    ledger_post(
        org=org,
        kind=EntryKind.GRANT,
        amount=DEMO_CREDITS,
        reason="Demo credits",
        idempotency_key="demo-usage-credits",
        at=first_day,
    )
    keys, printed = _demo_keys(org)
    _ensure_controllers(org, now)

    # Usage up to the start of this hour: a rerun within the hour sends exactly the same.
    by_key = _records_by_key(
        org, keys, days=days, as_of=now.replace(minute=0, second=0, microsecond=0)
    )
    # A batch per key and day, its debit dated at the day's end (or now, today): the
    # ledger then shows the quarter's burn as it happened (the runway reads the last 7
    # days' debits), not 90 days charged this instant.
    sent = accepted = 0
    days_in_order = sorted({day for by_day in by_key.values() for day in by_day})
    for n, day in enumerate(days_in_order):
        if progress is not None and (n == 0 or day.day == 1):
            last = max(d for d in days_in_order if (d.year, d.month) == (day.year, day.month))
            progress(f"usage of {day:%-d} to {last:%-d %B %Y}, through ingestion")
        day_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        charged_at = min(day_end - timedelta(seconds=1), now)
        run_events_before(charged_at)
        for key_name, by_day in by_key.items():
            day_sent, day_accepted = _send_day(
                org, by_day.get(day, []), api_key=keys[key_name], charged_at=charged_at
            )
            sent += day_sent
            accepted += day_accepted
    run_events_before(now + timedelta(seconds=1))
    _keys_last_used(by_key, keys)

    # The closed days just ingested are marked dirty; roll them up now, as the sweep would.
    rollup_catch_up(org=org)

    _old_key_revoke(keys["Old CI key"], now)
    return DemoUsage(api_key=printed, records_sent=sent, accepted=accepted)


# Records of every demo day, by the key name that sends them (None: no key) and day.
_RecordsByKey = dict[str | None, dict[date, list[dict]]]


def _demo_keys(org: Organization) -> tuple[dict[str | None, APIKey | None], str]:
    """The demo's keys by name (and None for records sent without one), and the secret
    of the key the demo prints."""
    keys: dict[str | None, APIKey | None] = {None: None}
    printed = ""
    for name, kind, email in KEYS:
        user = User.objects.filter(email=email).first() if email else None
        if kind == APIKeyKind.PERSONAL and user is None:
            kind = APIKeyKind.WORKSPACE
        key, secret = _demo_key(org, name, kind, user)
        keys[name] = key
        if name == PRINTED_KEY:
            printed = secret
    return keys, printed


def _records_by_key(
    org: Organization, keys: dict[str | None, APIKey | None], *, days: int, as_of: datetime
) -> _RecordsByKey:
    """The last `days` days' records as they stand at `as_of`, by key name and day."""
    by_key: _RecordsByKey = defaultdict(lambda: defaultdict(list))
    today = as_of.date()
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        for key_name, record in _day_records(org, day, keys):
            current = _as_of(record, as_of)
            if current is not None:
                by_key[key_name][day].append(current)
    return by_key


def _send_day(
    org: Organization, records: list[dict], *, api_key: APIKey | None, charged_at: datetime
) -> tuple[int, int]:
    """Ingest one key's records of a day in batches the API would take: (sent, accepted)."""
    sent = accepted = 0
    for start in range(0, len(records), MAX_BATCH_RECORDS):
        chunk = records[start : start + MAX_BATCH_RECORDS]
        result = usage_records_ingest(
            org=org, records=chunk, api_key=api_key, charged_at=charged_at
        )
        sent += len(chunk)
        accepted += len(result.accepted)
    return sent, accepted


def _keys_last_used(by_key: _RecordsByKey, keys: dict[str | None, APIKey | None]) -> None:
    """Date each key's last use at its newest record, as if it had sent them through the
    API."""
    for key_name, by_day in by_key.items():
        key = keys[key_name]
        records = [record for day_records in by_day.values() for record in day_records]
        if key is not None and records:
            last = max(_last_time(r) for r in records)
            APIKey.objects.filter(pk=key.pk).update(last_used_at=last)


def _old_key_revoke(old: APIKey | None, now: datetime) -> None:
    """Revoke the old CI key, dated as long ago as the demo says."""
    if old is not None and not old.is_revoked:
        revoked = now - timedelta(days=OLD_KEY_REVOKED_DAYS_AGO)
        with audit_dated(revoked):
            apikey_revoke(key=old, actor=demo_owner(old.organization))
        APIKey.objects.filter(pk=old.pk).update(revoked_at=revoked)
