from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DisputesConfig(AppConfig):
    name = "disputes"
    verbose_name = _("Disputes")

    def ready(self) -> None:
        # The periodic review (ownership) never imports this app; it offers hooks instead.
        # Customers under dispute must not be recycled: register the subquery if the review
        # provides the hook (see disputes.selectors.customer_ids_under_dispute).
        from ownership.review import anomalies

        from disputes.selectors import customer_ids_under_dispute, overdue_anomalies
        from ownership.models import ReviewAction

        anomalies.register_recycle_exemption("disputes", customer_ids_under_dispute)
        anomalies.register_anomaly_source(ReviewAction.DISPUTE_OVERDUE, overdue_anomalies)
