"""Keeps the client's address for the request's duration, so the audit log can say
where a change came from without every service taking the request."""

import time
from collections.abc import Callable

from allauth.usersessions.models import UserSession
from django.http import HttpRequest, HttpResponse

from core.client_ip import client_ip
from core.request_context import client_ip_var


class ClientAddressMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = client_ip_var.set(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            client_ip_var.reset(token)


class SessionActivityMiddleware:
    """Keeps each signed-in session's row (device, address, last seen) for Settings →
    Security, as allauth's UserSessionsMiddleware does, but writes it at most once a
    minute per session rather than on every request."""

    EVERY_SECONDS = 60
    SEEN_KEY = "_session_seen_at"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is not None and session.session_key and user and user.is_authenticated:
            now = time.time()
            # Kept with the session key it was for: a rotated key (a new password) needs
            # its own row at once.
            key, at = session.get(self.SEEN_KEY) or ("", 0.0)
            if key != session.session_key or now - at >= self.EVERY_SECONDS:
                UserSession.objects.create_from_request(request)
                session[self.SEEN_KEY] = (session.session_key, now)
        return self.get_response(request)
