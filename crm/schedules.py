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
        name="clear-expired-sessions",
        task="crm.tasks.clear_expired_sessions",
        crontab={"minute": "17", "hour": "3"},
        description="Delete expired login sessions nightly.",
    ),
]
