from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AllocationConfig(AppConfig):
    name = "allocation"
    verbose_name = _("Registration and allocation")

    def ready(self) -> None:
        from allocation.selectors import pending_customer_ids
        from allocation.services import pending_hold_message, requests_follow_merge
        from crm.signals import customer_merged
        from ownership.holds import register_pool_hold

        customer_merged.connect(requests_follow_merge, dispatch_uid="allocation-follow-merge")
        # A registration awaiting approval keeps its customer out of every pool.
        register_pool_hold(
            "pending_registration",
            customer_ids=pending_customer_ids,
            message=pending_hold_message,
        )
