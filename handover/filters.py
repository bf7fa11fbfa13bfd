"""FilterSets of the handover pages; selectors apply them to already-scoped querysets."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import FunnelStage
from handover.models import OPEN_STATES, HandoverTask, TaskKind, TaskState

ALL = _("All")


class TaskFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(
        label=_("state"), choices=TaskState.choices, empty_label=ALL
    )
    stage = django_filters.ChoiceFilter(
        label=_("funnel stage"),
        choices=[(str(value), label) for value, label in FunnelStage.choices],
        empty_label=ALL,
    )
    kind = django_filters.ChoiceFilter(label=_("kind"), choices=TaskKind.choices, empty_label=ALL)
    overdue = django_filters.BooleanFilter(
        label=_("overdue only"), method="filter_overdue", widget=forms.CheckboxInput
    )

    class Meta:
        model = HandoverTask
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.form.fields.items():
            if name == "overdue":
                field.widget.attrs.setdefault("class", "form-check-input")
                continue
            field.widget.attrs.setdefault("class", "form-select form-select-sm")

    def filter_overdue(
        self, queryset: QuerySet[HandoverTask], name: str, value: bool | None
    ) -> QuerySet[HandoverTask]:
        if not value:
            return queryset
        return queryset.filter(state__in=OPEN_STATES, due_date__lt=timezone.localdate())
