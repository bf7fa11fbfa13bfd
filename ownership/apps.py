from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OwnershipConfig(AppConfig):
    name = "ownership"
    verbose_name = _("Ownership")

    def ready(self) -> None:
        from crm import signals
        from ownership.territories import receivers

        signals.customer_facts_changed.connect(
            receivers.refresh_customer_territory, dispatch_uid="ownership_territory_refresh"
        )
        signals.customers_created.connect(
            receivers.resolve_created_customers, dispatch_uid="ownership_territory_created"
        )
