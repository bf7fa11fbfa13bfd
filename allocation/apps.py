from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AllocationConfig(AppConfig):
    name = "allocation"
    verbose_name = _("Registration and allocation")

    def ready(self) -> None:
        from allocation.services import requests_follow_merge
        from crm.signals import customer_merged

        customer_merged.connect(requests_follow_merge, dispatch_uid="allocation-follow-merge")
