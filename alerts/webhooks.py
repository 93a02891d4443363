"""Alert webhooks: signing, address checks and the one HTTP POST.

A receiver verifies a delivery by recomputing HMAC-SHA256, keyed with the
organization's webhook secret, over "<timestamp>.<raw body>", comparing it with the
signature header in constant time and refusing timestamps too far from its clock
(replays): see webhook_signature_verify.

Server-side request forgery: only global unicast addresses are called. IPv6 forms that
carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64
64:ff9b::/96, 6to4 2002::/16) are judged by that IPv4 address; the local-use NAT64
prefix 64:ff9b:1::/48, site-local fec0::/10 and the IETF protocol assignments
192.0.0.0/24 are refused outright, as is anything private, loopback, link-local,
shared, reserved, multicast or unspecified. When a rule is saved only the URL's form is
checked, and an address written in it (a name is not resolved then: the form must not
tell what an internal name resolves to, nor make the request wait on DNS); at every
delivery the host is resolved, every address checked, and the request connects to the
very address that was checked, so a DNS answer that changes in between (rebinding)
cannot redirect it. A refusal never says what a name resolved to. Redirects are not
followed. ALERT_WEBHOOK_ALLOW_PRIVATE lifts the address check (for a receiver on the
same host or network, and the tests' local receiver).
"""

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

SIGNATURE_HEADER = "X-Console-Signature"
TIMESTAMP_HEADER = "X-Console-Timestamp"
SIGNATURE_TOLERANCE_SECONDS = 300
USER_AGENT = "UsageConsole-Alerts/1"


class WebhookRefused(Exception):
    """The URL may not be called (scheme, or an address that is not public)."""


class WebhookFailed(Exception):
    """The receiver could not be reached or did not answer 2xx; worth retrying."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: "v1=" and hex HMAC-SHA256 over "<timestamp>.<body>"."""
    signed = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def webhook_signature_verify(
    *,
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - sent_at) > tolerance:
        return False
    expected = webhook_signature(secret=secret, timestamp=sent_at, body=body)
    return hmac.compare_digest(expected, signature)


def _private_allowed() -> bool:
    return bool(settings.ALERT_WEBHOOK_ALLOW_PRIVATE)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REFUSED_NETWORKS = (
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.ip_network("fec0::/10"),  # site-local (deprecated, still routed inside)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments (incl. .9, .10)
)
REFUSED_MESSAGE = "webhooks go to public internet addresses only; this host is not one"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries, if it is one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # NAT64, IPv4-compatible
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_is_public(address: str) -> bool:
    """Whether an IP address is global unicast, after normalising the IPv6 forms that
    carry an IPv4 address (see the module docstring)."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _REFUSED_NETWORKS):
            return False
        ip = _embedded_ipv4(ip) or ip
    if any(ip in network for network in _REFUSED_NETWORKS):
        return False
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class WebhookTarget:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked IP the request connects to


def webhook_target(url: str) -> WebhookTarget:
    """Parse, resolve and check the URL (WebhookRefused when it may not be called)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("use an http:// or https:// URL with a host name")
    if parts.username or parts.password:
        raise WebhookRefused("put no credentials in the URL; deliveries are signed instead")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookRefused("the port is not valid") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        # The same words as a private answer: nothing about internal names leaks.
        raise WebhookRefused(REFUSED_MESSAGE) from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise WebhookRefused(REFUSED_MESSAGE)
    # Every address must be public: a host with one private answer could be steered to it.
    if not _private_allowed() and not all(address_is_public(a) for a in addresses):
        raise WebhookRefused(REFUSED_MESSAGE)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return WebhookTarget(parts.scheme, parts.hostname, port, path, addresses[0])


def webhook_url_check(url: str) -> None:
    """Raise WebhookRefused when the URL may not receive alerts, judging what can be
    judged without resolving the name (scheme, credentials, port, an address written in
    the URL, localhost): deliveries check the resolved addresses (webhook_target)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("use an http:// or https:// URL with a host name")
    if parts.username or parts.password:
        raise WebhookRefused("put no credentials in the URL; deliveries are signed instead")
    try:
        parts.port  # noqa: B018 - raises ValueError when out of range
    except ValueError:
        raise WebhookRefused("the port is not valid") from None
    if _private_allowed():
        return
    host = parts.hostname.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        raise WebhookRefused(REFUSED_MESSAGE)
    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name: resolved and checked at every delivery
    if not address_is_public(str(literal)):
        raise WebhookRefused(REFUSED_MESSAGE)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: WebhookTarget, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: WebhookTarget, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def webhook_post(*, url: str, body: bytes, secret: str, timestamp: int | None = None) -> int:
    """POST the signed body; the status code of a 2xx answer, else WebhookFailed."""
    target = webhook_target(url)
    timestamp = timestamp if timestamp is not None else int(time.time())
    timeout = float(settings.ALERT_WEBHOOK_TIMEOUT_SECONDS)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookFailed(f"{type(exc).__name__}: {exc}"[:500]) from exc
    finally:
        connection.close()
    if not 200 <= status < 300:
        raise WebhookFailed(f"the receiver answered {status}", status=status)
    return status
