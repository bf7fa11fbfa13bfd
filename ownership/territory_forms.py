"""Forms of the territory admin and pages: a territory validated by the compiled rules, the
simulation input, and the administrator's choice for one realignment group."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import SizeBand, User, ValueTier
from ownership.models import RuleSet, RuleSetStatus, Territory
from ownership.territories import selectors
from ownership.territories.rules import (
    PREFIX_LENGTHS,
    CompiledRuleSet,
    TerritoryNode,
    normalise_division_code,
)
from ownership.territories.services import ALLOCATE, KEEP, POOL, RealignmentGroup
from ownership.territory_reports import MAX_SIMULATED_ROWS, MAX_UPLOAD_BYTES

# The id the compiled rules give a territory that is being added (real ids are positive).
NEW_TERRITORY_ID = -1

CODE_SEPARATORS = re.compile(r"[\s,，、;；]+")


class DivisionCodesField(forms.CharField):
    """GB/T 2260 codes separated by commas (110000, 1101 and 110108 forms), stored in the
    short form customers carry. Whether a code exists is the compiled rules' check."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        codes: list[str] = []
        bad: list[str] = []
        for token in CODE_SEPARATORS.split(text):
            if not token:
                continue
            code = normalise_division_code(token)
            if (
                not token.isdigit()
                or len(token) not in (2, 4, 6)
                or len(code) not in PREFIX_LENGTHS
            ):
                bad.append(token)
            elif code not in codes:
                codes.append(code)
        if bad:
            raise forms.ValidationError(
                _(
                    "Not a division code: %(codes)s. Enter 2, 4 or 6 digits, e.g. 11 or 110000 "
                    "(北京市), 4401 (广州市), 110108 (海淀区)."
                )
                % {"codes": "、".join(bad)}
            )
        return codes


class TerritoryForm(forms.ModelForm):
    division_codes = DivisionCodesField(
        label=gettext_lazy("administrative divisions"),
        required=False,
        help_text=gettext_lazy(
            "Codes of provinces, cities or districts, separated by commas: 11 or 110000 "
            "(a province), 1101 or 440100 (a city), 110108 (a district). A code matches "
            "everything under it. Empty: as the parent territory."
        ),
        widget=forms.TextInput(attrs={"size": 60}),
    )
    size_bands = forms.MultipleChoiceField(
        label=gettext_lazy("sizes"),
        choices=SizeBand.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None ticked: as the parent territory (any size at the top)."),
    )
    value_tiers = forms.MultipleChoiceField(
        label=gettext_lazy("value tiers"),
        choices=ValueTier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None ticked: as the parent territory (any tier at the top)."),
    )

    class Meta:
        model = Territory
        fields = [
            "rule_set",
            "parent",
            "name",
            "priority",
            "division_codes",
            "industries",
            "size_bands",
            "value_tiers",
            "teams",
            "out_of_territory",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "rule_set" in self.fields:
            field = self.fields["rule_set"]
            field.queryset = RuleSet.objects.filter(status=RuleSetStatus.DRAFT)  # type: ignore[attr-defined]
            if self.instance.pk:
                field.disabled = True
        if "parent" in self.fields:
            self._limit_parents()

    def _rule_set_id(self) -> int | None:
        if self.instance.rule_set_id:
            return int(self.instance.rule_set_id)
        raw = self.data.get(self.add_prefix("rule_set")) if self.is_bound else None
        raw = raw or self.initial.get("rule_set")
        if isinstance(raw, RuleSet):
            return raw.pk
        return int(raw) if raw and str(raw).isdigit() else None

    def _limit_parents(self) -> None:
        from ownership.territory_reports import territory_paths

        rule_set_id = self._rule_set_id()
        parents: QuerySet[Territory] = Territory.objects.filter(
            rule_set__status=RuleSetStatus.DRAFT
        ).select_related("rule_set")
        if rule_set_id is not None:
            parents = parents.filter(rule_set_id=rule_set_id)
        if self.instance.pk:
            parents = parents.exclude(pk=self.instance.pk)
        field = self.fields["parent"]
        field.queryset = parents  # type: ignore[attr-defined]
        paths = territory_paths(
            [rule_set_id]
            if rule_set_id is not None
            else RuleSet.objects.filter(status=RuleSetStatus.DRAFT).values_list("pk", flat=True)
        )
        single = rule_set_id is not None

        def label(territory: Territory) -> str:
            path = paths.get(territory.pk, territory.name)
            return path if single else f"{territory.rule_set.name} · {path}"

        field.label_from_instance = label  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        rule_set: RuleSet | None = data.get("rule_set") or (
            self.instance.rule_set if self.instance.rule_set_id else None
        )
        if rule_set is None:
            return data
        if not rule_set.editable:
            raise forms.ValidationError(
                _("Only drafts can be edited; copy this rule set as a new draft to change it.")
            )
        parent: Territory | None = data.get("parent")
        if parent is not None and parent.rule_set_id != rule_set.pk:
            self.add_error("parent", _("The parent territory belongs to another rule set."))
            return data
        if self.errors:
            return data  # the criteria fields themselves are not valid yet
        self._check_with_rules(rule_set, data)
        return data

    def edited_node(self, data: dict[str, Any]) -> TerritoryNode:
        parent = data.get("parent")
        return TerritoryNode(
            id=self.instance.pk or NEW_TERRITORY_ID,
            name=data.get("name") or "",
            parent_id=parent.pk if parent is not None else None,
            priority=data.get("priority") or 0,
            division_codes=tuple(data.get("division_codes") or ()),
            industry_ids=frozenset(i.pk for i in data.get("industries") or ()),
            size_bands=frozenset(data.get("size_bands") or ()),
            value_tiers=frozenset(data.get("value_tiers") or ()),
            team_ids=tuple(sorted(t.pk for t in data.get("teams") or ())),
            out_of_territory=data.get("out_of_territory") or "",
        )

    def _check_with_rules(self, rule_set: RuleSet, data: dict[str, Any]) -> None:
        """Compile the draft as it would be with this territory saved and report the
        problems of this territory on its fields (the same rules activation applies)."""
        node = self.edited_node(data)
        nodes = [n for n in selectors.territory_nodes(rule_set) if n.id != node.id]
        compiled = CompiledRuleSet([*nodes, node], rule_set_id=rule_set.pk)
        parent = compiled.territories.get(node.parent_id) if node.parent_id else None
        for problem in compiled.problems:
            if problem.territory_id != node.id:
                continue
            self.add_error(self._field_of(problem.kind, node, parent), problem.message)

    @staticmethod
    def _field_of(kind: str, node: TerritoryNode, parent: Any) -> str | None:
        if kind in ("unknown_code", "outside_parent"):
            return "division_codes"
        if kind == "cycle":
            return "parent"
        if kind == "no_team":
            return "teams"
        if kind == "widens" and parent is not None:
            for name, own, inherited in (
                ("industries", node.industry_ids, parent.industry_ids),
                ("size_bands", node.size_bands, parent.size_bands),
                ("value_tiers", node.value_tiers, parent.value_tiers),
            ):
                if own and inherited is not None and not own <= inherited:
                    return name
        return None


# --- pages ---------------------------------------------------------------------------------


class SimulateForm(forms.Form):
    lines = forms.CharField(
        label=gettext_lazy("Customers, one per line"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "form-control font-monospace"}),
        help_text=gettext_lazy(
            "name, address, industry, size, tier — separated by tabs (pasted from a "
            "spreadsheet) or commas. Only the name is required."
        ),
    )
    upload = forms.FileField(
        label=gettext_lazy("Or upload a CSV file"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": ".csv"}),
        help_text=gettext_lazy(
            "First row: column names (name, address, industry, size, tier or 名称, 地址, 行业, "
            "规模, 等级). UTF-8 or GB18030."
        ),
    )
    customers = forms.CharField(
        label=gettext_lazy("Or existing customers"),
        required=False,
        widget=forms.TextInput(attrs={"class": "form-control"}),
        help_text=gettext_lazy("Ids or parts of names, separated by commas."),
    )
    rule_set = forms.ModelChoiceField(
        label=gettext_lazy("Compare with"),
        queryset=RuleSet.objects.none(),
        required=False,
        empty_label=gettext_lazy("(only the active rule set)"),
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from ownership.territory_reports import comparable_rule_sets

        self.fields["rule_set"].queryset = comparable_rule_sets()  # type: ignore[attr-defined]

    def clean_upload(self) -> Any:
        upload = self.cleaned_data.get("upload")
        if upload is None:
            return None
        if not upload.name.lower().endswith(".csv"):
            raise forms.ValidationError(
                _("Upload a .csv file (save the spreadsheet as CSV first).")
            )
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 1 MB; split it."))
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not (
            (data.get("lines") or "").strip()
            or data.get("upload")
            or (data.get("customers") or "").strip()
        ):
            raise forms.ValidationError(
                _("Paste some lines, upload a CSV file or name existing customers.")
            )
        lines = [line for line in (data.get("lines") or "").splitlines() if line.strip()]
        if len(lines) > MAX_SIMULATED_ROWS + 1:  # a header line is allowed
            self.add_error(
                "lines",
                _("At most %(count)d lines at a time; split the list.")
                % {"count": MAX_SIMULATED_ROWS},
            )
        return data


class GroupDecisionForm(forms.Form):
    """What happens to one realignment group (all or nothing for the group)."""

    key = forms.CharField(widget=forms.HiddenInput)
    choice = forms.ChoiceField(label=gettext_lazy("Decision"), widget=forms.RadioSelect)
    rep = forms.ModelChoiceField(
        label=gettext_lazy("Rep"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )

    def __init__(
        self, *args: Any, group: RealignmentGroup, reps: QuerySet[User], **kwargs: Any
    ) -> None:
        kwargs.setdefault("initial", {})["key"] = group.key
        super().__init__(*args, **kwargs)
        self.group = group
        team = group.responsible_label
        self.fields["choice"].choices = [  # type: ignore[attr-defined]
            (KEEP, _("Keep with the current owner (marked as an exception)")),
            (POOL, _("Send to the pool of %(team)s") % {"team": team}),
            (ALLOCATE, _("Allocate to a rep of %(team)s") % {"team": team}),
        ]
        self.fields["rep"].queryset = reps  # type: ignore[attr-defined]
        self.fields["rep"].empty_label = _("— choose a rep —")  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("key") and data["key"] != self.group.key:
            raise forms.ValidationError(
                _("The groups changed since the page was shown; review them again.")
            )
        if data.get("choice") == ALLOCATE and data.get("rep") is None:
            self.add_error("rep", _("Choose the rep who receives these customers."))
        if data.get("choice") != ALLOCATE:
            data["rep"] = None
        return data
