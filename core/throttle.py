"""A fixed-window request counter in the cache, for forms that send email (password
reset): how many times a key was used in the current window, and whether that is
within its limit. Keys are hashed (they are email or IP addresses)."""

import hashlib
import time

from django.core.cache import cache


def throttle_hit(*, scope: str, key: str, limit: int, window_seconds: int) -> bool:
    """Count one use of `key` in `scope`; True while the window's count is within limit."""
    window = int(time.time()) // window_seconds
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    cache_key = f"throttle:{scope}:{digest}:{window}"
    cache.add(cache_key, 0, timeout=window_seconds + 60)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr
        cache.set(cache_key, 1, timeout=window_seconds + 60)
        count = 1
    return count <= limit
