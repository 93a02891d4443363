"""Django admin's site for operators: branded, opening on the platform overview.

Its own module: every app's admin.py registers its models on this site, so the site cannot live
there (the default site is built by importing it).
"""

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from accounts.signin_views import ConsoleLoginView
from console.selectors import platform_overview


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Usage Console administration"
    site_title = "Usage Console administration"
    index_title = "Platform overview"
    index_template = "admin/console_index.html"

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Django admin's login form, through the console's password step: the same
        lockout, then the operator's second factor before any session is made."""
        from django.contrib.admin.forms import AdminAuthenticationForm

        redirect_url = ConsoleLoginView().get_redirect_url(request) or reverse(
            "admin:index", current_app=self.name
        )
        if request.method == "GET" and self.has_permission(request):
            return HttpResponseRedirect(redirect_url)
        context = {
            **self.each_context(request),
            "title": "Log in",
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
            REDIRECT_FIELD_NAME: redirect_url,
            **(extra_context or {}),
        }
        request.current_app = self.name
        return ConsoleLoginView.as_view(
            extra_context=context,
            authentication_form=self.login_form or AdminAuthenticationForm,
            template_name=self.login_template or "admin/login.html",
            redirect_authenticated_user=False,
        )(request)

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Every organization's name, spend and payments: only for operators allowed to
        # see the organizations (a staff user with no permission gets the bare index).
        allowed = request.user.has_perm("accounts.view_organization")
        context = {"overview": platform_overview() if allowed else None, **(extra_context or {})}
        return super().index(request, extra_context=context)
