"""Periodic sweeps: each organization's work in its own Celery task, its failures, and
how each scheduled run went (core/models.py).

Tenant isolation: a failure in one organization's work is logged, recorded
(SweepFailure, read-only in admin) and retried with backoff, never stopping the other
organizations' tasks.

A task calls `sweep_org_run(task, org_id=..., sweep=..., work=...)`: `work` raising
records the failure, then retries the task (countdown 1, 2, 4 ... minutes, up to an
hour) until its retries are spent, when the last record says `final` and the task ends
without raising. Run eagerly (no broker: the embedded default) there is no retry (the
sweep runs its organizations one after another in-process, and the next sweep tries
again): the failure is recorded as final and the sweep goes on to the next organization.

Runs: Celery's task signals note the last outcome of every task the beat schedule runs
(SweepRun); admin's overview lists the sweeps whose last run failed.
"""

import logging
from collections.abc import Callable
from typing import Any

from celery.signals import task_failure, task_success
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from core.models import SweepFailure, SweepRun

logger = logging.getLogger(__name__)

SWEEP_MAX_RETRIES = 5


def sweep_backoff(retries: int) -> int:
    """Seconds before retry number retries + 1: 60, 120, 240 ... at most an hour."""
    return min(3600, 60 * 2**retries)


def sweep_failure_record(
    *, org_id: int, sweep: str, target: str, error: BaseException, attempt: int, final: bool
) -> SweepFailure | None:
    """Log and record one organization's failed sweep work (None if the org is gone)."""
    logger.error(
        "sweep.org_failed",
        extra={
            "org": org_id,
            "sweep": sweep,
            "target": target,
            "attempt": attempt,
            "final": final,
            "error": type(error).__name__,
        },
        exc_info=error,
    )
    with transaction.atomic():
        tenants = SweepFailure._meta.get_field("organization").related_model._default_manager
        if not tenants.filter(pk=org_id).exists():
            return None
        return SweepFailure.objects.create(
            organization_id=org_id,
            sweep=sweep,
            target=target[:200],
            error=f"{type(error).__name__}: {error}"[:500],
            attempt=attempt,
            final=final,
        )


def sweep_org_run(
    task: Any,
    *,
    org_id: int,
    sweep: str,
    work: Callable[[], Any],
    target: str = "",
    retry_kwargs: dict | None = None,
) -> Any:
    """Run one organization's work for a bound task, isolating its failure (module doc).
    `retry_kwargs` replace the task's arguments on retry (e.g. only the days that failed)."""
    try:
        return work()
    except Exception as exc:
        retries = task.request.retries
        eager = bool(task.request.is_eager)
        final = eager or retries >= task.max_retries
        sweep_failure_record(
            org_id=org_id, sweep=sweep, target=target, error=exc, attempt=retries + 1, final=final
        )
        if final:
            return None
        raise task.retry(
            countdown=sweep_backoff(retries), max_retries=task.max_retries, **(retry_kwargs or {})
        ) from exc


# --- Runs of the scheduled tasks ------------------------------------------------------


def scheduled_task_names() -> frozenset[str]:
    """The tasks the beat schedule runs (the sweeps)."""
    return frozenset(entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values())


def sweep_run_record(*, task: str, ok: bool, error: str = "") -> None:
    """Note one finished run of a scheduled task: success resets the failure count."""
    now = timezone.now()
    SweepRun.objects.get_or_create(task=task)
    if ok:
        fields = {"last_succeeded_at": now, "failures_in_a_row": 0}
    else:
        fields = {
            "last_failed_at": now,
            "last_error": error[:500],
            "failures_in_a_row": F("failures_in_a_row") + 1,
        }
    SweepRun.objects.filter(task=task).update(last_started_at=now, **fields)


def _on_success(sender=None, **_kwargs) -> None:
    _record(getattr(sender, "name", ""), ok=True)


def _on_failure(sender=None, exception=None, **_kwargs) -> None:
    _record(getattr(sender, "name", ""), ok=False, error=repr(exception))


def _record(task: str, *, ok: bool, error: str = "") -> None:
    if task not in scheduled_task_names():
        return
    try:
        sweep_run_record(task=task, ok=ok, error=error)
    except DatabaseError:
        # Bookkeeping must never turn a sweep's success into a failure.
        logger.warning("core.sweep_run.unrecorded", extra={"task": task}, exc_info=True)


def connect() -> None:
    task_success.connect(_on_success, weak=False, dispatch_uid="core.sweep_success")
    task_failure.connect(_on_failure, weak=False, dispatch_uid="core.sweep_failure")
