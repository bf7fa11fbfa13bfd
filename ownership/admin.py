"""Admin: pool policies (validated) and the ledger (read-only: it is append-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ownership.models import OwnershipEvent, PoolPolicy


class PoolPolicyForm(forms.ModelForm):
    class Meta:
        model = PoolPolicy
        fields = [
            "team",
            "max_owned",
            "count_won_in_cap",
            "max_claims_per_day",
            "days_without_follow_up",
            "days_to_reach_50",
            "days_to_reach_100",
            "won_exempt",
            "cooldown_days",
            "warning_days",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        warning = data.get("warning_days")
        period = data.get("days_without_follow_up")
        if warning is not None and period is not None and warning >= period:
            self.add_error(
                "warning_days",
                _("The warning must come before the clock ends: fewer days than %(days)d.")
                % {"days": period},
            )
        reach_50, reach_100 = data.get("days_to_reach_50"), data.get("days_to_reach_100")
        if reach_50 is not None and reach_100 is not None and reach_50 > reach_100:
            self.add_error(
                "days_to_reach_50", _("Reaching 50% cannot be allowed longer than winning.")
            )
        return data


@admin.register(PoolPolicy)
class PoolPolicyAdmin(admin.ModelAdmin):
    form = PoolPolicyForm
    list_display = [
        "__str__",
        "max_owned",
        "max_claims_per_day",
        "days_without_follow_up",
        "days_to_reach_50",
        "days_to_reach_100",
        "won_exempt",
        "cooldown_days",
        "warning_days",
        "updated_at",
    ]
    list_select_related = ["team"]
    autocomplete_fields = ["team"]


@admin.register(OwnershipEvent)
class OwnershipEventAdmin(admin.ModelAdmin):
    list_display = [
        "customer",
        "sequence",
        "kind",
        "from_owner",
        "to_owner",
        "actor",
        "occurred_at",
    ]
    list_filter = ["kind", "occurred_at"]
    list_select_related = ["customer", "from_owner", "to_owner", "actor"]
    search_fields = ["customer__display_name", "reason", "hash"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
