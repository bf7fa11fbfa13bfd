from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from allocation.models import (
    AllocationBatch,
    PoolCustomer,
    ReassignmentRequest,
    Registration,
    RequestHistory,
)
from allocation.selectors import pending_customer_ids
from crm.errors import DomainError
from crm.models import Team, User


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence and audit rows: visible, never edited here (services write them)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Registration)
class RegistrationAdmin(ReadOnlyAdmin):
    """Registrations are evidence: visible, never edited."""

    list_display = ["entered_name", "rep", "outcome", "submitted_at", "customer", "territory_label"]
    list_filter = ["outcome", "submitted_at"]
    list_select_related = ["rep", "customer"]
    search_fields = ["entered_name", "entered_credit_code", "rep__username"]
    date_hierarchy = "submitted_at"


class RequestHistoryInline(admin.TabularInline):
    model = RequestHistory
    fields = ("at", "action", "from_state", "to_state", "actor", "comment")
    readonly_fields = ("at", "action", "from_state", "to_state", "actor", "comment")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _is_crm_admin(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and getattr(user, "is_crm_admin", False))


@admin.register(ReassignmentRequest)
class ReassignmentRequestAdmin(ReadOnlyAdmin):
    list_display = ["pk", "customer", "kind", "state", "from_owner", "to_rep", "created_at"]
    list_filter = ["state", "kind", "needs_target_approval"]
    list_select_related = ["customer", "from_owner", "to_rep"]
    search_fields = ["customer__display_name", "from_owner__username", "to_rep__username"]
    date_hierarchy = "created_at"
    inlines = [RequestHistoryInline]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_crm_admin(request) or super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_crm_admin(request) or super().has_module_permission(request)


@admin.register(AllocationBatch)
class AllocationBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "actor",
        "team",
        "method",
        "requested",
        "allocated",
        "left_in_pool",
    ]
    list_filter = ["method", "team"]
    list_select_related = ["actor", "team"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_crm_admin(request) or super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_crm_admin(request) or super().has_module_permission(request)


class DistributeForm(forms.Form):
    team = forms.ModelChoiceField(label=_("Team"), queryset=Team.objects.order_by("name"))


# An administrator distributes at most this many customers per action.
MAX_DISTRIBUTE = 500


@admin.action(description=_("Distribute to the reps of a team (by free capacity)"))
def distribute(
    modeladmin: PoolCustomerAdmin, request: HttpRequest, queryset: QuerySet[PoolCustomer]
) -> HttpResponse | None:
    """Asks for the team, then calls the same service as the manager's page."""
    from allocation.services import distribute_pool_customers

    customers = list(queryset.filter(owner__isnull=True).order_by("pk")[:MAX_DISTRIBUTE])
    form = DistributeForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        actor: User = request.user  # type: ignore[assignment]
        try:
            outcome = distribute_pool_customers(
                actor=actor, team=form.cleaned_data["team"], customers=customers
            )
        except DomainError as error:
            modeladmin.message_user(request, error.message, messages.ERROR)
            return None
        modeladmin.message_user(
            request,
            ngettext(
                "%(count)d customer distributed.",
                "%(count)d customers distributed.",
                len(outcome.allocated),
            )
            % {"count": len(outcome.allocated)},
            messages.SUCCESS,
        )
        if outcome.left_message:
            modeladmin.message_user(request, outcome.left_message, messages.WARNING)
        for customer, reason in outcome.refused:
            modeladmin.message_user(request, f"{customer}: {reason}", messages.ERROR)
        return None
    return render(
        request,
        "allocation/admin_distribute.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": _("Distribute pool customers"),
            "opts": modeladmin.model._meta,
            "customers": customers,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        },
    )


@admin.register(PoolCustomer)
class PoolCustomerAdmin(ReadOnlyAdmin):
    """The public pool for administrators: new inbound customers are distributed from here."""

    list_display = ["display_name", "industry", "province", "value_tier", "created_at"]
    list_filter = ["value_tier", "industry", "source"]
    list_select_related = ["industry"]
    search_fields = ["display_name", "credit_code"]
    date_hierarchy = "created_at"
    actions = [distribute]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PoolCustomer]:
        # Not those whose registration awaits a territory manager's approval: in no pool.
        return (
            super()
            .get_queryset(request)
            .filter(owner__isnull=True, merged_into__isnull=True)
            .exclude(pk__in=pending_customer_ids())
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_crm_admin(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_crm_admin(request)
