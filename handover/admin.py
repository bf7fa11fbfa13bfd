"""Departures and their tasks in the admin: visible to CRM administrators, never edited
here (the services write them, with their history)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from handover.models import Departure, HandoverTask, TaskHistory


def _is_crm_admin(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and getattr(user, "is_crm_admin", False))


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_crm_admin(request) or super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_crm_admin(request) or super().has_module_permission(request)


class TaskHistoryInline(admin.TabularInline):
    model = TaskHistory
    fields = ("at", "from_state", "to_state", "actor", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Departure)
class DepartureAdmin(ReadOnlyAdmin):
    list_display = ["pk", "leaver", "team", "last_day", "state", "recorded_by", "created_at"]
    list_filter = ["state", "last_day", "team"]
    list_select_related = ["leaver", "team", "recorded_by"]
    search_fields = ["leaver__username", "leaver__display_name"]
    date_hierarchy = "last_day"


@admin.register(HandoverTask)
class HandoverTaskAdmin(ReadOnlyAdmin):
    list_display = ["pk", "departure", "customer", "kind", "stage", "successor", "state"]
    list_filter = ["state", "kind", "stage"]
    list_select_related = ["departure__leaver", "customer", "successor"]
    search_fields = ["customer__display_name", "successor__username"]
    raw_id_fields = ["departure", "customer", "successor", "replaces", "moved_event"]
    inlines = [TaskHistoryInline]
