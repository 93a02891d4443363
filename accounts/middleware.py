"""Keeps the client's address for the request's duration, so the audit log can say
where a change came from without every service taking the request."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from accounts.client_ip import client_ip
from accounts.request_context import client_ip_var


class ClientAddressMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = client_ip_var.set(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            client_ip_var.reset(token)
