"""FilterSets of the dispute pages; selectors apply them to already-scoped querysets."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from disputes.models import Dispute, DisputeKind, DisputeState

ALL = _("All")


class DisputeFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(
        label=_("state"), choices=DisputeState.choices, empty_label=ALL
    )
    kind = django_filters.ChoiceFilter(
        label=_("kind"), choices=DisputeKind.choices, empty_label=ALL
    )

    class Meta:
        model = Dispute
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.form.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", f"{css} {css}-sm")
