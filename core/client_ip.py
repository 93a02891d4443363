"""The client's address, as the trusted reverse proxies in front of the console saw it.

With TRUSTED_PROXY_COUNT = N (settings), the last N entries of X-Forwarded-For were
appended by our own proxies, so the client is the N-th entry from the right; anything
left of it was written by the client and is ignored. With no proxies (the default) the
header is ignored entirely and REMOTE_ADDR is the client, so a client cannot pick the
address its login failures or password resets are counted against.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address (None when the request carries none)."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = int(settings.TRUSTED_PROXY_COUNT or 0)
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    if len(hops) < proxies:
        # Fewer hops than proxies: the request did not come through them all.
        return remote
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
