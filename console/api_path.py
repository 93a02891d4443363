"""The program-facing API's own short path through the middleware.

A program calling /api/v1/ with `Authorization: Bearer <secret>` has no session, no
cookie, no CSRF token, no messages and no templates: the middleware that serves pages
would only cost it time (reading a session, signing a CSRF cookie). `ApiPathMiddleware`
sits right after the middleware that sets the headers every answer carries (HTTPS
redirect, security headers, content security policy, no framing), so the API's answers
carry them too; for such a request it resolves the URL and calls the API view itself,
keeping only what the API uses: the client's address for the audit log. Every other request
(pages, the browser's own calls to the API with its session) takes the whole chain.

`LeanApiMiddleware` goes further for the gateway's hot path (`POST /api/v1/usage/authorize`,
asked before every request the gateway serves): it sits right after the probes and answers
from the endpoint's lean path (spend/api/authorize.py) before the rest of the chain and
django-ninja, doing itself what the chain would do for it: the request id and log context,
the HTTPS redirect (left to the chain), the security headers (the chain's own middleware
objects add them), the client's address, the errors rendered by the API's own handlers.
Whatever the lean path does not take on (a body it leaves to the endpoint's validation, a
read replica's routing) continues down the chain unchanged.
"""

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.exception import response_for_exception
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import ResolverMatch, resolve

from console.observability import request_id_for
from console.replica import replica_configured
from core.api import APIError, CredentialRejected
from core.client_ip import client_ip
from core.request_context import client_ip_var, organization_var, request_id_var
from spend.api.authorize import authorize_lean

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
    _page_headers.clear()


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


# The calls answered on the lean path: (method, path) → the handler, which returns None to
# leave the request to the chain.
LEAN_CALLS: dict[tuple[str, str], Callable[[HttpRequest], HttpResponse | None]] = {
    ("POST", API_PREFIX + "usage/authorize"): authorize_lean,
}


def _no_response(request: HttpRequest) -> HttpResponse:  # pragma: no cover
    raise AssertionError("used for the header middleware's process_* methods only")


# The headers the chain's header middleware adds to an API answer depend only on the
# settings and on whether the request came over HTTPS (no nonce, no per-view policy on
# these answers): each process asks the middleware once per setting and keeps them.
_page_headers: dict[bool, tuple[tuple[str, str], ...]] = {}


class LeanApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        # The chain's own header middleware, called here in the chain's order, so the lean
        # answers carry exactly the headers the API's answers carry.
        self.security = SecurityMiddleware(_no_response)
        self.csp = ContentSecurityPolicyMiddleware(_no_response)
        self.frame = XFrameOptionsMiddleware(_no_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        handler = LEAN_CALLS.get((request.method or "", request.path_info))
        if (
            handler is None
            or not is_program_call(request)
            # A replica's routing (and a writer's stickiness) is the chain's business.
            or replica_configured()
            # The HTTPS redirect: the chain answers it.
            or self.security.process_request(request) is not None
        ):
            return self.get_response(request)
        response = self._lean(request, handler)
        if response is None:
            return self.get_response(request)
        for header, value in self._headers(request):
            if header not in response:
                response[header] = value
        response["Content-Length"] = str(len(response.content))
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response

    def _headers(self, request: HttpRequest) -> tuple[tuple[str, str], ...]:
        secure = request.is_secure()
        headers = _page_headers.get(secure)
        if headers is None:
            # Innermost first, as the chain runs them: no framing, the policy, security.
            blank = HttpResponse()
            before = set(blank.headers)
            for middleware in (self.frame, self.csp, self.security):
                blank = middleware.process_response(request, blank)
            headers = tuple((k, v) for k, v in blank.headers.items() if k not in before)
            _page_headers[secure] = headers
        return headers

    def _lean(
        self, request: HttpRequest, handler: Callable[[HttpRequest], HttpResponse | None]
    ) -> HttpResponse | None:
        # What RequestIdMiddleware and the API's short path set up for the view.
        rid = request_id_for(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = rid  # type: ignore[attr-defined]
        request.user = AnonymousUser()  # type: ignore[assignment]
        tokens = (
            request_id_var.set(rid),
            organization_var.set(None),
            client_ip_var.set(client_ip(request)),
        )
        try:
            return handler(request)
        except (APIError, CredentialRejected, RequestDataTooBig) as exc:
            from console.api import api  # the URL configuration's, loaded by then

            return api.on_exception(request, exc)
        except Exception as exc:
            # As the chain does for a view that fails: the exception logged and signalled,
            # the 500 answer naming the request id (which then gets the headers too).
            return response_for_exception(request, exc)
        finally:
            client_ip_var.reset(tokens[2])
            organization_var.reset(tokens[1])
            request_id_var.reset(tokens[0])
