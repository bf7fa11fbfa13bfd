"""Departure handovers (离职交接): a departure, its plan of stage-dependent tasks, and each
task's append-only history.

A task's state changes only through `handover.services.task_transition` (explicit table,
row lock, history row in the same transaction); the customer itself moves only through the
ownership writer, with the task as the ledger event's cause.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class DepartureState(models.TextChoices):
    IN_PROGRESS = "in_progress", _("In progress")
    FINISHED = "finished", _("Finished")


class Departure(models.Model):
    """A rep leaving the company: from the moment it is recorded the rep is "departing";
    on the last day whatever has not moved is moved anyway and the rep is deactivated."""

    leaver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("leaving rep"),
        on_delete=models.PROTECT,
        related_name="departures",
    )
    # The leaver's team when the departure was recorded: the managers of this team (and of
    # the teams above it) run the handover.
    team = models.ForeignKey(
        "crm.Team",
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    last_day = models.DateField(_("last working day"))
    reason = models.TextField(_("reason"), blank=True)
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=DepartureState.choices,
        default=DepartureState.IN_PROGRESS,
    )
    created_at = models.DateTimeField(_("recorded at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # The final report, written once by the last-day job: counts per way of moving and the
    # customers whose handover was incomplete (kept with the departure for good).
    report = models.JSONField(_("final report"), default=dict, blank=True)

    class Meta:
        verbose_name = _("departure")
        verbose_name_plural = _("departures")
        ordering = ["-created_at", "-id"]
        constraints = [
            # One running handover per rep: a second recording gets a clear refusal, also
            # when two managers submit at the same moment.
            models.UniqueConstraint(
                fields=["leaver"],
                condition=Q(state="in_progress"),
                name="departure_one_open_per_leaver",
                violation_error_message=_("A departure of this rep is already in progress."),
            ),
            models.CheckConstraint(
                condition=Q(state__in=["in_progress", "finished"]),
                name="departure_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(state="in_progress") | Q(finished_at__isnull=False),
                name="departure_finished_has_time",
            ),
        ]
        indexes = [
            # The last-day job: state = 'in_progress' AND last_day <= today.
            models.Index(
                fields=["last_day"],
                condition=Q(state="in_progress"),
                name="departure_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.leaver} · {self.last_day:%Y-%m-%d}"

    @property
    def is_open(self) -> bool:
        return self.state == DepartureState.IN_PROGRESS


class TaskKind(models.TextChoices):
    # Chosen by the customer's funnel stage when the plan is made.
    IMMEDIATE = "immediate", _("Transferred at once")
    PHONE_INTRO = "phone_intro", _("Phone introduction")
    JOINT_VISIT = "joint_visit", _("Joint visit")


class TaskState(models.TextChoices):
    PROPOSED = "proposed", _("Waiting for the successor")
    ACCEPTED = "accepted", _("Accepted by the successor")
    REFUSED = "refused", _("Refused by the successor")
    DONE_BY_LEAVER = "done_by_leaver", _("Done, waiting for confirmation")
    CONFIRMED = "confirmed", _("Confirmed: customer moved")
    MOVED_AT_ONCE = "moved_at_once", _("Moved at once")
    MOVED_AT_DEADLINE = "moved_at_deadline", _("Moved on the last day (incomplete)")
    REASSIGNED = "reassigned", _("Reassigned to another successor")
    # The customer left the leaver another way meanwhile (recycled, ruled, ...).
    CANCELLED = "cancelled", _("Cancelled: no longer the leaver's customer")


# A task still holding its customer (one at a time, see the constraint).
OPEN_STATES = (
    TaskState.PROPOSED,
    TaskState.ACCEPTED,
    TaskState.REFUSED,
    TaskState.DONE_BY_LEAVER,
)
# Terminal states in which the customer moved to the successor (or to a fallback).
MOVED_STATES = (TaskState.CONFIRMED, TaskState.MOVED_AT_ONCE, TaskState.MOVED_AT_DEADLINE)


class HandoverTask(models.Model):
    """One customer of a departure: who takes it over, how (by funnel stage), by when."""

    departure = models.ForeignKey(
        Departure, verbose_name=_("departure"), on_delete=models.PROTECT, related_name="tasks"
    )
    customer = models.ForeignKey(
        "crm.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="handover_tasks",
    )
    kind = models.CharField(_("kind"), max_length=16, choices=TaskKind.choices)
    stage = models.PositiveSmallIntegerField(_("funnel stage when planned"))
    successor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("successor"),
        on_delete=models.PROTECT,
        related_name="handover_tasks_received",
    )
    state = models.CharField(
        _("state"), max_length=20, choices=TaskState.choices, default=TaskState.PROPOSED
    )
    due_date = models.DateField(_("due date"))
    # What to cover on the call or visit, generated with the plan: the open opportunity
    # and the promised next steps ({"kind": ..., "text": ...}); contacts are read live.
    checklist = models.JSONField(_("checklist"), default=list, blank=True)
    # The refused (or replaced) task this one takes over from.
    replaces = models.OneToOneField(
        "self",
        verbose_name=_("replaces"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_by",
    )
    refusal_reason = models.TextField(_("reason for refusing"), blank=True)
    leaver_note = models.TextField(_("leaver's note"), blank=True)
    done_at = models.DateTimeField(_("marked done at"), null=True, blank=True)
    confirmed_on = models.DateField(_("took place on"), null=True, blank=True)
    confirmation_note = models.TextField(_("what happened"), blank=True)
    moved_event = models.ForeignKey(
        "ownership.OwnershipEvent",
        verbose_name=_("ledger event"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    moved_at = models.DateTimeField(_("moved at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("handover task")
        verbose_name_plural = _("handover tasks")
        ordering = ["due_date", "id"]
        constraints = [
            # A customer is in at most one open handover task.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(state__in=["proposed", "accepted", "refused", "done_by_leaver"]),
                name="handover_task_one_open_per_customer",
            ),
            models.CheckConstraint(
                condition=Q(
                    state__in=[
                        "proposed",
                        "accepted",
                        "refused",
                        "done_by_leaver",
                        "confirmed",
                        "moved_at_once",
                        "moved_at_deadline",
                        "reassigned",
                        "cancelled",
                    ]
                ),
                name="handover_task_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(stage__in=[0, 25, 50, 75, 100]), name="handover_task_stage_valid"
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["confirmed", "moved_at_once", "moved_at_deadline"])
                | Q(moved_event__isnull=False, moved_at__isnull=False),
                name="handover_task_moved_has_event",
            ),
        ]
        indexes = [
            # The plan page and the last-day job: WHERE departure_id = %s AND state IN (...).
            models.Index(fields=["departure", "state"], name="handover_task_departure"),
            # The successor's acceptance list: WHERE successor_id = %s AND state IN (...).
            models.Index(fields=["successor", "state"], name="handover_task_successor"),
            # Overdue reminders: open tasks by due date.
            models.Index(
                fields=["due_date"],
                condition=Q(state__in=["proposed", "accepted", "refused", "done_by_leaver"]),
                name="handover_task_open_due",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} · {self.customer_id}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def has_moved(self) -> bool:
        return self.state in MOVED_STATES


class TaskHistory(models.Model):
    """One step of a task, written in the same transaction as the step. Append-only."""

    task = models.ForeignKey(
        HandoverTask, verbose_name=_("task"), on_delete=models.PROTECT, related_name="history"
    )
    from_state = models.CharField(
        _("from state"), max_length=20, choices=TaskState.choices, blank=True
    )
    to_state = models.CharField(_("to state"), max_length=20, choices=TaskState.choices)
    # None: the system (the last-day job).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    note = models.TextField(_("note"), blank=True)
    at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("handover task history")
        verbose_name_plural = _("handover task history")
        ordering = ["task_id", "at", "id"]
        triggers = [
            pgtrigger.Protect(
                name="handover_history_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}: {self.from_state or '—'} → {self.to_state}"
