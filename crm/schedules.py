"""Every periodic schedule of Guishu, in one place. `manage.py sync_schedules` applies it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    crontab: dict[str, str]
    description: str


SCHEDULES: list[Schedule] = [
    Schedule(
        name="refresh-name-parts",
        task="crm.tasks.refresh_name_parts",
        crontab={"minute": "47", "hour": "3"},
        description="Store the parsed name again where the name parser changed since it was "
        "stored (nightly; a no-op when nothing changed).",
    ),
    Schedule(
        name="clear-expired-sessions",
        task="crm.tasks.clear_expired_sessions",
        crontab={"minute": "17", "hour": "3"},
        description="Delete expired login sessions nightly.",
    ),
    Schedule(
        name="expire-reassignment-requests",
        task="allocation.tasks.expire_requests",
        crontab={"minute": "5"},
        description="Expire reassignment requests that waited too long for approval (hourly).",
    ),
    Schedule(
        name="ownership-review",
        task="ownership.tasks.run_ownership_review",
        crontab={"minute": "30", "hour": "2"},
        description="Recycle customers whose ownership clock ran out, warn owners, list "
        "anomalies (02:30 in TIME_ZONE, Asia/Shanghai by default).",
    ),
    Schedule(
        name="funnel-weekly-snapshot",
        task="crm.tasks.take_weekly_funnel_snapshot",
        crontab={"minute": "0", "hour": "6", "day_of_week": "1"},
        description="Snapshot last week's sales funnel and e-mail each manager a summary "
        "(Mondays 06:00).",
    ),
]

SCHEDULES.append(
    Schedule(
        name="handover-finish-due-departures",
        task="handover.tasks.finish_due_departures",
        crontab={"minute": "30", "hour": "22"},
        description="Departure handovers whose last working day has come: move every customer "
        "not yet moved to its successor (flagged incomplete), deactivate the leaver, remind "
        "about overdue tasks (daily 22:30).",
    )
)

SCHEDULES.append(
    Schedule(
        name="dispute-deadlines",
        task="disputes.tasks.send_deadline_reminders",
        crontab={"minute": "15"},
        description="Remind committee members of dispute deadlines, escalate overdue cases to "
        "the chair, close decided cases once no appeal is possible (hourly).",
    )
)

SCHEDULES.append(
    Schedule(
        name="territories-resolve-missing",
        task="ownership.tasks.resolve_missing_territories",
        crontab={"minute": "40"},
        description="Give customers created without a territory (under the active rule set) "
        "their territory (hourly).",
    )
)
