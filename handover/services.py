"""Every write of the departure handover (离职交接).

A departure makes the rep "departing" and plans one task per customer by funnel stage:
0% moves to the successor at once, 25%/50% need a phone introduction, 75%/100% a joint
visit. The successor accepts (or refuses, back to the manager), the leaver marks the task
done, the successor confirms, and the customer moves. On the last day the rest moves
anyway, flagged incomplete, and the leaver is deactivated.

Tasks change state only through `task_transition` (explicit table, row lock, no-op on no
change, named error on an illegal move, history row in the same transaction). Customers
move only through the ownership writer, with the task as the ledger event's cause.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm, remove_perm

from crm import services as crm_services
from crm.errors import DomainError
from crm.models import Customer, EmploymentState, FollowUp, FunnelStage, Role, User
from crm.notifications import notify
from handover import selectors
from handover.models import (
    OPEN_STATES,
    Departure,
    DepartureState,
    HandoverTask,
    TaskHistory,
    TaskKind,
    TaskState,
)
from ownership import services as ownership
from ownership.models import EventKind

logger = logging.getLogger(__name__)

PREVIEW_PERMISSION = "crm.preview_handover_customer"
REASON_MAX_LENGTH = 2000
# Tasks moved per transaction by the last-day job: bounded so a crash loses at most one
# batch (which simply runs again) and locks are held briefly.
BATCH_SIZE = 200
# Days before the last day by which each kind of task is due.
DUE_DAYS_BEFORE: dict[str, int] = {
    TaskKind.PHONE_INTRO: 2,
    TaskKind.JOINT_VISIT: 4,
    TaskKind.IMMEDIATE: 0,
}
# Next steps copied into a task's checklist: the latest few promised to the customer.
NEXT_STEPS_PER_CUSTOMER = 3


class HandoverError(DomainError):
    pass


class HandoverNotAllowed(HandoverError):
    """The acting user may not take this step (not the successor, leaver or manager)."""


class DepartureInvalid(HandoverError):
    """Bad input: `errors` maps a form field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class IllegalTransition(HandoverError):
    def __init__(self, from_state: str, to_state: str) -> None:
        super().__init__(
            _("This handover task is “%(current)s”; it cannot become “%(target)s”.")
            % {"current": TaskState(from_state).label, "target": TaskState(to_state).label}
        )
        self.from_state = from_state
        self.to_state = to_state


# --- the state machine ----------------------------------------------------------------------

TRANSITIONS: dict[str, frozenset[str]] = {
    TaskState.PROPOSED: frozenset(
        {
            TaskState.ACCEPTED,
            TaskState.REFUSED,
            TaskState.MOVED_AT_ONCE,
            TaskState.REASSIGNED,
            TaskState.MOVED_AT_DEADLINE,
            TaskState.CANCELLED,
        }
    ),
    TaskState.ACCEPTED: frozenset(
        {
            TaskState.DONE_BY_LEAVER,
            TaskState.REASSIGNED,
            TaskState.MOVED_AT_DEADLINE,
            TaskState.CANCELLED,
        }
    ),
    TaskState.REFUSED: frozenset(
        {TaskState.REASSIGNED, TaskState.MOVED_AT_DEADLINE, TaskState.CANCELLED}
    ),
    TaskState.DONE_BY_LEAVER: frozenset(
        {
            TaskState.CONFIRMED,
            # The successor says it did not happen yet: back to the leaver.
            TaskState.ACCEPTED,
            TaskState.MOVED_AT_DEADLINE,
            TaskState.CANCELLED,
        }
    ),
    TaskState.CONFIRMED: frozenset(),
    TaskState.MOVED_AT_ONCE: frozenset(),
    TaskState.MOVED_AT_DEADLINE: frozenset(),
    TaskState.REASSIGNED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


def check_transition(from_state: str, to_state: str) -> None:
    if to_state not in TRANSITIONS.get(from_state, frozenset()):
        raise IllegalTransition(from_state, to_state)


# Runs under the rows' locks after the legality check and before the write; returns more
# fields to set per task id. If it raises, nothing of the step is written.
Hook = Callable[[list[HandoverTask]], Mapping[int, Mapping[str, Any]]]


def tasks_transition(
    *,
    task_ids: Iterable[int],
    to_state: str,
    actor: User | None,
    note: str = "",
    changes: Mapping[str, Any] | None = None,
    before_write: Hook | None = None,
    now: datetime | None = None,
) -> list[tuple[HandoverTask, bool]]:
    """THE state change of tasks (one or a batch): lock the rows (id order), leave alone
    those already in `to_state` (no-op), refuse the whole step if the table forbids any move
    (IllegalTransition), run `before_write` (e.g. move the customers), save the changed
    fields and one history row per changed task, all in one transaction. Returns each task
    with whether it changed. Set-based: a constant number of queries for any batch size."""
    now = now or timezone.now()
    ids = sorted(set(task_ids))
    with transaction.atomic():
        tasks = list(
            HandoverTask.objects.select_for_update(of=("self",))
            # The customer is loaded only when a step needs more than its id (rarely).
            .select_related("departure__leaver", "successor")
            .filter(pk__in=ids)
            .order_by("pk")
        )
        if len(tasks) != len(ids):
            raise HandoverTask.DoesNotExist("No such handover task.")
        todo = [task for task in tasks if task.state != to_state]
        for task in todo:
            check_transition(task.state, to_state)
        if not todo:
            return [(task, False) for task in tasks]
        extra = before_write(todo) if before_write is not None else {}
        common = {"state": to_state, **(changes or {})}
        varying: dict[str, dict[int, Any]] = defaultdict(dict)
        history = []
        for task in todo:
            history.append(
                TaskHistory(
                    task=task,
                    from_state=task.state,
                    to_state=to_state,
                    actor=actor,
                    note=note,
                    at=now,
                )
            )
            for name, value in common.items():
                setattr(task, name, value)
            for name, value in extra.get(task.pk, {}).items():
                setattr(task, name, value)
                varying[name][task.pk] = value
        if len(todo) == 1:
            todo[0].save(update_fields=sorted({*common, *varying}))
        else:
            _update_rows([task.pk for task in todo], common, varying)
        TaskHistory.objects.bulk_create(history, batch_size=1000)
        changed = {task.pk for task in todo}
        return [(task, task.pk in changed) for task in tasks]


def _update_rows(
    ids: list[int], common: Mapping[str, Any], varying: Mapping[str, Mapping[int, Any]]
) -> None:
    """One UPDATE for a batch of tasks: `common` fields set alike, `varying` ones row by
    row from a VALUES list — one statement, so the row checks see the finished rows
    (bulk_update's CASE WHEN also costs more than the moves themselves at a few hundred
    rows)."""
    if not varying:
        HandoverTask.objects.filter(pk__in=ids).update(**common)
        return
    meta = HandoverTask._meta
    assignments: list[str] = []
    params: list[Any] = []
    for name, value in common.items():
        field: Any = meta.get_field(name)
        assignments.append(f"{field.column} = %s")
        params.append(field.get_db_prep_save(value, connection))
    names = sorted(varying)
    fields: list[Any] = [meta.get_field(name) for name in names]
    for index, field in enumerate(fields):
        assignments.append(f"{field.column} = v.c{index}::{field.db_type(connection)}")
    rows: list[Any] = []
    for pk in ids:
        rows.append(pk)
        for name, field in zip(names, fields, strict=True):
            value = varying[name].get(pk)
            if isinstance(value, models.Model):
                value = value.pk
            rows.append(field.get_db_prep_save(value, connection))
    placeholder = "(" + ", ".join(["%s"] * (len(names) + 1)) + ")"
    columns = ", ".join(["id", *[f"c{index}" for index in range(len(names))]])
    # Table, columns and types come from the model, never from input; values are parameters.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {meta.db_table} AS t SET {', '.join(assignments)} "
            f"FROM (VALUES {', '.join([placeholder] * len(ids))}) AS v({columns}) "
            "WHERE t.id = v.id",
            [*params, *rows],
        )


def task_transition(
    *,
    task_id: int,
    to_state: str,
    actor: User | None,
    note: str = "",
    changes: Mapping[str, Any] | None = None,
    before_write: Callable[[HandoverTask], Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> tuple[HandoverTask, bool]:
    """`tasks_transition` of one task (its hook takes and returns one task's fields)."""
    hook: Hook | None = None
    if before_write is not None:
        single = before_write

        def hook(locked: list[HandoverTask]) -> Mapping[int, Mapping[str, Any]]:
            return {locked[0].pk: single(locked[0])}

    ((task, changed),) = tasks_transition(
        task_ids=[task_id],
        to_state=to_state,
        actor=actor,
        note=note,
        changes=changes,
        before_write=hook,
        now=now,
    )
    return task, changed


# --- recording a departure: the plan ---------------------------------------------------------


def kind_for_stage(stage: int) -> str:
    if stage <= FunnelStage.RAW:
        return TaskKind.IMMEDIATE
    if stage <= FunnelStage.OPPORTUNITY:
        return TaskKind.PHONE_INTRO
    return TaskKind.JOINT_VISIT


def due_date_for(kind: str, last_day: date, today: date) -> date:
    """A few days before the last day (time left to confirm), never before today."""
    due = last_day - timedelta(days=DUE_DAYS_BEFORE[kind])
    return min(last_day, max(today, due))


def _checklists(customers: list[Customer]) -> dict[int, list[dict[str, Any]]]:
    """What each call or visit must cover: the open opportunity (50% and 75%), the won
    account (100%), and the latest next steps promised to the customer. Stored as data and
    worded when shown, in the reader's language. One query for every customer."""
    lists: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for customer in customers:
        if customer.stage in (FunnelStage.OPPORTUNITY, FunnelStage.MATCHED):
            lists[customer.pk].append({"kind": "opportunity", "stage": customer.stage})
        elif customer.stage == FunnelStage.WON:
            lists[customer.pk].append({"kind": "won"})
    wanted = [c.pk for c in customers if c.stage > FunnelStage.RAW]
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start : start + 5000]
        rows = (
            FollowUp.objects.filter(customer_id__in=chunk)
            .exclude(next_step="")
            .annotate(
                rank=Window(
                    RowNumber(),
                    partition_by=[F("customer_id")],
                    order_by=[F("happened_at").desc(), F("id").desc()],
                )
            )
            .filter(rank__lte=NEXT_STEPS_PER_CUSTOMER)
            .values_list("customer_id", "next_step", "happened_at")
        )
        for customer_id, next_step, happened_at in rows:
            lists[customer_id].append(
                {
                    "kind": "next_step",
                    "text": next_step,
                    "date": timezone.localdate(happened_at).isoformat(),
                }
            )
    return lists


def _clean_text(value: str, field: str, errors: dict[str, str], *, required: bool) -> str:
    text = (value or "").strip()
    if required and not text:
        errors[field] = _("This field is required.")
    elif len(text) > REASON_MAX_LENGTH:
        errors[field] = _("At most %(max)d characters, please.") % {"max": REASON_MAX_LENGTH}
    return text


def departure_record(
    *,
    actor: User,
    leaver: User,
    last_day: date,
    reason: str = "",
    successor: User | None = None,
    per_customer: Mapping[int, User] | None = None,
    auto_distribute: bool = False,
    now: datetime | None = None,
) -> Departure:
    """Record a departure and generate its plan (set-based: tasks, history rows and
    preview grants are bulk-inserted); 0% customers move to their successor at once.

    Each customer's successor: `per_customer[customer id]`, else `successor` (one for all),
    else — with `auto_distribute` — the suggested colleagues, strongest with room first.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    per_customer = dict(per_customer or {})
    if not selectors.leavable_reps(actor).filter(pk=leaver.pk).exists():
        raise HandoverNotAllowed(
            _("You can record departures only for active sales reps of the teams you manage.")
        )
    errors: dict[str, str] = {}
    if last_day < today:
        errors["last_day"] = _("The last working day cannot be in the past.")
    elif last_day > today + timedelta(days=366):
        errors["last_day"] = _("The last working day must be within a year.")
    reason = _clean_text(reason, "reason", errors, required=False)
    candidates = {rep.pk: rep for rep in selectors.successor_candidates(actor, leaver)}
    chosen = [successor] if successor is not None else []
    for rep in [*chosen, *per_customer.values()]:
        if rep.pk not in candidates:
            errors["successor"] = _(
                "%(name)s cannot take over customers: choose an active sales rep of your teams."
            ) % {"name": rep}
    if errors:
        raise DepartureInvalid(errors)
    with transaction.atomic():
        # Locks the leaver's row: a registration or claim of theirs in flight finishes
        # first (its customer is then in the plan) or sees "departing" and is refused.
        crm_services.user_mark_departing(actor=actor, user=leaver)
        if selectors.open_departure_of(leaver) is not None:
            raise DepartureInvalid({"leaver": _("A departure of this rep is already in progress.")})
        customers = list(
            Customer.objects.filter(owner=leaver, merged_into__isnull=True)
            .only("id", "stage", "value_tier", "display_name")
            .order_by("id")
        )
        plan = _successor_plan(
            actor, leaver, customers, successor, per_customer, auto_distribute, now
        )
        departure = Departure(
            leaver=leaver,
            team=leaver.team,
            recorded_by=actor,
            last_day=last_day,
            reason=reason,
            created_at=now,
        )
        try:
            with transaction.atomic():
                departure.save(force_insert=True)
        except IntegrityError as error:
            raise DepartureInvalid(
                {"leaver": _("A departure of this rep is already in progress.")}
            ) from error
        tasks = _create_tasks(departure, customers, plan, today, actor, now)
        _grant_previews(t for t in tasks if t.kind != TaskKind.IMMEDIATE)
        immediate = [t for t in tasks if t.kind == TaskKind.IMMEDIATE]
        for start in range(0, len(immediate), BATCH_SIZE):
            _move_many(
                immediate[start : start + BATCH_SIZE],
                to_state=TaskState.MOVED_AT_ONCE,
                actor=actor,
                leaver=leaver,
                now=now,
            )
        _notify_recorded(departure, tasks, actor)
    return departure


def _successor_plan(
    actor: User,
    leaver: User,
    customers: list[Customer],
    successor: User | None,
    per_customer: Mapping[int, User],
    auto_distribute: bool,
    now: datetime,
) -> dict[int, User]:
    plan = {c.pk: per_customer[c.pk] for c in customers if c.pk in per_customer}
    rest = [c for c in customers if c.pk not in plan]
    if rest and successor is not None:
        plan.update({c.pk: successor for c in rest})
    elif rest and auto_distribute:
        planned = Counter(rep.pk for rep in plan.values())
        suggestions = selectors.successor_suggestions(
            leaver, selectors.successor_candidates(actor, leaver), now, planned
        )
        plan.update(selectors.distribute(rest, suggestions))
    missing = [c for c in customers if c.pk not in plan]
    if missing:
        raise DepartureInvalid(
            {
                "successor": _(
                    "Choose a successor for every customer, or one for all "
                    "(%(count)d without a successor)."
                )
                % {"count": len(missing)}
            }
        )
    return plan


def _create_tasks(
    departure: Departure,
    customers: list[Customer],
    plan: Mapping[int, User],
    today: date,
    actor: User | None,
    now: datetime,
    replaces: Mapping[int, HandoverTask] | None = None,
) -> list[HandoverTask]:
    checklists = _checklists(customers)
    tasks = HandoverTask.objects.bulk_create(
        [
            HandoverTask(
                departure=departure,
                customer=customer,
                kind=kind_for_stage(customer.stage),
                stage=customer.stage,
                successor=plan[customer.pk],
                due_date=due_date_for(kind_for_stage(customer.stage), departure.last_day, today),
                checklist=checklists.get(customer.pk, []),
                replaces=(replaces or {}).get(customer.pk),
                created_at=now,
            )
            for customer in customers
        ],
        batch_size=1000,
    )
    TaskHistory.objects.bulk_create(
        [
            TaskHistory(task=task, from_state="", to_state=TaskState.PROPOSED, actor=actor, at=now)
            for task in tasks
        ],
        batch_size=2000,
    )
    return tasks


def _grant_previews(tasks: Iterable[HandoverTask]) -> None:
    """Let each successor read the customers coming to them until they move."""
    by_successor: dict[int, list[int]] = defaultdict(list)
    people: dict[int, User] = {}
    for task in tasks:
        by_successor[task.successor_id].append(task.customer_id)
        people[task.successor_id] = task.successor
    for successor_id, customer_ids in by_successor.items():
        # guardian bulk-assigns for a queryset (its stubs only know single objects).
        customers: Any = Customer.objects.filter(pk__in=customer_ids)
        assign_perm(PREVIEW_PERMISSION, people[successor_id], customers)


def _revoke_preview(successor: User, customer: Customer) -> None:
    remove_perm(PREVIEW_PERMISSION, successor, customer)


def _revoke_previews(tasks: Iterable[HandoverTask]) -> None:
    by_successor: dict[int, list[int]] = defaultdict(list)
    people: dict[int, User] = {}
    for task in tasks:
        by_successor[task.successor_id].append(task.customer_id)
        people[task.successor_id] = task.successor
    for successor_id, customer_ids in by_successor.items():
        customers: Any = Customer.objects.filter(pk__in=customer_ids)
        remove_perm(PREVIEW_PERMISSION, people[successor_id], customers)


# --- moving a customer ------------------------------------------------------------------------


def _move(
    *,
    task_id: int,
    to_state: str,
    actor: User | None,
    now: datetime,
    note: str = "",
    changes: Mapping[str, Any] | None = None,
    to_rep: User | None = None,
) -> tuple[HandoverTask, bool]:
    """Move the task's customer to its successor (or `to_rep`) through the ownership writer
    and put the task in `to_state`, in one transaction. If the leaver no longer owns the
    customer (recycled, ruled, ...) the task is cancelled instead and nothing moves."""

    def hand_over(task: HandoverTask) -> dict[str, Any]:
        target = to_rep or task.successor
        event = ownership.ownership_hand_over_from(
            actor=actor,
            customer=task.customer,
            to_rep=target,
            from_owner=task.departure.leaver,
            reason=_handover_reason(task, to_state),
            cause=task,
        )
        _revoke_preview(task.successor, task.customer)
        return {"moved_event": event, "moved_at": now}

    try:
        # task_transition's own transaction (a savepoint inside a batch) undoes the step.
        return task_transition(
            task_id=task_id,
            to_state=to_state,
            actor=actor,
            note=note,
            changes=changes,
            before_write=hand_over,
            now=now,
        )
    except ownership.OwnershipError as error:
        task = HandoverTask.objects.select_related("departure", "customer", "successor").get(
            pk=task_id
        )
        gone = task.customer.owner_id != task.departure.leaver_id
        if not gone and task.customer.merged_into_id is None:
            raise
        # The customer left the leaver another way (or was merged into another record):
        # nothing to hand over any more.
        with transaction.atomic():
            _revoke_preview(task.successor, task.customer)
            return task_transition(
                task_id=task_id,
                to_state=TaskState.CANCELLED,
                actor=actor,
                note=error.message,
                now=now,
            )


def _move_many(
    tasks: list[HandoverTask],
    *,
    to_state: str,
    actor: User | None,
    leaver: User,
    now: datetime,
    targets: Mapping[int, User] | None = None,
    note: str = "",
) -> tuple[int, int]:
    """Set-based `_move` for tasks whose rows the caller holds (locked, or created in this
    transaction): their customers move to `targets[task id]` or their successor through the
    ownership writer's batch form, and the tasks go to `to_state` in one `tasks_transition`;
    tasks whose customer already left the leaver are cancelled. One transaction; the
    ownership writer's refusal of the batch (a successor no longer eligible) undoes it all.
    Returns (moved, cancelled)."""
    if not tasks:
        return 0, 0
    with transaction.atomic():
        result = ownership.ownership_hand_over_many(
            actor=actor,
            moves=[
                ownership.HandOverMove(
                    customer_id=task.customer_id,
                    to_rep=(targets or {}).get(task.pk, task.successor),
                    from_owner=leaver,
                    reason=_handover_reason(task, to_state),
                    cause=task,
                )
                for task in tasks
            ],
            now=now,
        )
        moved = [task.pk for task in tasks if task.customer_id in result.events]
        gone = [task.pk for task in tasks if task.customer_id in result.refused]
        if moved:
            tasks_transition(
                task_ids=moved,
                to_state=to_state,
                actor=actor,
                note=note,
                changes={"moved_at": now},
                before_write=lambda locked: {
                    task.pk: {"moved_event": result.events[task.customer_id]} for task in locked
                },
                now=now,
            )
        if gone:
            tasks_transition(
                task_ids=gone,
                to_state=TaskState.CANCELLED,
                actor=actor,
                note=_("No longer the leaver's customer: nothing moved."),
                now=now,
            )
        # 0% tasks never had a preview grant (the customer moved at once).
        _revoke_previews(t for t in tasks if t.kind != TaskKind.IMMEDIATE)
    return len(moved), len(gone)


def _handover_reason(task: HandoverTask, to_state: str) -> str:
    if to_state == TaskState.MOVED_AT_ONCE:
        return _("Departure handover: 0% customer moved at once")
    if to_state == TaskState.MOVED_AT_DEADLINE:
        return _("Departure handover: moved on the last working day (handover incomplete)")
    return _("Departure handover: %(kind)s confirmed by the successor") % {
        "kind": task.get_kind_display()
    }


# --- the successor, the leaver, the manager ---------------------------------------------------


def _task_url(task: HandoverTask) -> str:
    return reverse("handover_task_detail", args=[task.pk])


def _departure_url(departure: Departure) -> str:
    return reverse("handover_departure_detail", args=[departure.pk])


def _managers(departure: Departure) -> list[User]:
    people = [selectors.team_manager(departure.team)]
    recorder = departure.recorded_by
    if recorder.is_active and (recorder.is_manager or recorder.is_crm_admin):
        people.append(recorder)
    return [person for person in people if person is not None]


def _check_open_departure(task: HandoverTask) -> None:
    if task.departure.state != DepartureState.IN_PROGRESS:
        raise HandoverError(_("This departure handover is already finished."))


def tasks_accept(*, actor: User, task_ids: Iterable[int]) -> list[HandoverTask]:
    """The successor accepts handed-over customers (each its own step; all or nothing)."""
    accepted: list[HandoverTask] = []
    with transaction.atomic():
        for task_id in sorted(set(task_ids)):
            task = HandoverTask.objects.select_related("departure").get(pk=task_id)
            if task.successor_id != actor.pk:
                raise HandoverNotAllowed(_("Only the named successor can accept this customer."))
            _check_open_departure(task)
            task, changed = task_transition(
                task_id=task_id, to_state=TaskState.ACCEPTED, actor=actor
            )
            if changed:
                accepted.append(task)
        if accepted:
            leaver = accepted[0].departure.leaver
            notify(
                recipients=[leaver],
                kind="handover_accepted",
                context={"successor": actor, "tasks": accepted, "count": len(accepted)},
                url=reverse("handover_my_tasks"),
            )
    return accepted


def task_refuse(*, actor: User, task: HandoverTask, reason: str) -> HandoverTask:
    """The successor refuses one customer, with a reason: back to the manager."""
    errors: dict[str, str] = {}
    reason = _clean_text(reason, "reason", errors, required=True)
    if errors:
        raise DepartureInvalid({"reason": _("Say why you refuse this customer.")})
    if task.successor_id != actor.pk:
        raise HandoverNotAllowed(_("Only the named successor can refuse this customer."))
    _check_open_departure(task)
    with transaction.atomic():
        task, changed = task_transition(
            task_id=task.pk,
            to_state=TaskState.REFUSED,
            actor=actor,
            note=reason,
            changes={"refusal_reason": reason},
        )
        if changed:
            _revoke_preview(actor, task.customer)
            notify(
                recipients=_managers(task.departure),
                kind="handover_refused",
                context={"task": task, "successor": actor, "reason": reason},
                url=_departure_url(task.departure) + "?state=refused",
            )
    return task


def task_mark_done(*, actor: User, task: HandoverTask, note: str) -> HandoverTask:
    """The leaving rep made the call or the visit; the successor confirms next."""
    errors: dict[str, str] = {}
    note = _clean_text(note, "note", errors, required=True)
    if errors:
        raise DepartureInvalid({"note": _("Describe the call or the visit.")})
    if task.departure.leaver_id != actor.pk:
        raise HandoverNotAllowed(_("Only the leaving rep can mark this task done."))
    _check_open_departure(task)
    with transaction.atomic():
        try:
            task, changed = task_transition(
                task_id=task.pk,
                to_state=TaskState.DONE_BY_LEAVER,
                actor=actor,
                note=note,
                changes={"leaver_note": note, "done_at": timezone.now()},
            )
        except IllegalTransition as error:
            if error.from_state == TaskState.PROPOSED:
                raise HandoverError(
                    _("The successor has not accepted this customer yet.")
                ) from error
            raise
        if changed:
            notify(
                recipients=[task.successor],
                kind="handover_task_done",
                context={"task": task, "leaver": actor, "note": note},
                url=_task_url(task),
            )
    return task


def task_confirm(
    *, actor: User, task: HandoverTask, happened_on: date | None, note: str
) -> HandoverTask:
    """The successor confirms the call or visit took place; the customer moves to them."""
    now = timezone.now()
    errors: dict[str, str] = {}
    note = _clean_text(note, "note", errors, required=True)
    if errors:
        errors = {"note": _("Say what happened on the call or the visit.")}
    if happened_on is None:
        errors["happened_on"] = _("Enter the date it took place.")
    elif happened_on > timezone.localdate(now):
        errors["happened_on"] = _("The date cannot be in the future.")
    elif happened_on < timezone.localdate(task.departure.created_at):
        errors["happened_on"] = _("The date cannot be before the departure was recorded.")
    if errors:
        raise DepartureInvalid(errors)
    if task.successor_id != actor.pk:
        raise HandoverNotAllowed(_("Only the named successor can confirm this task."))
    _check_open_departure(task)
    with transaction.atomic():
        task, changed = _move(
            task_id=task.pk,
            to_state=TaskState.CONFIRMED,
            actor=actor,
            now=now,
            note=note,
            changes={"confirmed_on": happened_on, "confirmation_note": note},
        )
        if changed and task.state == TaskState.CONFIRMED:
            notify(
                recipients=[task.departure.leaver, *_managers(task.departure)],
                kind="handover_confirmed",
                context={"task": task, "successor": actor, "note": note},
                url=_task_url(task),
                email=False,
            )
    return task


def task_send_back(*, actor: User, task: HandoverTask, note: str) -> HandoverTask:
    """The successor says the call or visit has not happened yet: back to the leaver."""
    errors: dict[str, str] = {}
    note = _clean_text(note, "note", errors, required=True)
    if errors:
        raise DepartureInvalid({"note": _("Say what is still missing.")})
    if task.successor_id != actor.pk:
        raise HandoverNotAllowed(_("Only the named successor can send this task back."))
    _check_open_departure(task)
    with transaction.atomic():
        task, changed = task_transition(
            task_id=task.pk, to_state=TaskState.ACCEPTED, actor=actor, note=note
        )
        if changed:
            notify(
                recipients=[task.departure.leaver],
                kind="handover_sent_back",
                context={"task": task, "successor": actor, "note": note},
                url=_task_url(task),
            )
    return task


def tasks_reassign(
    *,
    actor: User,
    departure: Departure,
    task_ids: Iterable[int],
    successor: User,
    now: datetime | None = None,
) -> list[HandoverTask]:
    """The manager gives customers to another successor (a refused one, or any not yet
    done): each old task becomes "reassigned" and a new one is proposed to `successor`."""
    now = now or timezone.now()
    if not selectors.can_manage_departure(actor, departure):
        raise HandoverNotAllowed(_("Only the managers of the leaver's team can reassign."))
    if departure.state != DepartureState.IN_PROGRESS:
        raise HandoverError(_("This departure handover is already finished."))
    candidates = selectors.successor_candidates(actor, departure.leaver)
    if not candidates.filter(pk=successor.pk).exists():
        raise DepartureInvalid(
            {
                "successor": _(
                    "%(name)s cannot take over customers: choose an active sales rep of your teams."
                )
                % {"name": successor}
            }
        )
    ids = sorted(set(task_ids))
    if not ids:
        raise DepartureInvalid({"tasks": _("Choose at least one customer.")})
    created: list[HandoverTask] = []
    with transaction.atomic():
        old_tasks: dict[int, HandoverTask] = {}
        customers: list[Customer] = []
        for task_id in ids:
            task = HandoverTask.objects.select_related("customer", "successor").get(pk=task_id)
            if task.departure_id != departure.pk:
                raise HandoverNotAllowed(_("This task belongs to another departure."))
            if task.successor_id == successor.pk and task.state != TaskState.REFUSED:
                continue  # already theirs: nothing to change
            if task.successor_id == successor.pk:
                raise DepartureInvalid(
                    {
                        "successor": _("%(name)s refused %(customer)s: choose someone else.")
                        % {"name": successor, "customer": task.customer}
                    }
                )
            task, _changed = task_transition(
                task_id=task_id,
                to_state=TaskState.REASSIGNED,
                actor=actor,
                note=_("Reassigned to %(name)s") % {"name": successor},
                now=now,
            )
            _revoke_preview(task.successor, task.customer)
            old_tasks[task.customer_id] = task
            customers.append(task.customer)
        if not customers:
            return []
        # The new task takes the customer's current stage (it may have moved on).
        fresh = {c.pk: c for c in Customer.objects.filter(pk__in=[c.pk for c in customers])}
        created = _create_tasks(
            departure,
            [fresh[c.pk] for c in customers],
            {c.pk: successor for c in customers},
            timezone.localdate(now),
            actor,
            now,
            replaces=old_tasks,
        )
        _grant_previews(t for t in created if t.kind != TaskKind.IMMEDIATE)
        _move_many(
            [t for t in created if t.kind == TaskKind.IMMEDIATE],
            to_state=TaskState.MOVED_AT_ONCE,
            actor=actor,
            leaver=departure.leaver,
            now=now,
        )
        notify(
            recipients=[successor],
            kind="handover_to_accept",
            context={"departure": departure, "count": len(created), "manager": actor},
            url=reverse("handover_incoming"),
        )
    return created


def _notify_recorded(departure: Departure, tasks: list[HandoverTask], actor: User) -> None:
    counts = Counter(task.kind for task in tasks)
    notify(
        recipients=[departure.leaver],
        kind="handover_started",
        context={
            "departure": departure,
            "count": len(tasks),
            "immediate": counts[TaskKind.IMMEDIATE],
            "phone": counts[TaskKind.PHONE_INTRO],
            "visit": counts[TaskKind.JOINT_VISIT],
            "manager": actor,
        },
        url=reverse("handover_my_tasks"),
        dedup_key=f"departure:{departure.pk}",
    )
    by_successor: dict[int, list[HandoverTask]] = defaultdict(list)
    for task in tasks:
        by_successor[task.successor_id].append(task)
    for successor_tasks in by_successor.values():
        moved = sum(1 for t in successor_tasks if t.kind == TaskKind.IMMEDIATE)
        notify(
            recipients=[successor_tasks[0].successor],
            kind="handover_to_accept",
            context={
                "departure": departure,
                "count": len(successor_tasks) - moved,
                "moved": moved,
                "manager": actor,
            },
            url=reverse("handover_incoming"),
            dedup_key=f"departure:{departure.pk}",
        )


# --- the last day --------------------------------------------------------------------------


def departures_finish_due(*, now: datetime | None = None) -> int:
    """The daily job: finish every departure whose last day has come. Idempotent and
    set-based; two runs at once share the work and move every customer exactly once.
    Returns how many customers moved."""
    now = now or timezone.now()
    due = list(
        Departure.objects.filter(
            state=DepartureState.IN_PROGRESS, last_day__lte=timezone.localdate(now)
        )
        .order_by("last_day", "id")
        .values_list("pk", flat=True)
    )
    return sum(departure_finish(departure_id=pk, now=now) for pk in due)


def departure_finish(*, departure_id: int, now: datetime | None = None) -> int:
    """Move whatever the departure has not moved yet, then deactivate the leaver and write
    the final report. Returns how many customers this call moved.

    A task the ownership writer refuses (an unexpected state) is logged and left open; the
    departure then stays in progress and the next run tries again."""
    now = now or timezone.now()
    departure = Departure.objects.select_related("leaver", "team", "recorded_by").get(
        pk=departure_id
    )
    moved = 0
    failed: set[int] = set()
    fallback = _fallback_successors(departure, now)
    # A few rounds: another run may hold a batch (skipped, not waited for) or a customer
    # may come back to the leaver meanwhile; the run that finds nothing left finishes.
    for _round in range(10):
        if departure.state != DepartureState.IN_PROGRESS:
            break
        while (count := _move_batch(departure, fallback, now, failed)) is not None:
            moved += count
        _plan_leftovers(departure, fallback, now)
        if failed or _finalise(departure, now):
            break
        departure.refresh_from_db(fields=["state"])
    return moved


def _fallback_successors(departure: Departure, now: datetime) -> list[User]:
    """Colleagues for customers whose successor refused or can no longer take them:
    the leaver's team, strongest with room first."""
    leaver = departure.leaver
    candidates = User.objects.filter(
        role=Role.REP, is_active=True, state=EmploymentState.ACTIVE
    ).exclude(pk=leaver.pk)
    if departure.team_id is not None:
        candidates = candidates.filter(team_id=departure.team_id)
    else:
        candidates = candidates.none()
    return [s.rep for s in selectors.successor_suggestions(leaver, candidates, now)]


def _eligible(user: User) -> bool:
    return user.is_active and user.role == Role.REP and user.state == EmploymentState.ACTIVE


def _move_batch(
    departure: Departure, fallback: list[User], now: datetime, failed: set[int]
) -> int | None:
    """Claim up to BATCH_SIZE open tasks (rows another run holds are skipped, never waited
    for) and move their customers in one transaction. None when nothing was left."""
    note = _("Moved on the last working day: the handover was not completed.")
    with transaction.atomic():
        batch = list(
            HandoverTask.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(departure=departure, state__in=OPEN_STATES)
            .exclude(pk__in=failed)
            .select_related("successor")
            .order_by("id")[:BATCH_SIZE]
        )
        if not batch:
            return None
        targets = {task.pk: _deadline_target(task, fallback) for task in batch}
        movable = [task for task in batch if targets[task.pk] is not None]
        moved = 0
        try:
            moved, _cancelled = _move_many(
                movable,
                to_state=TaskState.MOVED_AT_DEADLINE,
                actor=None,
                leaver=departure.leaver,
                now=now,
                targets={pk: rep for pk, rep in targets.items() if rep is not None},
                note=note,
            )
        except DomainError:
            # Something in the batch is refused (a successor deactivated a moment ago):
            # one by one, so the rest still moves. Rep rows are locked by the ownership
            # writer: take them in one global order (by id) so runs never deadlock.
            for task in sorted(movable, key=lambda t: (targets[t.pk].pk, t.pk)):  # type: ignore[union-attr]
                try:
                    task, changed = _move(
                        task_id=task.pk,
                        to_state=TaskState.MOVED_AT_DEADLINE,
                        actor=None,
                        now=now,
                        to_rep=targets[task.pk],
                        note=note,
                    )
                    moved += int(changed and task.state == TaskState.MOVED_AT_DEADLINE)
                except DomainError as error:
                    _failed(failed, task, departure, error)
        for task in batch:
            if targets[task.pk] is None:
                try:
                    moved += _recycle_at_deadline(task, now)
                except DomainError as error:
                    _failed(failed, task, departure, error)
        return moved


def _failed(failed: set[int], task: HandoverTask, departure: Departure, error: DomainError) -> None:
    failed.add(task.pk)
    logger.error(
        "handover task %s of departure %s not moved: %s", task.pk, departure.pk, error.message
    )


def _deadline_target(task: HandoverTask, fallback: list[User]) -> User | None:
    if task.state != TaskState.REFUSED and _eligible(task.successor):
        return task.successor
    refused_by = task.successor_id if task.state == TaskState.REFUSED else None
    return next((rep for rep in fallback if rep.pk != refused_by), None)


def _recycle_at_deadline(task: HandoverTask, now: datetime) -> int:
    """Nobody can take the customer: it returns to the pool rather than stay with someone
    who has left (every customer is owned by an active user or is in the pool)."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=task.customer_id)
        if customer.owner_id != task.departure.leaver_id:
            _revoke_preview(task.successor, customer)
            task_transition(task_id=task.pk, to_state=TaskState.CANCELLED, actor=None, now=now)
            return 0

        def recycle(locked: HandoverTask) -> dict[str, Any]:
            event = ownership.ownership_recycle(
                customer=customer,
                reason=_("Departure handover: no colleague could take it over"),
                cause=locked,
                now=now,
            )
            _revoke_preview(locked.successor, customer)
            return {"moved_event": event, "moved_at": now}

        task_transition(
            task_id=task.pk,
            to_state=TaskState.MOVED_AT_DEADLINE,
            actor=None,
            note=_("No colleague could take it over: returned to the pool."),
            before_write=recycle,
            now=now,
        )
        return 1


def _plan_leftovers(departure: Departure, fallback: list[User], now: datetime) -> None:
    """Customers the leaver still owns without an open task (e.g. given back by a ruling
    after the plan): plan them for the strongest colleague so the next pass moves them."""
    leftovers = list(selectors.customers_without_task(departure)[:BATCH_SIZE])
    if not leftovers:
        return
    target = fallback[0] if fallback else None
    with transaction.atomic():
        if target is None:
            for customer in leftovers:
                ownership.ownership_recycle(
                    customer=customer,
                    reason=_("Departure handover: no colleague could take it over"),
                    cause=departure,
                    now=now,
                )
            return
        try:
            with transaction.atomic():
                _create_tasks(
                    departure,
                    leftovers,
                    {c.pk: target for c in leftovers},
                    timezone.localdate(now),
                    None,
                    now,
                )
        except IntegrityError:
            return  # another run planned them meanwhile: its tasks get moved


def _finalise(departure: Departure, now: datetime) -> bool:
    """Close the departure once nothing is left: deactivate the leaver, write the report,
    tell the managers. Under the departure's row lock, so exactly one run does it. False
    when work is still in flight (another run's batch): that run finishes it."""
    with transaction.atomic():
        locked = Departure.objects.select_for_update().get(pk=departure.pk)
        if locked.state != DepartureState.IN_PROGRESS:
            departure.state = locked.state
            return True
        if HandoverTask.objects.filter(departure=locked, state__in=OPEN_STATES).exists():
            return False
        if selectors.customers_without_task(locked).exists():
            return False
        try:
            with transaction.atomic():
                crm_services.user_deactivate(actor=None, user=departure.leaver, departed=True)
        except crm_services.UserStillOwnsCustomers:
            return False  # a customer came back to them meanwhile: the next round plans it
        report = build_report(locked)
        report["deactivated_at"] = now.isoformat()
        locked.report = report
        locked.state = DepartureState.FINISHED
        locked.finished_at = now
        locked.save(update_fields=["report", "state", "finished_at"])
        departure.state = locked.state
        _notify_finished(locked, report)
        return True


def build_report(departure: Departure) -> dict[str, Any]:
    """What moved how, and what was incomplete: counts per state and per kind."""
    rows = (
        HandoverTask.objects.filter(departure=departure)
        .exclude(state=TaskState.REASSIGNED)
        .values_list("kind", "state", "moved_event__kind")
    )
    by_state: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    to_pool = 0
    for kind, state, event_kind in rows:
        by_state[state] += 1
        by_kind[kind][state] += 1
        if event_kind == EventKind.RECYCLED:
            to_pool += 1
    refusals = HandoverTask.objects.filter(
        departure=departure, history__to_state=TaskState.REFUSED
    ).count()
    return {
        "total": sum(by_state.values()),
        "by_state": dict(by_state),
        "by_kind": {kind: dict(counts) for kind, counts in by_kind.items()},
        "incomplete": by_state[TaskState.MOVED_AT_DEADLINE],
        "to_pool": to_pool,
        "refusals": refusals,
        "reassigned": HandoverTask.objects.filter(
            departure=departure, state=TaskState.REASSIGNED
        ).count(),
    }


def _notify_finished(departure: Departure, report: dict[str, Any]) -> None:
    notify(
        recipients=_managers(departure),
        kind="handover_finished",
        context={"departure": departure, "report": report},
        url=reverse("handover_departure_report", args=[departure.pk]),
        dedup_key=f"departure:{departure.pk}",
    )
    late = Counter(
        HandoverTask.objects.filter(
            departure=departure, state=TaskState.MOVED_AT_DEADLINE, moved_event__kind="handed_over"
        ).values_list("moved_event__to_owner_id", flat=True)
    )
    for user in User.objects.filter(pk__in=list(late)):
        notify(
            recipients=[user],
            kind="handover_moved_at_deadline",
            context={"departure": departure, "count": late[user.pk]},
            url=reverse("handover_incoming") + "?state=moved_at_deadline",
            dedup_key=f"departure:{departure.pk}",
        )


def tasks_remind_overdue(*, now: datetime | None = None) -> int:
    """Once a day, tell each leaver and successor how many of their tasks are overdue."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    overdue = HandoverTask.objects.filter(
        state__in=OPEN_STATES,
        due_date__lt=today,
        departure__state=DepartureState.IN_PROGRESS,
    )
    waiting_on: Counter[int] = Counter()
    for leaver_id, successor_id, state in overdue.values_list(
        "departure__leaver_id", "successor_id", "state"
    ):
        # Whose move it is: the successor accepts or confirms, the leaver calls or visits.
        if state in (TaskState.PROPOSED, TaskState.DONE_BY_LEAVER):
            waiting_on[successor_id] += 1
        elif state == TaskState.ACCEPTED:
            waiting_on[leaver_id] += 1
    sent = 0
    for user in User.objects.filter(pk__in=list(waiting_on)):
        sent += len(
            notify(
                recipients=[user],
                kind="handover_overdue",
                context={"count": waiting_on[user.pk]},
                url=reverse("handover_incoming")
                if user.state != EmploymentState.DEPARTING
                else reverse("handover_my_tasks"),
                dedup_key=f"overdue:{today.isoformat()}",
            )
        )
    return sent
