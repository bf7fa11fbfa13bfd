"""The periodic ownership review and its what-if simulation (see run.py for how it works)."""

from ownership.review.run import (
    LOCK_KEY,
    RECYCLED_KIND,
    WARNING_KIND,
    ReviewAlreadyRunning,
    ReviewRefused,
    advisory_lock,
    review_run,
)

__all__ = [
    "LOCK_KEY",
    "RECYCLED_KIND",
    "WARNING_KIND",
    "ReviewAlreadyRunning",
    "ReviewRefused",
    "advisory_lock",
    "review_run",
]
