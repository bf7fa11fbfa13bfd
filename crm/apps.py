from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("Customers and people")

    def ready(self) -> None:
        from crm import checks  # noqa: F401  (registers the system checks)


class GuishuAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Guishu's site (refused authorisations are logged)."""

    default = False  # CrmConfig stays this module's default configuration
    default_site = "crm.security.GuishuAdminSite"
