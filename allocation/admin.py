from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from allocation.models import Registration


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    """Registrations are evidence: visible, never edited."""

    list_display = ["entered_name", "rep", "outcome", "submitted_at", "customer"]
    list_filter = ["outcome", "submitted_at"]
    list_select_related = ["rep", "customer"]
    search_fields = ["entered_name", "entered_credit_code", "rep__username"]
    date_hierarchy = "submitted_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
