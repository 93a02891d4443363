"""The read replica's health, and the middleware that lets a request read from it.

Health: each process asks the replica, at most every REPLICA_CHECK_SECONDS, whether it
is a standby streaming from its primary and how far behind it is. A replica that cannot
be reached, has lost its primary, or lags more than REPLICA_MAX_LAG_SECONDS is not used
until a later check finds it well again: reads go to the primary meanwhile.

Lag is PostgreSQL's usual measure: zero when the standby has replayed all it received,
else the age of the last transaction it replayed (so a paused or slow replay shows a
growing lag even when the primary has been idle before).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse

REPLICA_DB_ALIAS = "replica"


@dataclass
class ReadRouting:
    """One request's routing: may it read the replica, has it written, did it read there."""

    replica_allowed: bool
    wrote: bool = False
    read_replica: bool = False
    served_again: bool = False


routing_var: contextvars.ContextVar[ReadRouting | None] = contextvars.ContextVar(
    "read_routing", default=None
)


def replica_configured() -> bool:
    return REPLICA_DB_ALIAS in settings.DATABASES


logger = logging.getLogger(__name__)

STICKY_COOKIE = "uc_read_primary_until"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# NULL when the standby has no WAL receiver (it lost its primary: its data may be of any
# age). pg_stat_wal_receiver shows its pid to every role, the other columns only to some.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver) THEN NULL
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
END
"""


@dataclass(frozen=True)
class ReplicaStatus:
    usable: bool
    lag_seconds: float | None
    reason: str
    checked_at: float


_status: ReplicaStatus | None = None
_lock = threading.Lock()


def _check() -> ReplicaStatus:
    connection = connections[REPLICA_DB_ALIAS]
    now = time.monotonic()
    if connection.vendor != "postgresql":
        # Tests mirror the primary on SQLite: nothing to measure.
        return ReplicaStatus(True, 0.0, "ok", now)
    try:
        with connection.cursor() as cursor:
            cursor.execute(LAG_SQL)
            (lag,) = cursor.fetchone()
    except DatabaseError as error:
        connection.close()
        return ReplicaStatus(False, None, f"unreachable: {type(error).__name__}", now)
    if lag is None:
        return ReplicaStatus(False, None, "not streaming from the primary", now)
    lag = float(lag)
    if lag > settings.REPLICA_MAX_LAG_SECONDS:
        return ReplicaStatus(False, lag, f"lagging {lag:.1f} s", now)
    return ReplicaStatus(True, lag, "ok", now)


def replica_status(*, force: bool = False) -> ReplicaStatus | None:
    """The replica's health as last checked (checked again when older than the interval);
    None without a replica."""
    global _status
    if not replica_configured():
        return None
    status = _status
    if not force and status and time.monotonic() - status.checked_at < _interval():
        return status
    with _lock:
        status = _status
        if force or not status or time.monotonic() - status.checked_at >= _interval():
            status = _check()
            if _status is None or status.usable != _status.usable:
                log = logger.info if status.usable else logger.warning
                log("db.replica.status", extra={"usable": status.usable, "reason": status.reason})
            _status = status
    return status


def replica_usable() -> bool:
    status = replica_status()
    return bool(status and status.usable)


def replica_mark_down(reason: str) -> None:
    """Take the replica out until the next check (a query on it just failed)."""
    global _status
    connections[REPLICA_DB_ALIAS].close()
    with _lock:
        _status = ReplicaStatus(False, None, reason, time.monotonic())
    logger.warning("db.replica.status", extra={"usable": False, "reason": reason})


def _interval() -> float:
    return settings.REPLICA_CHECK_SECONDS


def _credentials_key(request: HttpRequest) -> str | None:
    """An API caller's stickiness key: a hash of its credentials (programs keep no cookie)."""
    authorization = request.headers.get("Authorization", "")
    if not authorization:
        return None
    return "replica-sticky:" + hashlib.sha256(authorization.encode()).hexdigest()[:40]


def _recently_wrote(request: HttpRequest) -> bool:
    try:
        if float(request.COOKIES.get(STICKY_COOKIE, "0")) > time.time():
            return True
    except ValueError:
        pass
    key = _credentials_key(request)
    if key is None:
        return False
    try:
        return bool(cache.get(key))
    except Exception:  # no cache: read the primary, never a stale answer
        return True


def _mark_wrote(request: HttpRequest, response: HttpResponse) -> None:
    seconds = settings.REPLICA_STICKY_SECONDS
    response.set_cookie(
        STICKY_COOKIE,
        str(int(time.time()) + seconds),
        max_age=seconds,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
    key = _credentials_key(request)
    if key is not None:
        try:
            cache.set(key, 1, timeout=seconds)
        except Exception:  # the cookie (if kept) still holds
            logger.warning("db.replica.sticky_unavailable")


def _replica_failed(state: ReadRouting) -> bool:
    """This read request read the replica, wrote nothing, and a query on the replica
    failed (Django marks the connection that raised: errors_occurred, cleared at each
    request's start), and it has not been served again yet."""
    return (
        state.read_replica
        and not state.wrote
        and not state.served_again
        and connections[REPLICA_DB_ALIAS].errors_occurred
    )


class ReplicaRoutingMiddleware:
    """Lets a read request read from the replica (console.db_router), and makes a client
    that sent a write request read from the primary for REPLICA_STICKY_SECONDS after."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not replica_configured():
            return self.get_response(request)
        allowed = request.method in SAFE_METHODS and not _recently_wrote(request)
        state = ReadRouting(replica_allowed=allowed)
        token = routing_var.set(state)
        try:
            try:
                response: HttpResponse | None = self.get_response(request)
            except (OperationalError, InterfaceError):
                if not _replica_failed(state):
                    raise
                response = None
            if response is None or (response.status_code >= 500 and _replica_failed(state)):
                # A read that failed on the replica before the view (the session or the
                # user, read by a middleware: process_exception sees only the view's
                # errors) is served once more, whole, from the primary. (The error page is
                # dropped unclosed: closing it would signal the request's end.)
                replica_mark_down("query failed before the view")
                state.replica_allowed, state.served_again = False, True
                response = self.get_response(request)
        finally:
            routing_var.reset(token)
        # A write request (a payment, a key, a rule) makes its client read the primary for
        # a while. A read that wrote bookkeeping (a key's last use, the session's current
        # organization) read the primary for the rest of itself only: otherwise every API
        # call that touches last_used_at would pin its caller to the primary.
        if request.method not in SAFE_METHODS:
            _mark_wrote(request, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        """A read that failed on the replica is served once more from the primary."""
        state = routing_var.get()
        if (
            state is None
            or state.served_again
            or not state.read_replica
            or state.wrote
            or not isinstance(exception, OperationalError | InterfaceError)
            or request.resolver_match is None
        ):
            return None
        replica_mark_down(f"query failed: {type(exception).__name__}")
        state.replica_allowed, state.served_again = False, True
        match = request.resolver_match
        return match.func(request, *match.args, **match.kwargs)
