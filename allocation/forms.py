from __future__ import annotations

from django import forms
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from crm.forms import DomainErrorsMixin, duplicate_check_attrs
from crm.models import Industry, SizeBand, Source


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
    size_band = forms.ChoiceField(
        label=_("Size"), choices=[("", "—"), *SizeBand.choices], required=False
    )
    source = forms.ChoiceField(
        label=_("Source"), choices=Source.choices, initial=Source.OTHER, required=False
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
