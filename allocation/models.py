"""Registrations (报备): the rep's first-entry claim, kept as evidence whatever the outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RegistrationOutcome(models.TextChoices):
    REGISTERED = "registered", _("Registered")
    COLLISION = "collision", _("Collision: owned by someone else")
    IN_POOL = "in_pool", _("Already in the pool")
    OWN = "own", _("Already yours")
    CAP_REACHED = "cap_reached", _("Holding cap reached")


class Registration(models.Model):
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rep"),
        on_delete=models.PROTECT,
        related_name="registrations",
    )
    # The precedence time: when the rep submitted, also if approval comes later.
    submitted_at = models.DateTimeField(_("submitted at"), db_index=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=RegistrationOutcome.choices)
    customer = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="registrations",
    )
    # What the rep typed, as typed: the evidence a dispute reads.
    entered_name = models.CharField(_("company name"), max_length=200)
    entered_credit_code = models.CharField(_("credit code"), max_length=32, blank=True)
    entered_phone = models.CharField(_("phone"), max_length=32, blank=True)
    entered_address = models.CharField(_("address"), max_length=255, blank=True)
    first_contact_name = models.CharField(_("first contact"), max_length=100, blank=True)
    first_contact_phone = models.CharField(_("first contact phone"), max_length=32, blank=True)
    evidence = models.TextField(_("how I found or first contacted them"), blank=True)
    # Soft matches shown to the rep and confirmed as "a different company".
    soft_matches_shown = models.JSONField(_("similar customers shown"), default=list, blank=True)
    confirmed_different = models.BooleanField(_("confirmed a different company"), default=False)

    class Meta:
        verbose_name = _("registration")
        verbose_name_plural = _("registrations")
        ordering = ["-submitted_at"]
        indexes = [models.Index(fields=["customer", "submitted_at"], name="registration_customer")]

    def __str__(self) -> str:
        return f"{self.entered_name} ({self.get_outcome_display()})"
