from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DisputesConfig(AppConfig):
    name = "disputes"
    verbose_name = _("Disputes")

    def ready(self) -> None:
        # The periodic review (ownership) never imports this app; it offers hooks instead.
        # Customers under dispute are neither recycled nor warned, and overdue cases are
        # listed among the review's anomalies.
        from disputes.selectors import customer_ids_under_dispute, overdue_anomalies
        from ownership.models import ReviewAction
        from ownership.review import anomalies

        anomalies.register_recycle_exemption("disputes", customer_ids_under_dispute)
        anomalies.register_anomaly_source(ReviewAction.DISPUTE_OVERDUE, overdue_anomalies)
