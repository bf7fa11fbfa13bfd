"""Admin: pool policies (validated), the ledger (read-only: it is append-only), and the
territory rule sets with their tree, check, overlap report, copy and activation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.errors import DomainError
from crm.models import SizeBand, User
from ownership.models import (
    OwnershipEvent,
    PoolPolicy,
    Realignment,
    RuleSet,
    RuleSetActivation,
    RuleSetStatus,
    Territory,
)
from ownership.territories import selectors as territory_selectors
from ownership.territories.services import (
    RuleSetInvalid,
    TerritoryError,
    activation_progress,
    customers_estimate,
    rule_set_activate,
    rule_set_activate_later,
    rule_set_check,
    rule_set_copy,
)
from ownership.territory_forms import TerritoryForm
from ownership.territory_reports import division_label, overlap_rows


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


class PoolPolicyForm(forms.ModelForm):
    class Meta:
        model = PoolPolicy
        fields = [
            "team",
            "territory",
            "max_owned",
            "count_won_in_cap",
            "max_claims_per_day",
            "days_without_follow_up",
            "days_to_reach_50",
            "days_to_reach_100",
            "won_exempt",
            "cooldown_days",
            "warning_days",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "territory" in self.fields:
            # The current choice is shown with its rule set (names repeat across sets).
            self.fields["territory"].label_from_instance = (  # type: ignore[attr-defined]
                lambda t: f"{t.rule_set.name} · {t.name}"
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("team") is not None and data.get("territory") is not None:
            self.add_error(
                "territory",
                _(
                    "A policy belongs to a team or to a territory, not both: leave one of "
                    "them empty."
                ),
            )
        warning = data.get("warning_days")
        period = data.get("days_without_follow_up")
        if warning is not None and period is not None and warning >= period:
            self.add_error(
                "warning_days",
                _("The warning must come before the clock ends: fewer days than %(days)d.")
                % {"days": period},
            )
        reach_50, reach_100 = data.get("days_to_reach_50"), data.get("days_to_reach_100")
        if reach_50 is not None and reach_100 is not None and reach_50 > reach_100:
            self.add_error(
                "days_to_reach_50", _("Reaching 50% cannot be allowed longer than winning.")
            )
        return data


@admin.register(PoolPolicy)
class PoolPolicyAdmin(admin.ModelAdmin):
    form = PoolPolicyForm
    list_display = [
        "__str__",
        "max_owned",
        "max_claims_per_day",
        "days_without_follow_up",
        "days_to_reach_50",
        "days_to_reach_100",
        "won_exempt",
        "cooldown_days",
        "warning_days",
        "updated_at",
    ]
    list_select_related = ["team", "territory", "territory__rule_set"]
    autocomplete_fields = ["team", "territory"]


@admin.register(OwnershipEvent)
class OwnershipEventAdmin(admin.ModelAdmin):
    list_display = [
        "customer",
        "sequence",
        "kind",
        "from_owner",
        "to_owner",
        "actor",
        "occurred_at",
    ]
    list_filter = ["kind", "occurred_at"]
    list_select_related = ["customer", "from_owner", "to_owner", "actor"]
    search_fields = ["customer__display_name", "reason", "hash"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- territories and rule sets -------------------------------------------------------------

STATUS_COLOURS: dict[str, str] = {
    RuleSetStatus.ACTIVE: "#146c43",
    RuleSetStatus.DRAFT: "#0b5ed7",
    RuleSetStatus.RETIRED: "#495057",
}


class RuleSetActivationInline(admin.TabularInline):
    """The activation history of a rule set: read-only (activation is recorded, not edited)."""

    model = RuleSetActivation
    fk_name = "rule_set"
    extra = 0
    can_delete = False
    fields = ("activated_at", "activated_by", "previous", "customers_resolved", "customers_changed")
    readonly_fields = fields
    verbose_name_plural = _("activation history")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    """Rule sets: drafts are edited (with their territories); the active and retired sets
    are read-only. Copy and activation call the territory services."""

    list_display = [
        "name",
        "status_badge",
        "default_team",
        "territory_count",
        "created_by",
        "created_at",
        "activated_at",
        "tools",
    ]
    list_filter = ["status"]
    list_select_related = ["default_team", "created_by"]
    search_fields = ["name"]
    autocomplete_fields = ["default_team"]
    fields = [
        "name",
        "status",
        "default_team",
        "notes",
        "created_by",
        "created_at",
        "activated_at",
        "tree",
    ]
    readonly_fields = ["status", "created_by", "created_at", "activated_at", "tree"]
    inlines = [RuleSetActivationInline]
    actions = ["copy_as_draft", "activate"]
    change_form_template = "admin/ownership/ruleset/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[RuleSet]:
        return super().get_queryset(request).annotate(territory_total=Count("territories"))

    # --- permissions: only drafts change ---------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.editable:
            return False
        return super().has_delete_permission(request, obj)

    def _may_activate(self, request: HttpRequest) -> bool:
        # Model-level change permission: retired sets may be activated again (a rollback).
        return super().has_change_permission(request, None)

    def save_model(self, request: HttpRequest, obj: RuleSet, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = _user(request)
            obj.status = RuleSetStatus.DRAFT
        super().save_model(request, obj, form, change)

    # --- columns -------------------------------------------------------------------------

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: RuleSet) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>',
            STATUS_COLOURS.get(obj.status, "#495057"),
            obj.get_status_display(),
        )

    @admin.display(description=_("territories"), ordering="territory_total")
    def territory_count(self, obj: RuleSet) -> int:
        return int(getattr(obj, "territory_total", 0))

    @admin.display(description=_("check"))
    def tools(self, obj: RuleSet) -> str:
        links = [
            (
                reverse("admin:ownership_territory_changelist") + f"?rule_set__id__exact={obj.pk}",
                gettext("Territory tree"),
            ),
            (reverse("admin:ownership_ruleset_overlaps", args=[obj.pk]), gettext("Overlaps")),
        ]
        if obj.status != RuleSetStatus.ACTIVE:
            links.append(
                (reverse("admin:ownership_ruleset_activate", args=[obj.pk]), gettext("Activate…"))
            )
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description=_("territory tree"))
    def tree(self, obj: RuleSet | None) -> str:
        if obj is None or obj.pk is None:
            return "—"
        compiled = territory_selectors.compile_rule_set(obj)
        problem_ids = {p.territory_id for p in compiled.problems}
        rows = territory_selectors.territory_tree(obj)
        return render_to_string(
            "admin/ownership/ruleset/tree.html",
            {
                "rule_set": obj,
                "rows": rows,
                "problem_ids": problem_ids,
                "show_counts": obj.status == RuleSetStatus.ACTIVE,
            },
        )

    # --- actions -------------------------------------------------------------------------

    @admin.action(description=_("Copy as a new draft"), permissions=["add"])
    def copy_as_draft(self, request: HttpRequest, queryset: QuerySet[RuleSet]) -> None:
        for source in queryset.order_by("pk"):
            try:
                draft = rule_set_copy(actor=_user(request), source=source)
            except DomainError as error:
                self.message_user(request, f"{source.name}: {error.message}", messages.ERROR)
                continue
            self.message_user(
                request,
                format_html(
                    '{} <a href="{}">{}</a>',
                    gettext("Copied %(source)s as a new draft:") % {"source": source.name},
                    reverse("admin:ownership_ruleset_change", args=[draft.pk]),
                    draft.name,
                ),
                messages.SUCCESS,
            )

    @admin.action(description=_("Check and activate…"), permissions=["change"])
    def activate(
        self, request: HttpRequest, queryset: QuerySet[RuleSet]
    ) -> HttpResponseRedirect | None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(
                request, gettext("Choose exactly one rule set to activate."), messages.ERROR
            )
            return None
        return HttpResponseRedirect(
            reverse("admin:ownership_ruleset_activate", args=[chosen[0].pk])
        )

    # --- the check, the overlap report and activation -------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name="ownership_ruleset_activate",
            ),
            path(
                "<int:pk>/overlaps/",
                self.admin_site.admin_view(self.overlaps_view),
                name="ownership_ruleset_overlaps",
            ),
            path(
                "<int:pk>/activation/",
                self.admin_site.admin_view(self.activation_view),
                name="ownership_ruleset_activation",
            ),
        ]
        return own + super().get_urls()

    def _page(
        self, request: HttpRequest, template: str, rule_set: RuleSet, **context: Any
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "rule_set": rule_set,
                "change_url": reverse("admin:ownership_ruleset_change", args=[rule_set.pk]),
                **context,
            },
        )

    def overlaps_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The problems and undecided overlaps of a rule set, with example customers."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rule_set = get_object_or_404(RuleSet, pk=pk)
        _compiled, problems, overlaps = rule_set_check(rule_set)
        return self._page(
            request,
            "admin/ownership/ruleset/overlaps.html",
            rule_set,
            title=gettext("Check and overlap report · %(name)s") % {"name": rule_set.name},
            problems=problems,
            overlaps=overlap_rows(overlaps),
        )

    def activation_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Progress of an activation running in the background; refreshes itself."""
        if not self._may_activate(request):
            raise PermissionDenied
        rule_set = get_object_or_404(RuleSet, pk=pk)
        progress = activation_progress(rule_set.pk) or {}
        total = int(progress.get("total") or 0)
        done = int(progress.get("done") or 0)
        return self._page(
            request,
            "admin/ownership/ruleset/activation.html",
            rule_set,
            title=gettext("Activating %(name)s") % {"name": rule_set.name},
            progress=progress,
            done=done,
            total=total,
            percent=min(100, round(100 * done / total)) if total else 0,
            running=progress.get("state") in ("queued", "running"),
        )

    def activate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """A confirmation page that shows the check first; POST activates. A refusal lists
        the problems and overlaps that stand in the way."""
        if not self._may_activate(request):
            raise PermissionDenied
        rule_set = get_object_or_404(RuleSet, pk=pk)
        error = ""
        if request.method == "POST" and rule_set.status != RuleSetStatus.ACTIVE:
            if customers_estimate() >= settings.TERRITORY_BACKGROUND_ACTIVATION_FROM:
                try:
                    rule_set_activate_later(actor=_user(request), rule_set=rule_set)
                except RuleSetInvalid as refusal:
                    return self._activate_page(
                        request, rule_set, refusal.problems, refusal.overlaps, refusal.message
                    )
                return HttpResponseRedirect(
                    reverse("admin:ownership_ruleset_activation", args=[rule_set.pk])
                )
            try:
                activation = rule_set_activate(actor=_user(request), rule_set=rule_set)
            except RuleSetInvalid as refusal:
                return self._activate_page(
                    request, rule_set, refusal.problems, refusal.overlaps, refusal.message
                )
            except TerritoryError as refusal:
                error = refusal.message
            else:
                self.message_user(
                    request,
                    format_html(
                        '{} <a href="{}">{}</a>',
                        gettext(
                            "%(name)s is now the active rule set: %(resolved)d customers "
                            "resolved, %(changed)d changed territory."
                        )
                        % {
                            "name": rule_set.name,
                            "resolved": activation.customers_resolved,
                            "changed": activation.customers_changed,
                        },
                        reverse("realignment_preview"),
                        gettext("Review the realignment"),
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:ownership_ruleset_change", args=[rule_set.pk])
                )
        _compiled, problems, overlaps = rule_set_check(rule_set)
        return self._activate_page(request, rule_set, problems, overlaps, error)

    def _activate_page(
        self,
        request: HttpRequest,
        rule_set: RuleSet,
        problems: list[Any],
        overlaps: list[Any],
        error: str,
    ) -> HttpResponse:
        active = territory_selectors.active_rule_set()
        return self._page(
            request,
            "admin/ownership/ruleset/activate.html",
            rule_set,
            title=gettext("Activate %(name)s?") % {"name": rule_set.name},
            problems=problems,
            overlaps=overlap_rows(overlaps),
            error=error,
            active=active,
            territory_count=rule_set.territories.count(),
            ready=not problems and not overlaps and rule_set.status != RuleSetStatus.ACTIVE,
        )


def _tree_order(rule_set_id: int | None) -> tuple[list[int], list[int]]:
    """Territory ids in tree order (rule sets: active, drafts, retired, newest first; in a
    set: parents before children, siblings by priority and name) and each one's depth."""
    rows = Territory.objects.values_list(
        "pk", "parent_id", "priority", "name", "rule_set_id", "rule_set__status"
    )
    if rule_set_id is not None:
        rows = rows.filter(rule_set_id=rule_set_id)
    nodes = {
        pk: (parent, priority, name, rs, status) for pk, parent, priority, name, rs, status in rows
    }
    children: dict[int | None, list[int]] = {}
    roots: list[int] = []
    for pk, (parent, *_rest) in nodes.items():
        if parent is None or parent not in nodes:
            roots.append(pk)
        else:
            children.setdefault(parent, []).append(pk)
    status_order: dict[str, int] = {
        RuleSetStatus.ACTIVE: 0,
        RuleSetStatus.DRAFT: 1,
        RuleSetStatus.RETIRED: 2,
    }

    def sibling_key(pk: int) -> tuple[int, str, int]:
        return (nodes[pk][1], nodes[pk][2], pk)

    roots.sort(key=lambda pk: (status_order.get(nodes[pk][4], 3), -nodes[pk][3], *sibling_key(pk)))
    ids: list[int] = []
    depths: list[int] = []
    seen: set[int] = set()
    stack = [(pk, 0) for pk in reversed(roots)]
    while stack:
        pk, depth = stack.pop()
        if pk in seen:
            continue
        seen.add(pk)
        ids.append(pk)
        depths.append(depth)
        for child in sorted(children.get(pk, []), key=sibling_key, reverse=True):
            stack.append((child, depth + 1))
    # Nodes in a parent cycle are reached from no root: list them last, unindented.
    for pk in sorted(set(nodes) - seen):
        ids.append(pk)
        depths.append(0)
    return ids, depths


@admin.register(Territory)
class TerritoryAdmin(admin.ModelAdmin):
    """The territory tree. Only a draft's territories change; every edit is checked by the
    compiled rules (see TerritoryForm)."""

    form = TerritoryForm
    list_display = [
        "tree_name",
        "rule_set",
        "priority",
        "divisions",
        "industry_list",
        "sizes",
        "tiers",
        "team_list",
        "out_of_territory",
        "add_child",
    ]
    list_filter = ["rule_set"]
    list_select_related = ["rule_set"]
    list_per_page = 200
    search_fields = ["name", "rule_set__name"]
    filter_horizontal = ["teams", "industries"]
    fieldsets = (
        (None, {"fields": ("rule_set", "parent", "name", "priority")}),
        (
            _("Criteria (empty: as the parent territory)"),
            {"fields": ("division_codes", "industries", "size_bands", "value_tiers")},
        ),
        (_("Responsibility"), {"fields": ("teams", "out_of_territory")}),
    )

    def _is_changelist(self, request: HttpRequest) -> bool:
        match = request.resolver_match
        return match is not None and match.url_name == "ownership_territory_changelist"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Territory]:
        # As ModelAdmin.get_queryset, with the tree annotations in place before ordering.
        queryset = self.model._default_manager.get_queryset().select_related("rule_set")
        if self._is_changelist(request):
            raw = request.GET.get("rule_set__id__exact", "")
            ids, depths = _tree_order(int(raw) if raw.isdigit() else None)
            position = "array_position(%s::bigint[], ownership_territory.id)"
            queryset = queryset.prefetch_related("teams", "industries").annotate(
                tree_position=RawSQL(position, (ids,)),
                tree_depth=RawSQL(f"(%s::int[])[{position}]", (depths, ids)),
            )
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_ordering(self, request: HttpRequest) -> list[str]:
        if self._is_changelist(request):
            return ["tree_position"]
        return list(super().get_ordering(request) or [])

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Territory], search_term: str
    ) -> tuple[QuerySet[Territory], bool]:
        queryset, distinct = super().get_search_results(request, queryset, search_term)
        if request.GET.get("model_name") == "poolpolicy":
            # A pool policy is for the active set's territories (or a draft's, ahead of
            # its activation); retired territories decide nothing any more.
            queryset = queryset.exclude(rule_set__status=RuleSetStatus.RETIRED).order_by(
                "rule_set__status", "name"
            )
        return queryset, distinct

    # --- permissions: a territory changes only while its rule set is a draft --------------

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.rule_set.editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.rule_set.editable:
            return False
        return super().has_delete_permission(request, obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # This territory was checked by its form; say so when the draft still has problems
        # elsewhere (an edit may have made a child lie outside its parent, say).
        rule_set = form.instance.rule_set
        compiled = territory_selectors.compile_rule_set(rule_set)
        others = [p for p in compiled.problems if p.territory_id != form.instance.pk]
        if others:
            self.message_user(
                request,
                format_html(
                    '{} <a href="{}">{}</a>',
                    gettext("The draft %(name)s has %(count)d problem(s) in other territories.")
                    % {"name": rule_set.name, "count": len(others)},
                    reverse("admin:ownership_ruleset_overlaps", args=[rule_set.pk]),
                    gettext("See the check"),
                ),
                messages.WARNING,
            )

    # --- columns -------------------------------------------------------------------------

    @admin.display(description=_("territory"), ordering="name")
    def tree_name(self, obj: Territory) -> str:
        depth = int(getattr(obj, "tree_depth", 0) or 0)
        return format_html(
            '<span style="padding-left:{}em">{}{}</span>',
            depth * 1.5,
            "└ " if depth else "",
            obj.name,
        )

    @admin.display(description=_("administrative divisions"))
    def divisions(self, obj: Territory) -> str:
        return "、".join(division_label(code) for code in obj.division_codes) or "—"

    @admin.display(description=_("industries"))
    def industry_list(self, obj: Territory) -> str:
        return "、".join(i.name for i in obj.industries.all()) or "—"

    @admin.display(description=_("sizes"))
    def sizes(self, obj: Territory) -> str:
        labels = dict(SizeBand.choices)
        return "、".join(str(labels.get(s, s)) for s in obj.size_bands) or "—"

    @admin.display(description=_("value tiers"))
    def tiers(self, obj: Territory) -> str:
        return "、".join(obj.value_tiers) or "—"

    @admin.display(description=_("responsible teams"))
    def team_list(self, obj: Territory) -> str:
        return "、".join(t.name for t in obj.teams.all()) or gettext("as the parent")

    @admin.display(description="")
    def add_child(self, obj: Territory) -> SafeString | str:
        if not obj.rule_set.editable:
            return ""
        url = reverse("admin:ownership_territory_add") + (
            f"?rule_set={obj.rule_set_id}&parent={obj.pk}"
        )
        return format_html('<a href="{}">{}</a>', url, gettext("add a child"))


@admin.register(Realignment)
class RealignmentAdmin(admin.ModelAdmin):
    """Applied realignments (read-only: they are applied on the realignment page)."""

    list_display = ["rule_set", "applied_by", "applied_at", "counts_display"]
    list_select_related = ["rule_set", "applied_by"]
    fields = ["rule_set", "applied_by", "applied_at", "counts_display", "decisions"]
    readonly_fields = ["rule_set", "applied_by", "applied_at", "counts_display", "decisions"]

    @admin.display(description=_("counts"))
    def counts_display(self, obj: Realignment) -> str:
        counts = obj.counts or {}
        return gettext("kept %(keep)d · to the pool %(pool)d · allocated %(allocate)d") % {
            "keep": counts.get("keep", 0),
            "pool": counts.get("pool", 0),
            "allocate": counts.get("allocate", 0),
        }

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
