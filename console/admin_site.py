"""Django admin's site for operators: branded, opening on the platform overview.

Its own module: console/admin.py registers models on this site, so the site cannot live
there (the default site is built by importing it).
"""

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from console.selectors import platform_overview


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Usage Console administration"
    site_title = "Usage Console administration"
    index_title = "Platform overview"
    index_template = "admin/console_index.html"

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Operators sign in through the console's login, so the lockout and their second
        # factor apply here too: the admin's own form would make a session on a password.
        if request.method == "GET" and request.user.is_authenticated:
            return super().login(request, extra_context)  # "not authorized" for non-staff
        return redirect_to_login(request.GET.get("next") or reverse("admin:index"))

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        context = {"overview": platform_overview(), **(extra_context or {})}
        return super().index(request, extra_context=context)
