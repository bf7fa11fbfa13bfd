"""Anomalies the review lists for managers: things no rule fixes automatically.

- customers owned by inactive users (invariant 5 says this must not last);
- reps over their holding cap (a policy lowered, a ruling or a handover without cap);
- unresolved soft-duplicate pairs (`crm.models.PossibleDuplicate`, resolved_at NULL);
- disputes past their deadline — the disputes app does not exist yet. It will register its
  source with `register_anomaly_source` from its AppConfig.ready() (ownership never imports
  the workflow apps); until then that section is empty and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Q
from django.utils.translation import gettext as _

from crm.models import Customer, EmploymentState, FunnelStage, PossibleDuplicate, User
from ownership.models import ReviewAction
from ownership.review.policies import PolicyBook

# How many rows of one anomaly kind a run stores (the count is always complete): a bulk
# import can leave thousands of possible duplicates, and the page shows them paginated.
ANOMALY_ROW_LIMIT = 2000


@dataclass(frozen=True)
class AnomalyItem:
    customer_id: int | None
    rep_id: int | None
    team_id: int | None
    detail: str


@dataclass
class AnomalyList:
    action: str
    count: int = 0
    items: list[AnomalyItem] = field(default_factory=list)


# function(as_of) returning the anomalies of one kind.
AnomalySource = Callable[[datetime], AnomalyList]
_EXTRA_SOURCES: dict[str, AnomalySource] = {}


def register_anomaly_source(action: str, source: AnomalySource) -> None:
    """The hook for workflow apps: the disputes app registers its overdue cases here as
    `register_anomaly_source(ReviewAction.DISPUTE_OVERDUE, overdue_cases)`."""
    if action not in ReviewAction.values:
        raise ValueError(f"unknown review action {action!r}")
    _EXTRA_SOURCES[action] = source


# name → function returning a queryset of customer ids that must not be recycled (e.g.
# customers under dispute); a subquery, never a Python list.
_RECYCLE_EXEMPTIONS: dict[str, Callable[[], Any]] = {}


def register_recycle_exemption(name: str, source: Callable[[], Any]) -> None:
    """The hook for workflow apps whose customers the review must leave alone."""
    _RECYCLE_EXEMPTIONS[name] = source


def recycle_exemptions() -> list[Any]:
    return [source() for source in _RECYCLE_EXEMPTIONS.values()]


def disputes_available() -> bool:
    return ReviewAction.DISPUTE_OVERDUE in _EXTRA_SOURCES


def inactive_owners() -> AnomalyList:
    # The few inactive users first, then their customers through the owner index (a join
    # of every customer with its owner would read the whole table).
    inactive = list(
        User.objects.filter(Q(is_active=False) | Q(state=EmploymentState.DEPARTED)).values_list(
            "pk", flat=True
        )
    )
    queryset = Customer.objects.filter(merged_into__isnull=True, owner_id__in=inactive)
    result = AnomalyList(ReviewAction.INACTIVE_OWNER, count=queryset.count())
    for pk, owner_id, team_id, owner_name in queryset.order_by("pk").values_list(
        "pk", "owner_id", "owner__team_id", "owner__username"
    )[:ANOMALY_ROW_LIMIT]:
        result.items.append(
            AnomalyItem(
                pk, owner_id, team_id, _("%(user)s is no longer active") % {"user": owner_name}
            )
        )
    return result


def reps_over_cap(book: PolicyBook) -> AnomalyList:
    """One grouped query; each rep's cap from their effective policy."""
    rows = (
        Customer.objects.filter(merged_into__isnull=True, owner__isnull=False)
        .values("owner_id")
        .annotate(total=Count("id"), won=Count("id", filter=Q(stage=FunnelStage.WON)))
        .order_by("owner_id")
    )
    result = AnomalyList(ReviewAction.OVER_CAP)
    for row in rows:
        policy = book.for_user(row["owner_id"])
        owned = row["total"] if policy.count_won_in_cap else row["total"] - row["won"]
        if owned <= policy.max_owned:
            continue
        result.count += 1
        if len(result.items) < ANOMALY_ROW_LIMIT:
            result.items.append(
                AnomalyItem(
                    None,
                    row["owner_id"],
                    book.team_of(row["owner_id"]),
                    _("owns %(owned)d customers; the limit is %(cap)d")
                    % {"owned": owned, "cap": policy.max_owned},
                )
            )
    return result


def open_possible_duplicates() -> AnomalyList:
    """Each unresolved pair once per team involved, so both sides' managers see it."""
    queryset = PossibleDuplicate.objects.filter(resolved_at__isnull=True)
    result = AnomalyList(ReviewAction.POSSIBLE_DUPLICATE, count=queryset.count())
    rows = queryset.order_by("-score", "pk").values_list(
        "customer_id",
        "customer__owner_id",
        "customer__owner__team_id",
        "candidate_id",
        "candidate__owner_id",
        "candidate__owner__team_id",
        "candidate__display_name",
        "customer__display_name",
        "score",
    )[:ANOMALY_ROW_LIMIT]
    for cust, cust_owner, cust_team, cand, cand_owner, cand_team, cand_name, name, score in rows:
        result.items.append(
            AnomalyItem(
                cust,
                cust_owner,
                cust_team,
                _("may be the same company as %(other)s (score %(score).2f)")
                % {"other": cand_name, "score": score},
            )
        )
        if cand_team != cust_team:
            result.items.append(
                AnomalyItem(
                    cand,
                    cand_owner,
                    cand_team,
                    _("may be the same company as %(other)s (score %(score).2f)")
                    % {"other": name, "score": score},
                )
            )
    return result


def overdue_disputes(as_of: datetime) -> AnomalyList:
    """Disputes past their deadline: empty until the disputes app registers its source."""
    source = _EXTRA_SOURCES.get(ReviewAction.DISPUTE_OVERDUE)
    if source is None:
        return AnomalyList(ReviewAction.DISPUTE_OVERDUE)
    return source(as_of)


def collect_anomalies(book: PolicyBook, as_of: datetime) -> list[AnomalyList]:
    return [
        inactive_owners(),
        reps_over_cap(book),
        open_possible_duplicates(),
        overdue_disputes(as_of),
    ]
