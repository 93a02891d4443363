"""Reads off the primary when there is a replica (DATABASE_REPLICA_URL).

Only what a web request reads may go to the replica, and only when all of these hold:

- the request is a read (GET, HEAD, OPTIONS) and has written nothing yet;
- the client has not written in the last REPLICA_STICKY_SECONDS (ReplicaRoutingMiddleware
  marks a client that wrote with a cookie, and an API caller by its credentials in the
  cache), so everybody sees their own payment, key or rule at once;
- the primary connection is not inside a transaction (a service reading what it is
  about to write reads the primary);
- the replica answered its last health check within REPLICA_CHECK_SECONDS, and was then
  less than REPLICA_MAX_LAG_SECONDS behind (console.replica).

Everything else (Celery tasks, ingestion, management commands, migrations, services in a
transaction) has no routing state and uses the primary, which is the safe default: code
opts in to stale reads only by being a read request.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections

from console import replica
from console.replica import REPLICA_DB_ALIAS, replica_configured, routing_var


def read_alias() -> str:
    """Where a read made now goes: the replica or the primary ("default")."""
    state = routing_var.get()
    if state is None or not state.replica_allowed or state.wrote:
        return DEFAULT_DB_ALIAS
    if not replica_configured() or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    if not replica.replica_usable():  # looked up at call time: tests stand in for it
        return DEFAULT_DB_ALIAS
    state.read_replica = True
    return REPLICA_DB_ALIAS


class PrimaryReplicaRouter:
    """Writes to the primary; reads as read_alias() decides; never migrates the replica."""

    def db_for_read(self, model, **hints) -> str:
        return read_alias()

    def db_for_write(self, model, **hints) -> str:
        state = routing_var.get()
        if state is not None:
            # From now on this request reads what it wrote: the primary.
            state.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        # Both aliases hold the same rows.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool | None:
        # The replica is read-only and gets its schema by replication.
        return False if db == REPLICA_DB_ALIAS else None
