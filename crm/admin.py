"""Admin for people and teams; role changes go through the same service as everywhere else."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from crm import services
from crm.errors import DomainError
from crm.models import Team, User

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


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
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

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        role = obj.role
        super().save_model(request, obj, form, change)
        # Groups and staff access follow the role through the one service that sets it.
        services.user_set_role(actor=request.user, user=obj, role=role)  # type: ignore[arg-type]
