"""Forms of the customer import pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.importer import import_owner_choices, max_upload_bytes
from crm.models import User


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Customer file"),
        help_text=gettext_lazy(
            "CSV (UTF-8 or GBK, as Excel saves it) or .xlsx. The first row holds the column "
            "names: 名称 (required), 外部编号, 统一社会信用代码, 省, 市, 地址, 电话, 行业; other "
            "columns are ignored."
        ),
        widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": ".csv,.xlsx"}),
    )
    owner = forms.ModelChoiceField(
        label=gettext_lazy("Owner of the imported customers"),
        queryset=User.objects.none(),
        required=False,
        empty_label=gettext_lazy("Nobody: the public pool"),
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = import_owner_choices(user)

    def clean_file(self) -> UploadedFile:
        """Cheap checks before anything is stored; the content is checked by the service."""
        upload: UploadedFile = self.cleaned_data["file"]
        name = upload.name or ""
        if Path(name).suffix.lower() not in (".csv", ".xlsx"):
            raise forms.ValidationError(
                _("Only .csv and .xlsx files can be imported, not “%(name)s”.") % {"name": name}
            )
        limit = max_upload_bytes()
        if upload.size is not None and upload.size > limit:
            raise forms.ValidationError(
                _("The file is larger than %(limit)s MB; split it into smaller files.")
                % {"limit": f"{limit / 1024 / 1024:g}"}
            )
        return upload


class ImportConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        label=gettext_lazy("I have checked the preview; import the new customers now."),
        required=True,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )
