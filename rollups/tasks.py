"""Celery tasks for the rollups: thin wrappers taking ids and ISO dates. Their names keep
the `usage.` prefix they were published with (beat schedules and queued messages carry
them).

Acknowledged late and retried with backoff; running one twice, or two at once, is safe
(a day's or an hour's recomputation is idempotent and serialized by its state row's
lock). The sweeps enqueue one task per organization (its due days, or hours): one
organization's failure is recorded and retried (core/sweeps.py) and never holds up
the others, and within it a failing day does not hold up its other days.
"""

from collections import defaultdict
from datetime import date

from celery import shared_task
from django.db import OperationalError

from accounts.models import Organization
from core.sweeps import SWEEP_MAX_RETRIES, sweep_org_run

# Modules, not names: tests replace their functions (monkeypatch) and see it here.
from rollups.services import days as rollup_days
from rollups.services import hours as rollup_hours


class _Failed(Exception):
    """Some of an organization's days (or hours) failed; the message lists them."""

    def __init__(self, failed: list, errors: list[BaseException]) -> None:
        first = errors[0]
        super().__init__(f"{len(failed)} failed, first: {type(first).__name__}: {first}")
        self.failed = failed


@shared_task(
    name="usage.rollup_day",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def rollup_day_run(org_id: int, day: str) -> int:
    """Recompute one organization's closed day (ISO date); returns the rows written."""

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:  # deleted since: nothing to roll up
        return 0
    return rollup_days.rollup_day(org=org, day=date.fromisoformat(day)).rows


@shared_task(name="usage.rollup_org", bind=True, acks_late=True, max_retries=SWEEP_MAX_RETRIES)
def rollup_org_run(self, org_id: int, days: list[str]) -> int:
    """Recompute one organization's due days (ISO dates); returns the rows written. Days
    that fail are recorded and retried with backoff; the others are kept."""
    return _each_isolated(self, org_id=org_id, sweep="rollup", items=days, run=_rollup_one_day)


def _rollup_one_day(org, day: str) -> int:

    return rollup_days.rollup_day(org=org, day=date.fromisoformat(day)).rows


def _each_isolated(task, *, org_id: int, sweep: str, items: list, run) -> int:
    org = Organization.objects.filter(pk=org_id).first()
    if org is None:  # deleted since: nothing to roll up
        return 0
    state = {"rows": 0, "pending": list(items)}

    def work() -> int:
        failed, errors = [], []
        for item in state["pending"]:
            try:
                state["rows"] += (
                    run(org, *item) if isinstance(item, list | tuple) else run(org, item)
                )
            except Exception as exc:  # this item only: the others still run
                failed.append(item)
                errors.append(exc)
        state["pending"] = failed
        if failed:
            raise _Failed(failed, errors)
        return state["rows"]

    target = ", ".join(str(i) for i in items[:5]) + (" ..." if len(items) > 5 else "")
    result = sweep_org_run(
        task,
        org_id=org_id,
        sweep=sweep,
        target=target,
        work=work,
        retry_kwargs={"args": (org_id, state["pending"])},
    )
    return result or 0


def _per_org(due) -> dict[int, list]:
    by_org: dict[int, list] = defaultdict(list)
    for org_id, *rest in due:
        by_org[org_id].append(rest)
    return by_org


@shared_task(name="usage.rollup_sweep", acks_late=True)
def rollup_sweep() -> int:
    """Enqueue one rollup task per organization with due days (yesterday, dirty and
    re-zoned days); returns the org-days due."""

    due = rollup_days.rollup_due()
    for org_id, days in _per_org(due).items():
        rollup_org_run.delay(org_id, [day.isoformat() for (day,) in days])
    return len(due)


@shared_task(
    name="usage.rollup_hour",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def rollup_hour_run(org_id: int, day: str, hour: int) -> int:
    """Recompute one finished hour of an organization's day (ISO date, hour counted from
    the day's first instant); returns the rows written."""

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:  # deleted since: nothing to roll up
        return 0
    return rollup_hours.rollup_hour(org=org, day=date.fromisoformat(day), hour=hour).rows


@shared_task(
    name="usage.rollup_hours_org", bind=True, acks_late=True, max_retries=SWEEP_MAX_RETRIES
)
def rollup_hours_org_run(self, org_id: int, hours: list[list]) -> int:
    """Recompute one organization's due hours ([ISO date, hour] pairs); returns the rows
    written. Hours that fail are recorded and retried with backoff."""
    return _each_isolated(
        self, org_id=org_id, sweep="rollup_hours", items=hours, run=_rollup_one_hour
    )


def _rollup_one_hour(org, day: str, hour: int) -> int:

    return rollup_hours.rollup_hour(org=org, day=date.fromisoformat(day), hour=hour).rows


@shared_task(name="usage.rollup_hours_sweep", acks_late=True)
def rollup_hours_sweep() -> int:
    """Enqueue one hour-rollup task per organization with due hours (the last finished
    ones, dirty ones) and drop the hour rollups older than the days kept."""

    rollup_hours.rollup_hours_prune()
    due = rollup_hours.rollup_hours_due()
    for org_id, hours in _per_org(due).items():
        rollup_hours_org_run.delay(org_id, [[day.isoformat(), hour] for day, hour in hours])
    return len(due)
