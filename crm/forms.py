"""Forms of the customer pages. They only parse input: crm.services decides and saves."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import (
    Customer,
    FollowUpKind,
    FunnelStage,
    Industry,
    Lifecycle,
    SizeBand,
    Source,
    ValueTier,
)
from crm.services import NAME_MAX_LENGTH, CustomerInvalid

DATETIME_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def duplicate_check_attrs(url: str) -> dict[str, str]:
    """htmx attributes that make an input ask the live duplicate check (查重) as one types."""
    return {
        "hx-get": url,
        "hx-trigger": "input changed delay:400ms, change",
        "hx-target": "#duplicate-check",
        "hx-include": "[name=display_name],[name=credit_code],[name=phone]",
        "aria-describedby": "duplicate-check",
    }


class BootstrapFormMixin:
    """Bootstrap 5 classes on every widget (the partial form_fields.html renders the rest)."""

    fields: dict[str, forms.Field]

    def _style(self) -> None:
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{css} {widget.attrs.get('class', '')}".strip()


class DomainErrorsMixin(BootstrapFormMixin):
    """Put a service's CustomerInvalid messages on the fields they name."""

    def add_service_errors(self, error: CustomerInvalid) -> None:
        for name, message in error.errors.items():
            target = name if name in self.fields else None
            self.add_error(target, message)  # type: ignore[attr-defined]


def _choices(choices: Any, *, blank: bool) -> list[tuple[Any, Any]]:
    return [("", "---------"), *choices] if blank else list(choices)


class CustomerForm(DomainErrorsMixin, forms.Form):
    """The editable fields of a customer. Names, codes and phones are cleaned by the service
    (one set of rules and messages for the page, the import and the API)."""

    display_name = forms.CharField(
        label=_("Customer name"),
        widget=forms.TextInput(attrs={"maxlength": NAME_MAX_LENGTH, "autocomplete": "off"}),
        # No max_length here: the service explains an over-long name in its own words.
        strip=False,
    )
    legal_name = forms.CharField(label=_("legal name"), required=False, max_length=200)
    credit_code = forms.CharField(
        label=_("unified social credit code"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    phone = forms.CharField(
        label=_("phone"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    email = forms.EmailField(label=_("e-mail"), required=False)
    address = forms.CharField(
        label=_("address"),
        required=False,
        max_length=255,
        help_text=_("Province, city and district are derived from a changed address."),
    )
    province = forms.CharField(label=_("province"), required=False, max_length=32)
    city = forms.CharField(label=_("city"), required=False, max_length=32)
    district = forms.CharField(label=_("district"), required=False, max_length=32)
    division_code = forms.RegexField(
        label=_("administrative division code"),
        required=False,
        regex=r"^\d{2,12}$",
        max_length=12,
        error_messages={"invalid": _("The division code consists of 2 to 12 digits.")},
    )
    industry = forms.ModelChoiceField(
        label=_("industry"), queryset=Industry.objects.all(), required=False
    )
    size_band = forms.ChoiceField(
        label=_("size"), choices=_choices(SizeBand.choices, blank=True), required=False
    )
    value_tier = forms.ChoiceField(label=_("value tier"), choices=ValueTier.choices)
    lifecycle = forms.ChoiceField(label=_("lifecycle"), choices=Lifecycle.choices)
    source = forms.ChoiceField(label=_("source"), choices=Source.choices)
    notes = forms.CharField(
        label=_("notes"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )

    # Fields whose change moves the derived address divisions.
    DIVISION_FIELDS = ("province", "city", "district", "division_code")

    def __init__(
        self, *args: Any, instance: Customer, check_url: str | None = None, **kwargs: Any
    ) -> None:
        self.instance = instance
        kwargs.setdefault("initial", {name: self._value_of(name) for name in self.base_fields})
        super().__init__(*args, **kwargs)
        self._style()
        if check_url:
            for name in ("display_name", "credit_code", "phone"):
                self.fields[name].widget.attrs.update(duplicate_check_attrs(check_url))

    def _value_of(self, name: str) -> Any:
        if name == "industry":
            return self.instance.industry_id
        return getattr(self.instance, name)

    def changes(self) -> dict[str, Any]:
        """Only what the user changed, so the service recomputes what depends on it.

        When the address changes and the division fields were left alone, they are left out:
        the service then derives province, city, district and code from the new address.
        """
        changed: dict[str, Any] = {}
        for name, value in self.cleaned_data.items():
            current = self._value_of(name)
            if name == "industry":
                if (value.pk if value else None) != current:
                    changed[name] = value
            elif (value or "") != (current or ""):
                changed[name] = value
        return changed


class ContactForm(DomainErrorsMixin, forms.Form):
    name = forms.CharField(label=_("Contact name"), max_length=100)
    title = forms.CharField(label=_("title"), required=False, max_length=100)
    mobile = forms.CharField(
        label=_("mobile"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    phone = forms.CharField(
        label=_("phone"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    email = forms.EmailField(label=_("e-mail"), required=False)
    wechat = forms.CharField(label=_("WeChat ID"), required=False, max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._style()


class FollowUpForm(DomainErrorsMixin, forms.Form):
    kind = forms.ChoiceField(label=_("kind"), choices=_choices(FollowUpKind.choices, blank=True))
    # A naive datetime-local value is made aware in the current (the user's) time zone.
    happened_at = forms.DateTimeField(
        label=_("when"),
        input_formats=[DATETIME_LOCAL_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT),
    )
    summary = forms.CharField(
        label=_("summary"), max_length=5000, widget=forms.Textarea(attrs={"rows": 4})
    )
    next_step = forms.CharField(label=_("next step"), required=False, max_length=255)
    stage_after = forms.TypedChoiceField(
        label=_("stage after"), choices=FunnelStage.choices, coerce=int
    )
    stage_reason = forms.CharField(
        label=_("reason for moving back"),
        required=False,
        max_length=255,
        help_text=_("Required when the customer moves back in the funnel."),
    )

    def __init__(self, *args: Any, customer: Customer, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "happened_at": timezone.localtime().replace(second=0, microsecond=0),
                "stage_after": customer.stage,
            },
        )
        super().__init__(*args, **kwargs)
        self._style()
