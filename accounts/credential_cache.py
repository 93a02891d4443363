"""The API's credentials, remembered in this process for a second or so.

Every API request names its credential; reading it (with its organization and person)
from the database was half of the cheapest request's time. Each process keeps what it
read for API_CREDENTIAL_CACHE_SECONDS (default 1), then reads it again: a key revoked,
a person removed or a token expired in one process is refused by every other process
within that time, with nothing to broadcast. In the process that made the change the
services clear the cache at once (`credentials_cache_clear`).

A read request takes only the credential (and its person) from here: it reads the
organization afresh, where its reads are routed (accounts.api_core).

Callers get their own copies of the model instances, so nothing one request sets on them
is seen by another; what is cached is only what the database said.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.base import ModelState

# Past this many credentials the cache starts afresh: a flood of made-up secrets costs
# database lookups (as without the cache), never memory.
MAX_ENTRIES = 10_000

_entries: dict[str, tuple[float, Any]] = {}
_lock = threading.Lock()
_MISSING = object()


def ttl_seconds() -> float:
    return float(settings.API_CREDENTIAL_CACHE_SECONDS)


def credential_cached[T](key: str, load: Callable[[], T]) -> T:
    """What `load` returns for this credential key, read at most ttl_seconds ago; None
    (unknown) is not kept, so a key created a moment ago works at once."""
    ttl = ttl_seconds()
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and entry[0] > now:
        return entry[1]
    value = load()
    if ttl > 0 and value is not None:
        with _lock:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[key] = (now + ttl, value)
    return value


def credentials_cache_clear() -> None:
    """Forget every credential now and again when the caller's transaction commits (a
    request between the two could otherwise keep what was read before the commit)."""
    _entries.clear()
    transaction.on_commit(_entries.clear)


def instance_copy[T](instance: T, **related: Any) -> T:
    """A shallow copy of a model instance whose related objects are the given ones (copies
    themselves), so a request's changes to it stay its own.

    What `copy.copy` makes of a model instance, without its trip through pickling's
    protocol (which looks the model up again and was a tenth of the cheapest API call):
    the fields and a ModelState of its own, with its own cache of related objects."""
    cls = type(instance)
    duplicate = cls.__new__(cls)
    fields = instance.__dict__.copy()
    state = fields["_state"]
    own = ModelState.__new__(ModelState)
    own.__dict__.update(state.__dict__)
    own.fields_cache = state.fields_cache.copy()
    # Caches bound to the original instance stay with it.
    own.__dict__.pop("related_managers_cache", None)
    own.__dict__.pop("peers", None)
    fields["_state"] = own
    duplicate.__dict__.update(fields)
    for name, value in related.items():
        setattr(duplicate, name, value)
    return duplicate
