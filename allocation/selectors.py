"""Reads of the allocation app: the pool a rep may claim from."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from crm.models import Customer, User

POOL_SORTS = {
    "name": "display_name",
    "created": "created_at",
    "tier": "value_tier",
    "stage": "stage",
}


def pool_for(user: User) -> QuerySet[Customer]:
    """Customers in the public pool (公海). Everyone signed in may look; contacts stay masked."""
    return (
        Customer.objects.filter(owner__isnull=True, merged_into__isnull=True)
        .select_related("industry")
        .order_by("-created_at")
    )


def filter_pool(queryset: QuerySet[Customer], params: dict[str, str]) -> QuerySet[Customer]:
    q = params.get("q", "").strip()
    if q:
        queryset = queryset.filter(Q(display_name__icontains=q) | Q(search_key__icontains=q))
    industry = params.get("industry", "").strip()
    if industry.isdigit():
        queryset = queryset.filter(industry_id=int(industry))
    tier = params.get("tier", "").strip()
    if tier in {"A", "B", "C", "D"}:
        queryset = queryset.filter(value_tier=tier)
    region = params.get("region", "").strip()
    if region:
        queryset = queryset.filter(Q(province__icontains=region) | Q(city__icontains=region))
    sort = params.get("sort", "")
    column = POOL_SORTS.get(sort.lstrip("-"))
    if column:
        queryset = queryset.order_by(("-" if sort.startswith("-") else "") + column, "pk")
    return queryset
