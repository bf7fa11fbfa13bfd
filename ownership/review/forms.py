"""The what-if form: the PoolPolicy fields (labels and limits from the model)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _

from ownership.models import PoolPolicy
from ownership.review.policies import POLICY_FIELDS


class PolicyTrialForm(forms.Form):
    """Not a ModelForm: the values are tried, not saved, and the one-global-policy
    constraint must not refuse an unsaved copy of the global default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in POLICY_FIELDS:
            model_field = PoolPolicy._meta.get_field(name)
            assert isinstance(model_field, models.Field)
            field = model_field.formfield()
            assert field is not None
            if isinstance(field.widget, forms.CheckboxInput):
                field.widget.attrs["class"] = "form-check-input"
            else:
                field.widget.attrs["class"] = "form-control"
                field.widget.attrs["inputmode"] = "numeric"
            self.fields[name] = field

    @classmethod
    def initial_from(cls, policy: PoolPolicy) -> dict[str, Any]:
        return {name: getattr(policy, name) for name in POLICY_FIELDS}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        follow_up = data.get("days_without_follow_up")
        warning = data.get("warning_days")
        if follow_up is not None and warning is not None and warning >= follow_up:
            self.add_error(
                "warning_days",
                _("Warn fewer days ahead than the days without follow-up before recycling."),
            )
        reach_50 = data.get("days_to_reach_50")
        reach_100 = data.get("days_to_reach_100")
        if reach_50 is not None and reach_100 is not None and reach_50 > reach_100:
            self.add_error(
                "days_to_reach_100",
                _("The days to reach 100% cannot be fewer than the days to reach 50%."),
            )
        return data

    def values(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in POLICY_FIELDS}
