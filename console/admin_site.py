"""Django admin's site for operators: branded, opening on the platform overview.

Its own module: console/admin.py registers models on this site, so the site cannot live
there (the default site is built by importing it).
"""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from console.selectors import platform_overview


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Usage Console administration"
    site_title = "Usage Console administration"
    index_title = "Platform overview"
    index_template = "admin/console_index.html"

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Every organization's name, spend and payments: only for operators allowed to
        # see the organizations (a staff user with no permission gets the bare index).
        allowed = request.user.has_perm("accounts.view_organization")
        context = {"overview": platform_overview() if allowed else None, **(extra_context or {})}
        return super().index(request, extra_context=context)
