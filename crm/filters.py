"""FilterSets of the customer domain; selectors apply them to already-scoped querysets."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from crm.identity.normalize import normalize_text, parse_company_name
from crm.models import Customer, FunnelStage, Industry, Lifecycle, Source, User, ValueTier
from crm.selectors import customer_owner_choices

# Free text longer than this is cut: nobody types more, and icontains on it costs.
MAX_QUERY_LENGTH = 100
ALL = _("All")


class OwnerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} · {obj.team}" if obj.team_id else str(obj)


class OwnerFilter(django_filters.ModelChoiceFilter):
    field_class = OwnerChoiceField


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"),
        method="filter_q",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Name, legal name or credit code")}
        ),
    )
    stage = django_filters.ChoiceFilter(
        label=_("funnel stage"), choices=FunnelStage.choices, empty_label=ALL
    )
    industry = django_filters.ModelChoiceFilter(
        label=_("industry"), queryset=Industry.objects.all(), empty_label=ALL
    )
    region = django_filters.CharFilter(
        label=_("Region"),
        method="filter_region",
        widget=forms.TextInput(attrs={"placeholder": _("Province, city or division code")}),
    )
    value_tier = django_filters.ChoiceFilter(
        label=_("value tier"), choices=ValueTier.choices, empty_label=ALL
    )
    lifecycle = django_filters.ChoiceFilter(
        label=_("lifecycle"), choices=Lifecycle.choices, empty_label=ALL
    )
    source = django_filters.ChoiceFilter(label=_("source"), choices=Source.choices, empty_label=ALL)
    owner = OwnerFilter(label=_("owner"), queryset=User.objects.none(), empty_label=ALL)
    ownership = django_filters.ChoiceFilter(
        label=_("Owned or pool"),
        choices=[("owned", _("Owned")), ("pool", _("In the pool"))],
        empty_label=ALL,
        method="filter_ownership",
    )

    class Meta:
        model = Customer
        fields: list[str] = []

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if user.is_crm_admin or user.is_manager:
            self.filters["owner"].queryset = customer_owner_choices(user)
        else:
            # A rep sees only their own customers: owner and pool filters mean nothing.
            del self.filters["owner"]
            del self.filters["ownership"]
        for field in self.form.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", f"{css} {css}-sm")

    def filter_q(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        text = " ".join(value.split())[:MAX_QUERY_LENGTH]
        if not text:
            return queryset
        condition = (
            Q(display_name__icontains=text)
            | Q(legal_name__icontains=text)
            | Q(credit_code__icontains=text.replace(" ", "").upper())
        )
        # The normalised trade name finds 字節跳動 / ＡＢＣ / bracketed-region spellings too.
        search_key = parse_company_name(text).search_key
        if search_key:
            condition |= Q(search_key__icontains=search_key)
        normalized = normalize_text(text)
        if normalized and normalized != search_key:
            condition |= Q(name_key__icontains=normalized)
        return queryset.filter(condition)

    def filter_region(
        self, queryset: QuerySet[Customer], name: str, value: str
    ) -> QuerySet[Customer]:
        text = value.strip()[:MAX_QUERY_LENGTH]
        if not text:
            return queryset
        if text.isdigit():
            # A division code prefix: 32 (江苏), 3205 (苏州), 320506 (吴中区).
            return queryset.filter(division_code__startswith=text)
        return queryset.filter(
            Q(province__icontains=text) | Q(city__icontains=text) | Q(district__icontains=text)
        )

    def filter_ownership(
        self, queryset: QuerySet[Customer], name: str, value: str
    ) -> QuerySet[Customer]:
        if value == "pool":
            return queryset.filter(owner__isnull=True)
        if value == "owned":
            return queryset.filter(owner__isnull=False)
        return queryset
