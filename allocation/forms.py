from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from crm.forms import BootstrapFormMixin, DomainErrorsMixin, duplicate_check_attrs
from crm.models import EmploymentState, Industry, Role, SizeBand, Source, User


def _size_choices() -> list[tuple[str, Any]]:
    return [("", "—"), *SizeBand.choices]


def _source_choices() -> list[tuple[str, Any]]:
    return list(Source.choices)


class RegistrationForm(DomainErrorsMixin, forms.Form):
    display_name = forms.CharField(
        label=_("Company name"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "organization", "autofocus": True}),
    )
    credit_code = forms.CharField(
        label=_("Unified social credit code"), max_length=32, required=False
    )
    phone = forms.CharField(label=_("Company phone"), max_length=32, required=False)
    address = forms.CharField(label=_("Address"), max_length=255, required=False)
    industry = forms.ModelChoiceField(
        label=_("Industry"), queryset=Industry.objects.all(), required=False
    )
    # Choices given as functions: every form instance deep-copies its fields, and a list of
    # choices with translatable labels is copied item by item (a third of building the
    # form that every registration builds).
    size_band = forms.ChoiceField(label=_("Size"), choices=_size_choices, required=False)
    source = forms.ChoiceField(
        label=_("Source"), choices=_source_choices, initial=Source.OTHER, required=False
    )
    first_contact_name = forms.CharField(label=_("First contact"), max_length=100, required=False)
    first_contact_phone = forms.CharField(
        label=_("First contact's mobile"), max_length=32, required=False
    )
    evidence = forms.CharField(
        label=_("How I found or first contacted them"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=_("Kept as evidence of your registration."),
    )
    confirmed_distinct = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._style()
        check = duplicate_check_attrs(str(reverse_lazy("customer_duplicate_check")))
        for name in ("display_name", "credit_code", "phone"):
            self.fields[name].widget.attrs.update(check)
        self.fields["first_contact_phone"].widget.attrs.update(
            {"inputmode": "tel", "autocomplete": "tel"}
        )
        self.fields["phone"].widget.attrs.update({"inputmode": "tel"})

    def confirmed_ids(self) -> list[int]:
        raw = self.cleaned_data.get("confirmed_distinct") or ""
        return [int(part) for part in raw.split(",") if part.strip().isdigit()]


class ReleaseForm(forms.Form):
    reason = forms.CharField(
        label=_("Why do you release this customer?"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
    )


class ClaimForm(forms.Form):
    customer_ids = forms.CharField(widget=forms.HiddenInput, required=False)


# --- Reassignment requests ---------------------------------------------------------------


class RepChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} · {obj.team}" if obj.team_id else str(obj)


def receiving_reps(exclude: User | None = None) -> QuerySet[User]:
    """Reps who may receive a customer: active, not leaving."""
    reps = User.objects.filter(
        role=Role.REP, is_active=True, state=EmploymentState.ACTIVE
    ).select_related("team")
    if exclude is not None:
        reps = reps.exclude(pk=exclude.pk)
    return reps.order_by("team__name", "display_name", "username")


class TransferForm(BootstrapFormMixin, forms.Form):
    """One form, three uses: the owner offers (to_rep + reason), a manager moves
    (to_rep + reason), a rep asks (reason + evidence)."""

    to_rep = RepChoiceField(label=_("New owner"), queryset=User.objects.none())
    reason = forms.CharField(
        label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    evidence = forms.CharField(
        label=_("Evidence"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("When and how you were in contact with this customer (dates, people, events)."),
    )

    def __init__(self, *args: Any, mode: str, owner: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode
        if mode == "ask":
            del self.fields["to_rep"]
        else:
            del self.fields["evidence"]
            self.fields["to_rep"].queryset = receiving_reps(exclude=owner)  # type: ignore[attr-defined]
        self._style()

    def add_service_errors(self, errors: dict[str, str]) -> None:
        for name, message in errors.items():
            self.add_error(name if name in self.fields else None, message)


class AskForm(TransferForm):
    """Asking from the collision page: nothing but reason and evidence."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, mode="ask", **kwargs)


class DecisionForm(forms.Form):
    action = forms.ChoiceField(choices=[("approve", _("Approve")), ("reject", _("Reject"))])
    comment = forms.CharField(
        label=_("Comment"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
    )


class WithdrawForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
    )


class IdsField(forms.Field):
    """A list of ids from repeated inputs (checkboxes or hidden), bad values dropped."""

    widget = forms.MultipleHiddenInput

    def __init__(self, *args: Any, limit: int = 200, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit = limit

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        ids = [int(item) for item in values if str(item).isdigit()]
        return list(dict.fromkeys(ids))[: self.limit]


class BulkApproveForm(forms.Form):
    request = IdsField(
        label=_("Requests"),
        error_messages={"required": _("Choose at least one request to approve.")},
    )
    comment = forms.CharField(label=_("Comment"), max_length=2000, required=False)


# --- Allocation ----------------------------------------------------------------------------


class AllocateOneForm(forms.Form):
    customer = forms.IntegerField(min_value=1)
    rep = forms.IntegerField(
        min_value=1, error_messages={"required": _("Choose the rep to allocate to.")}
    )


class BulkAllocationForm(forms.Form):
    customer = IdsField(
        label=_("Customers"),
        error_messages={"required": _("Choose at least one customer.")},
    )
    rep = IdsField(
        label=_("Reps"),
        required=False,
        limit=500,
    )
    confirm = forms.BooleanField(required=False)
    action = forms.ChoiceField(
        choices=[("balance", _("Balanced by value tier")), ("distribute", _("Automatic"))],
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") != "distribute" and not data.get("rep"):
            raise forms.ValidationError(_("Choose at least one rep."))
        return data
