"""Forms of the dispute pages (reps) and of the committee's admin views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.forms import BootstrapFormMixin
from crm.models import Customer
from disputes.attachments import max_bytes, max_files
from disputes.models import AwardTo, Dispute, DisputeKind, RulingOutcome
from disputes.services import STATEMENT_MAX_LENGTH, DisputeInvalid
from ownership.models import OwnershipEvent

ACCEPT = "image/png,image/jpeg,image/gif,image/webp,application/pdf"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented pattern); checked by the service."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT}))
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        if not data:
            return []
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


def _attachments_help() -> str:
    from django.template.defaultfilters import filesizeformat

    return str(
        _("Images (PNG, JPEG, GIF, WebP) or PDF, at most %(count)d files of %(size)s each.")
        % {"count": max_files(), "size": filesizeformat(max_bytes())}
    )


class ServiceErrorsMixin(BootstrapFormMixin):
    def add_service_errors(self, error: DisputeInvalid) -> None:
        for name, message in error.errors.items():
            target = name if name in self.fields else None
            self.add_error(target, message)  # type: ignore[attr-defined]


class CustomerChoiceField(forms.ModelChoiceField):
    """Only what a duplicate answer shows: name, owner, team."""

    def label_from_instance(self, obj: Any) -> str:
        if obj.owner_id is None:
            return f"{obj.display_name} · {_('In the pool')}"
        team = f" ({obj.owner.team})" if obj.owner.team_id else ""
        return f"{obj.display_name} · {obj.owner}{team}"


class EventChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        when = timezone.localtime(obj.occurred_at).strftime("%Y-%m-%d")
        to = obj.to_owner or _("the pool")
        return f"{when} · {obj.get_kind_display()} → {to}"


class PickCustomerForm(BootstrapFormMixin, forms.Form):
    """Step one from "my customers": which customer the dispute is about."""

    customer = CustomerChoiceField(label=_("Customer"), queryset=Customer.objects.none())

    def __init__(self, *args: Any, customers: QuerySet[Customer], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["customer"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = customers
        self._style()


class FileDisputeForm(ServiceErrorsMixin, forms.Form):
    kind = forms.ChoiceField(
        label=_("What is the dispute about?"), choices=DisputeKind.choices, widget=forms.RadioSelect
    )
    other_customer = CustomerChoiceField(
        label=_("The other record of the same company"),
        queryset=Customer.objects.none(),
        required=False,
        help_text=_("Records the duplicate check finds similar to this customer."),
    )
    rule_event = EventChoiceField(
        label=_("The change you contest"),
        queryset=OwnershipEvent.objects.none(),
        required=False,
        help_text=_("Recycling, transfers and allocations that took this customer from you."),
    )
    statement = forms.CharField(
        label=_("Your statement"),
        max_length=STATEMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("What happened, when, with whom. The committee also reads the records."),
    )
    attachments = MultipleFileField(label=_("Evidence files"))

    def __init__(
        self,
        *args: Any,
        others: Sequence[Customer] = (),
        events: QuerySet[OwnershipEvent] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        other_field = self.fields["other_customer"]
        event_field = self.fields["rule_event"]
        assert isinstance(other_field, forms.ModelChoiceField)
        assert isinstance(event_field, forms.ModelChoiceField)
        other_field.queryset = Customer.objects.filter(
            pk__in=[customer.pk for customer in others]
        ).select_related("owner__team")
        event_field.queryset = events if events is not None else OwnershipEvent.objects.none()
        self.fields["attachments"].help_text = _attachments_help()
        self._style()
        # Radio buttons are styled by the template, not as one control.
        self.fields["kind"].widget.attrs.pop("class", None)


class StatementForm(ServiceErrorsMixin, forms.Form):
    text = forms.CharField(
        label=_("Your statement"),
        max_length=STATEMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    attachments = MultipleFileField(label=_("Evidence files"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["attachments"].help_text = _attachments_help()
        self._style()


class AppealForm(StatementForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["text"].label = _("Why the ruling is wrong")


class WithdrawForm(BootstrapFormMixin, forms.Form):
    note = forms.CharField(
        label=_("Why do you withdraw? (optional)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._style()


class VoteForm(ServiceErrorsMixin, forms.Form):
    """The committee's vote (and the chair's decision) in the admin."""

    outcome = forms.ChoiceField(
        label=_("Ruling"), choices=RulingOutcome.choices, widget=forms.RadioSelect
    )
    award_to = forms.ChoiceField(
        label=_("A merged customer goes to"),
        choices=[("", "—"), *AwardTo.choices],
        required=False,
    )
    rationale = forms.CharField(
        label=_("Rationale"), widget=forms.Textarea(attrs={"rows": 5, "cols": 80})
    )

    def __init__(self, *args: Any, dispute: Dispute, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not dispute.has_two_records:
            field = self.fields["outcome"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [c for c in RulingOutcome.choices if c[0] != RulingOutcome.MERGE]
            del self.fields["award_to"]
