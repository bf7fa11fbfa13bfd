"""Forms of the handover pages: they bind and clean input; the services decide."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Customer, User
from handover.selectors import Suggestion

TEXT_MAX = 2000
# Above this many customers the record page offers bulk choices only; single customers are
# then reassigned from the plan page.
PER_CUSTOMER_LIMIT = 300


class LeaverChoiceForm(forms.Form):
    leaver = forms.ModelChoiceField(
        label=_("Leaving rep"),
        queryset=User.objects.none(),
        empty_label=_("Choose a rep"),
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    def __init__(self, *args: Any, reps: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["leaver"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = reps


def _successor_label(suggestion: Suggestion) -> str:
    return f"{suggestion.rep} — {'; '.join(suggestion.reasons)}"


class DepartureForm(forms.Form):
    MODE_ONE = "one"
    MODE_AUTO = "auto"

    last_day = forms.DateField(
        label=_("Last working day"),
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}),
    )
    reason = forms.CharField(
        label=_("Reason (optional)"),
        required=False,
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
    )
    mode = forms.ChoiceField(
        label=_("Successors"),
        choices=[
            (MODE_ONE, _("One successor for every customer (below you may pick others)")),
            (MODE_AUTO, _("Spread over the suggested colleagues, strongest with room first")),
        ],
        initial=MODE_ONE,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )
    successor = forms.TypedChoiceField(
        label=_("Successor for all"),
        required=False,
        coerce=int,
        empty_value=None,
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    def __init__(
        self,
        *args: Any,
        suggestions: list[Suggestion],
        customers: Iterable[Customer] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.people = {s.rep.pk: s.rep for s in suggestions}
        choices: list[tuple[Any, Any]] = [("", _("— choose —"))]
        choices += [(s.rep.pk, _successor_label(s)) for s in suggestions]
        successor = self.fields["successor"]
        assert isinstance(successor, forms.TypedChoiceField)
        successor.choices = choices
        short: list[tuple[Any, Any]] = [("", _("as chosen above"))]
        short += [(s.rep.pk, str(s.rep)) for s in suggestions]
        self.customer_fields: list[tuple[Customer, forms.BoundField]] = []
        for customer in customers:
            name = f"c_{customer.pk}"
            self.fields[name] = forms.TypedChoiceField(
                label=customer.display_name,
                required=False,
                coerce=int,
                empty_value=None,
                choices=short,
                widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
            )
            self.customer_fields.append((customer, self[name]))
        if not self.is_bound:
            self.initial.setdefault("last_day", timezone.localdate() + timedelta(days=14))
            if suggestions:
                self.initial.setdefault("successor", suggestions[0].rep.pk)

    def clean_last_day(self) -> date:
        value: date = self.cleaned_data["last_day"]
        if value < timezone.localdate():
            raise forms.ValidationError(_("The last working day cannot be in the past."))
        return value

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("mode") == self.MODE_ONE and not cleaned.get("successor"):
            overrides = self.per_customer()
            if len(overrides) < len(self.customer_fields) or not self.customer_fields:
                self.add_error("successor", _("Choose the successor."))
        return cleaned

    def chosen_successor(self) -> User | None:
        if self.cleaned_data.get("mode") != self.MODE_ONE:
            return None
        pk = self.cleaned_data.get("successor")
        return self.people.get(pk) if pk else None

    def per_customer(self) -> dict[int, User]:
        chosen: dict[int, User] = {}
        for customer, bound in self.customer_fields:
            pk = self.cleaned_data.get(bound.name)
            if pk and pk in self.people:
                chosen[customer.pk] = self.people[pk]
        return chosen


class TaskIdsField(forms.TypedMultipleChoiceField):
    """Task ids from checkboxes; the service checks each belongs to the actor."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(coerce=int, **kwargs)

    def valid_value(self, value: Any) -> bool:
        return str(value).isdigit()


class AcceptForm(forms.Form):
    tasks = TaskIdsField(
        label=_("Customers"), error_messages={"required": _("Choose at least one customer.")}
    )


class RefuseForm(forms.Form):
    reason = forms.CharField(
        label=_("Why do you refuse this customer?"),
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
        error_messages={"required": _("Say why you refuse this customer.")},
    )


class DoneForm(forms.Form):
    note = forms.CharField(
        label=_("How did the call or visit go?"),
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "class": "form-control"}),
        error_messages={"required": _("Describe the call or the visit.")},
    )


class ConfirmForm(forms.Form):
    happened_on = forms.DateField(
        label=_("It took place on"),
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}),
        error_messages={"required": _("Enter the date it took place.")},
    )
    note = forms.CharField(
        label=_("What happened"),
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "class": "form-control"}),
        error_messages={"required": _("Say what happened on the call or the visit.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("happened_on", timezone.localdate())


class SendBackForm(forms.Form):
    note = forms.CharField(
        label=_("What is still missing?"),
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
        error_messages={"required": _("Say what is still missing.")},
    )


class ReassignForm(forms.Form):
    tasks = TaskIdsField(
        label=_("Customers"), error_messages={"required": _("Choose at least one customer.")}
    )
    successor = forms.ModelChoiceField(
        label=_("New successor"),
        queryset=User.objects.none(),
        empty_label=_("— choose —"),
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
        error_messages={"required": _("Choose the successor.")},
    )

    def __init__(self, *args: Any, candidates: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["successor"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = candidates
