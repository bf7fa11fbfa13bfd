"""Admin for people and teams; role changes go through the same service as everywhere else."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm import services
from crm.errors import DomainError
from crm.models import EmploymentState, Team, User

admin.site.site_header = _("Guishu administration")
admin.site.site_title = _("Guishu")
admin.site.index_title = _("Administration")


class TeamAdminForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "parent", "manager"]

    def clean_parent(self) -> Team | None:
        parent: Team | None = self.cleaned_data.get("parent")
        if self.instance.pk and parent is not None:
            try:
                services.team_check_parent(team=self.instance, parent=parent)
            except DomainError as error:
                raise forms.ValidationError(error.message) from error
        return parent


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamAdminForm
    list_display = ["name", "parent", "manager", "created_at"]
    list_select_related = ["parent", "manager"]
    search_fields = ["name"]
    autocomplete_fields = ["parent", "manager"]


def _deactivates(old: User | None, new_active: bool, new_state: str) -> bool:
    """Whether an edit takes sign-in away or marks the user departed."""
    if old is None:
        return False
    return (old.is_active and not new_active) or (
        old.state != EmploymentState.DEPARTED and new_state == EmploymentState.DEPARTED
    )


class UserAdminChangeForm(UserChangeForm):
    """Refuses to deactivate (or mark departed) someone who still owns customers: the
    departure handover must move them first (the same crm service as everywhere)."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.instance.pk is None:
            return cleaned
        old = User.objects.filter(pk=self.instance.pk).first()
        new_active = cleaned.get("is_active", old.is_active if old else True)
        new_state = cleaned.get("state", old.state if old else EmploymentState.ACTIVE)
        if _deactivates(old, bool(new_active), str(new_state)):
            assert old is not None
            try:
                services.user_check_can_deactivate(user=old)
            except DomainError as error:
                raise forms.ValidationError(error.message) from error
        if new_state == EmploymentState.DEPARTED and new_active:
            raise forms.ValidationError(_("A departed user cannot stay active: untick “active”."))
        return cleaned


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserAdminChangeForm
    actions = ["deactivate_users", "mark_departed"]
    list_display = ["username", "display_name", "team", "role", "state", "is_active"]
    list_filter = ["role", "state", "is_active", "team"]
    list_select_related = ["team"]
    search_fields = ["username", "display_name", "email", "phone"]
    autocomplete_fields = ["team"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (
            _("Personal information"),
            {"fields": ("display_name", "first_name", "last_name", "email", "phone")},
        ),
        (_("Organisation"), {"fields": ("team", "role", "state", "language")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_superuser", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "display_name", "team", "role", "password1", "password2"),
            },
        ),
    )

    # Only a superuser makes superusers or hands out permissions one by one: a CRM
    # administrator holds exactly the role table's permissions and cannot raise their own
    # (or take over a superuser's account by editing it or setting its password).
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += ["is_superuser", "user_permissions"]
        return fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    @transaction.atomic
    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        role = obj.role
        old = User.objects.select_for_update().filter(pk=obj.pk).first() if change else None
        if old is not None and _deactivates(old, obj.is_active, obj.state):
            # The form checked already; under the row lock, check again (a customer may
            # have arrived meanwhile) and keep the user active rather than break the rule.
            try:
                services.user_check_can_deactivate(user=old)
            except DomainError as error:
                obj.is_active, obj.state = old.is_active, old.state
                messages.error(request, error.message)
        super().save_model(request, obj, form, change)
        # Groups and staff access follow the role through the one service that sets it.
        services.user_set_role(actor=request.user, user=obj, role=role)  # type: ignore[arg-type]

    def _deactivate(self, request: HttpRequest, queryset: QuerySet[User], departed: bool) -> None:
        done = 0
        for user in queryset:
            try:
                services.user_deactivate(
                    actor=request.user,  # type: ignore[arg-type]
                    user=user,
                    departed=departed,
                )
                done += 1
            except DomainError as error:
                messages.error(request, error.message)
        if done:
            messages.success(
                request,
                ngettext("%(count)d user deactivated.", "%(count)d users deactivated.", done)
                % {"count": done},
            )

    @admin.action(description=_("Deactivate selected users"), permissions=["change"])
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._deactivate(request, queryset, departed=False)

    @admin.action(description=_("Mark selected users as departed"), permissions=["change"])
    def mark_departed(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._deactivate(request, queryset, departed=True)
