"""Destructive or disruptive actions ask first, and secrets survive one redirect.

An action's URL answers GET with a page that says what will happen and a button that
POSTs to the same URL; the console's script shows that page's form in a <dialog> instead
(an htmx GET of the same URL), so without script the page itself is the confirmation.
A secret shown once (a new key's, a token's) is kept by the POST and popped by the page
it redirects to, so a reload neither repeats the action nor shows it again.
"""

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

SHOWN_ONCE_PREFIX = "shown-once:"
SHOWN_ONCE_COOKIE = "shown_once_"
SHOWN_ONCE_SECONDS = 300


@dataclass(frozen=True)
class Confirmation:
    """What the confirmation says: the question, what follows, the button and the way back."""

    title: str
    consequence: str
    action: str
    back: str


def confirm_page(request: HttpRequest, confirmation: Confirmation, *, nav: str = "settings"):
    """The confirmation as a page, or as the dialog's form for an htmx request."""
    template = "confirm.html"
    if getattr(request, "htmx", False):
        template += "#confirm-form"
    response: HttpResponse = render(
        request,
        template,
        {"confirmation": confirmation, "nav": nav, "dialog": bool(getattr(request, "htmx", False))},
    )
    return response


def shown_once_keep(
    request: HttpRequest, response: HttpResponse, kind: str, **data: Any
) -> HttpResponse:
    """Keep what the next page shows once (JSON values), split in two halves: a one-time
    pad in a short-lived cookie and the data XOR the pad in the session, so the session
    table never holds a secret and the cookie alone is noise."""
    plain = json.dumps(data).encode()
    pad = secrets.token_bytes(len(plain))
    request.session[SHOWN_ONCE_PREFIX + kind] = _b64(_xor(plain, pad))
    response.set_cookie(
        SHOWN_ONCE_COOKIE + kind,
        _b64(pad),
        max_age=SHOWN_ONCE_SECONDS,
        httponly=True,
        secure=request.is_secure(),
        samesite="Lax",
    )
    return response


def shown_once_pop(request: HttpRequest, kind: str) -> dict | None:
    """What the previous POST kept for this page, removed from the session as it is read."""
    sealed = request.session.pop(SHOWN_ONCE_PREFIX + kind, None)
    pad = request.COOKIES.get(SHOWN_ONCE_COOKIE + kind)
    if not sealed or not pad:
        return None
    try:
        return json.loads(_xor(base64.urlsafe_b64decode(sealed), base64.urlsafe_b64decode(pad)))
    except ValueError:  # a cookie from another keep: nothing to show
        return None


def _xor(data: bytes, pad: bytes) -> bytes:
    if len(data) != len(pad):
        raise ValueError("pad and data differ in length")
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()
