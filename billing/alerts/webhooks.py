"""Alert webhooks: signing, address checks and the one HTTP POST.

A receiver verifies a delivery by recomputing HMAC-SHA256, keyed with the
organization's webhook secret, over "<timestamp>.<raw body>", comparing it with the
signature header in constant time and refusing timestamps too far from its clock
(replays): see webhook_signature_verify.

Server-side request forgery: a URL whose host resolves to a private, loopback,
link-local or otherwise non-public address is refused, when the rule is saved and
again at every delivery; the request then connects to the very address that was
checked, so a DNS answer that changes in between (rebinding) cannot redirect it.
Redirects are not followed. ALERT_WEBHOOK_ALLOW_PRIVATE lifts the address check
(for a receiver on the same host or network, and the tests' local receiver).
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
    return bool(getattr(settings, "ALERT_WEBHOOK_ALLOW_PRIVATE", False))


def address_is_public(address: str) -> bool:
    """Whether an IP address is globally routable (not private, loopback, link-local,
    shared, reserved, multicast or unspecified; IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
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
        raise WebhookRefused(f"the host {parts.hostname} could not be resolved") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise WebhookRefused(f"the host {parts.hostname} has no address")
    if not _private_allowed():
        # Every address must be public: a host with one private answer could be steered to it.
        private = [a for a in addresses if not address_is_public(a)]
        if private:
            raise WebhookRefused(
                f"{parts.hostname} resolves to a private, loopback or link-local address "
                f"({private[0]}); webhooks go to public addresses only"
            )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return WebhookTarget(parts.scheme, parts.hostname, port, path, addresses[0])


def webhook_url_check(url: str) -> None:
    """Raise WebhookRefused when the URL may not receive alerts."""
    webhook_target(url)


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
    timeout = float(getattr(settings, "ALERT_WEBHOOK_TIMEOUT_SECONDS", 5))
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
