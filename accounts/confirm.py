"""Destructive or disruptive actions ask first, and secrets survive one redirect.

An action's URL answers GET with a page that says what will happen and a button that
POSTs to the same URL; the console's script shows that page's form in a <dialog> instead
(an htmx GET of the same URL), so without script the page itself is the confirmation.
A secret shown once (a new key's, a token's) is kept in the session by the POST and
popped by the page it redirects to, so a reload neither repeats the action nor shows it
again.
"""

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

SHOWN_ONCE_PREFIX = "shown-once:"


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


def shown_once_keep(request: HttpRequest, kind: str, **data: Any) -> None:
    """Keep what the next page shows once (JSON-serializable values)."""
    request.session[SHOWN_ONCE_PREFIX + kind] = data


def shown_once_pop(request: HttpRequest, kind: str) -> dict | None:
    """What the previous POST kept for this page, removed as it is read."""
    return request.session.pop(SHOWN_ONCE_PREFIX + kind, None)
