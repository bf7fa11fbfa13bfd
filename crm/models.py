"""The people and customer domain: users, teams (customers follow in their own issue)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    REP = "rep", _("Sales rep")
    MANAGER = "manager", _("Sales manager")
    COMMITTEE = "committee", _("Committee member")
    ADMIN = "admin", _("CRM administrator")


class EmploymentState(models.TextChoices):
    ACTIVE = "active", _("Active")
    DEPARTING = "departing", _("Departing")
    DEPARTED = "departed", _("Departed")


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    manager = models.ForeignKey(
        "crm.User",
        verbose_name=_("manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_teams",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("team")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")), name="team_not_its_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.REP)
    state = models.CharField(
        _("employment state"),
        max_length=16,
        choices=EmploymentState.choices,
        default=EmploymentState.ACTIVE,
    )
    language = models.CharField(
        _("language"), max_length=8, choices=Language.choices, default=Language.ZH_HANS
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("user")
        ordering = ["username"]
        constraints = [
            # A departed user can never sign in again; the reverse is allowed (suspended).
            models.CheckConstraint(
                condition=~Q(state=EmploymentState.DEPARTED) | Q(is_active=False),
                name="departed_user_is_inactive",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def is_rep(self) -> bool:
        return self.role == Role.REP

    @property
    def is_manager(self) -> bool:
        return self.role == Role.MANAGER

    @property
    def is_committee_member(self) -> bool:
        return self.role == Role.COMMITTEE

    @property
    def is_crm_admin(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser

    @property
    def is_departing(self) -> bool:
        return self.state == EmploymentState.DEPARTING
