from allauth.account import views as allauth_views
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from accounts import signin_views
from accounts import urls as accounts_urls
from accounts.team_views import invitation_accept_view
from accounts.views import ThrottledPasswordResetView, color_scheme_set
from console import views

org_patterns = [
    path("", views.main, name="main"),
    path("settings/billing-details/", include("billing.details_urls")),
    # Settings are accounts' pages with alerts' mounted among them ("accounts:alerts:…"):
    # accounts never names the alerts app above it; this project package joins them.
    path(
        "settings/",
        include(
            (
                [*accounts_urls.urlpatterns, path("alerts/", include("alerts.urls"))],
                accounts_urls.app_name,
            )
        ),
    ),
    path("finance/", include("billing.urls")),
    path("usage/", include("insights.urls")),
]

ALERT_ADMIN_BEFORE_THE_MOVE = (
    r"^billing/(?P<rest>alert(?:rule|notification|settings|delivery|dismissal)/.*)$"
)
ALERT_ADMIN_NOW = RedirectView.as_view(
    url="/admin/alerts/%(rest)s", permanent=True, query_string=True
)

urlpatterns = [
    path("", views.home, name="home"),
    path("o/<slug:org_slug>/", include(org_patterns)),
    path("api/v1/", include("console.api")),
    path("accounts/login/", signin_views.ConsoleLoginView.as_view(), name="login"),
    # The names allauth's two-factor pages link to: the console's own login and logout.
    path("accounts/login/", signin_views.ConsoleLoginView.as_view(), name="account_login"),
    path("accounts/sso/", signin_views.sso_login, name="sso_login"),
    path("accounts/sso/continue/", signin_views.sso_continue, name="sso_continue"),
    path("accounts/sso/callback/", signin_views.sso_callback, name="sso_callback"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="account_logout"),
    path("accounts/reauthenticate/", allauth_views.reauthenticate, name="account_reauthenticate"),
    # allauth's two-factor pages (set up, use, remove); their index is Settings → Security.
    path("accounts/2fa/", signin_views.two_factor_home, name="mfa_index"),
    path("accounts/2fa/", include("allauth.mfa.urls")),
    path(
        "accounts/password_reset/",
        ThrottledPasswordResetView.as_view(),
        name="password_reset",
    ),
    path("accounts/color-scheme/", color_scheme_set, name="color_scheme"),
    path(
        "accounts/invitations/<slug:org_slug>/<str:token>/",
        invitation_accept_view,
        name="invitation_accept",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    # Alerts' admin pages moved with their app (billing → alerts): old bookmarks follow.
    path("admin/", include([re_path(ALERT_ADMIN_BEFORE_THE_MOVE, ALERT_ADMIN_NOW)])),
    path("admin/", admin.site.urls),
    path("webhooks/", include("billing.webhook_urls")),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin's, a PDF's).
    path("favicon.ico", views.favicon),
]

handler500 = "console.views.server_error"
