from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django admin with the console's site: branded, opening on the platform overview."""

    default = False  # "console" in INSTALLED_APPS means ConsoleConfig
    default_site = "console.admin_site.ConsoleAdminSite"
