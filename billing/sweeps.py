"""Tenant isolation for periodic sweeps: each organization's work is its own Celery task,
and a failure in it is logged, recorded (SweepFailure, read-only in admin) and retried
with backoff, never stopping the other organizations' tasks.

A task calls `sweep_org_run(task, org_id=..., sweep=..., work=...)`: `work` raising
records the failure, then retries the task (countdown 1, 2, 4 ... minutes, up to an
hour) until its retries are spent, when the last record says `final` and the task ends
without raising. Run eagerly (no broker: the embedded default) there is no retry (the
sweep runs its organizations one after another in-process, and the next sweep tries
again): the failure is recorded as final and the sweep goes on to the next organization.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from accounts.models import Organization
from billing.models import SweepFailure

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
        if not Organization.objects.filter(pk=org_id).exists():
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
