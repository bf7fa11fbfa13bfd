"""FilterSets of the allocation pages; selectors apply them to already-scoped querysets."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from allocation.models import ReassignmentRequest, RequestKind, RequestState
from crm.models import Customer, Industry, ValueTier

ALL = _("All")
MAX_QUERY_LENGTH = 100


def _style(filterset: django_filters.FilterSet) -> None:
    for field in filterset.form.fields.values():
        css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
        field.widget.attrs.setdefault("class", f"{css} {css}-sm")


class RequestFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(
        label=_("state"), choices=RequestState.choices, empty_label=ALL
    )
    kind = django_filters.ChoiceFilter(
        label=_("kind"), choices=RequestKind.choices, empty_label=ALL
    )

    class Meta:
        model = ReassignmentRequest
        fields: list[str] = []

    def __init__(self, *args: Any, with_state: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_state:
            del self.filters["state"]
        _style(self)


class PoolFilter(django_filters.FilterSet):
    """The manager's view of the pool: what to allocate."""

    q = django_filters.CharFilter(
        label=_("Search"),
        method="filter_q",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Customer name")}),
    )
    industry = django_filters.ModelChoiceFilter(
        label=_("industry"), queryset=Industry.objects.all(), empty_label=ALL
    )
    value_tier = django_filters.ChoiceFilter(
        label=_("value tier"), choices=ValueTier.choices, empty_label=ALL
    )
    region = django_filters.CharFilter(
        label=_("Region"),
        method="filter_region",
        widget=forms.TextInput(attrs={"placeholder": _("Province or city")}),
    )

    class Meta:
        model = Customer
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _style(self)

    def filter_q(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        value = value.strip()[:MAX_QUERY_LENGTH]
        if not value:
            return queryset
        return queryset.filter(Q(display_name__icontains=value) | Q(search_key__icontains=value))

    def filter_region(
        self, queryset: QuerySet[Customer], name: str, value: str
    ) -> QuerySet[Customer]:
        value = value.strip()[:MAX_QUERY_LENGTH]
        if not value:
            return queryset
        return queryset.filter(Q(province__icontains=value) | Q(city__icontains=value))
