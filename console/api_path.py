"""The program-facing API's own short path through the middleware.

A program calling /api/v1/ with `Authorization: Bearer <secret>` has no session, no
cookie, no CSRF token, no messages and no templates: the middleware that serves pages
would only cost it time (reading a session, signing a CSRF cookie). `ApiPathMiddleware`
sits right after the middleware that sets the headers every answer carries (HTTPS
redirect, security headers, content security policy, no framing), so the API's answers
carry them too; for such a request it resolves the URL and calls the API view itself,
keeping only what the API uses: the client's address for the audit log. Every other request
(pages, the browser's own calls to the API with its session) takes the whole chain.
"""

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, resolve

from core.client_ip import client_ip
from core.request_context import client_ip_var

API_PREFIX = "/api/v1/"

# Resolving a path walks the URL patterns one by one (a tenth of the cheapest call's
# time): each process keeps what its API paths resolved to. Paths carry ids, so the
# table starts afresh past this many rather than grow.
RESOLVED_MAX = 4096
_resolved: dict[str, ResolverMatch] = {}


def api_resolve(path: str) -> ResolverMatch:
    """What `path` resolves to (Resolver404 if nothing), remembered in this process: the
    URL patterns are fixed once the process has started."""
    match = _resolved.get(path)
    if match is None:
        match = resolve(path)
        if len(_resolved) >= RESOLVED_MAX:
            _resolved.clear()
        _resolved[path] = match
    return match


@receiver(setting_changed)
def _urlconf_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "ROOT_URLCONF":
        _resolved.clear()


def is_program_call(request: HttpRequest) -> bool:
    """An API call made with a bearer credential (a program's, not the browser's)."""
    if not request.path_info.startswith(API_PREFIX):
        return False
    scheme = request.META.get("HTTP_AUTHORIZATION", "")[:7]
    return scheme.lower() == "bearer "


class ApiPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_program_call(request):
            return self.get_response(request)
        # A bearer credential is the only sign-in here; the views that also accept a
        # session see nobody logged in.
        request.user = AnonymousUser()  # type: ignore[assignment]
        token = client_ip_var.set(client_ip(request))
        try:
            match = api_resolve(request.path_info)
            request.resolver_match = match
            response = match.func(request, *match.args, **match.kwargs)
        finally:
            client_ip_var.reset(token)
        # What CommonMiddleware would add: a length, so the connection can stay open.
        if not response.streaming and not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response
