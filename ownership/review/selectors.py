"""Permission-scoped reads of the review pages.

Runs are the whole organisation's job, so managers and administrators see every run and its
totals; the customers and reps behind the figures (outcomes) are scoped: administrators see
all, a manager only those of the teams they manage (the whole subtree)."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, QuerySet
from django.http import Http404

from crm.models import User
from crm.selectors import teams_managed_by
from ownership.models import ReviewOutcome, ReviewRun


def can_read_reviews(user: User) -> bool:
    return user.is_active and (user.is_manager or user.is_crm_admin)


def review_runs_for(user: User) -> QuerySet[ReviewRun]:
    if not can_read_reviews(user):
        return ReviewRun.objects.none()
    return ReviewRun.objects.select_related("started_by").order_by("-started_at", "-id")


def review_run_for(user: User, pk: int) -> ReviewRun:
    run = review_runs_for(user).filter(pk=pk).first()
    if run is None:
        raise Http404
    return run


def review_outcomes_for(user: User) -> QuerySet[ReviewOutcome]:
    base = ReviewOutcome.objects.select_related("run", "customer", "rep", "team")
    if not can_read_reviews(user):
        return base.none()
    if user.is_crm_admin:
        return base
    return base.filter(team__in=teams_managed_by(user))


def scoped_counts(user: User, run_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per run, how many outcomes of each action fall in the user's scope (one query)."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        review_outcomes_for(user)
        .filter(run_id__in=run_ids)
        .values("run_id", "action")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["run_id"]][row["action"]] = row["n"]
    return counts
