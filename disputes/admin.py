"""The arbitration committee's workplace: the dispute queue, the evidence dossier, votes and
the chair's decisions. Every action here calls the same service as the web pages and the
tasks, so the history of a case reads the same whoever moved it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.errors import DomainError
from crm.models import Role, Team, User
from disputes import selectors, services
from disputes.forms import VoteForm
from disputes.models import (
    PENDING_STATES,
    CommitteeMembership,
    Dispute,
    DisputeHistory,
    DisputeState,
    DisputeStatement,
    Ruling,
)


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _may_work_cases(request: HttpRequest) -> bool:
    user = _user(request)
    return bool(user.is_active and (user.role == Role.COMMITTEE or user.is_crm_admin))


class DeadlineFilter(admin.SimpleListFilter):
    title = _("deadline")
    parameter_name = "deadline"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("overdue", _("Overdue")),
            ("soon", _("Due within %(hours)d hours") % {"hours": selectors.reminder_hours()}),
            ("later", _("Later")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> QuerySet[Dispute]:
        now = timezone.now()
        pending = queryset.filter(state__in=PENDING_STATES)
        soon = now + timedelta(hours=selectors.reminder_hours())
        if self.value() == "overdue":
            return pending.filter(deadline__lt=now)
        if self.value() == "soon":
            return pending.filter(deadline__gte=now, deadline__lte=soon)
        if self.value() == "later":
            return pending.filter(deadline__gt=soon)
        return queryset


class TeamFilter(admin.SimpleListFilter):
    title = _("team")
    parameter_name = "team"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(str(team.pk), team.name) for team in Team.objects.order_by("name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> QuerySet[Dispute]:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(Q(claimant_team_id=value) | Q(respondent_team_id=value))
        return queryset


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_work_cases(request)


class StatementInline(ReadOnlyInline):
    model = DisputeStatement
    fields = ("created_at", "round", "author", "text", "files")
    readonly_fields = fields
    verbose_name_plural = _("statements")

    @admin.display(description=_("attachments"))
    def files(self, obj: DisputeStatement) -> SafeString:
        links = [
            format_html(
                '<a href="{}">{}</a> ({})',
                reverse("admin:disputes_dispute_attachment", args=[a.pk]),
                a.original_name,
                a.content_type,
            )
            for a in obj.attachments.all()
        ]
        return mark_safe("<br>".join(links)) if links else mark_safe("—")


class HistoryInline(ReadOnlyInline):
    model = DisputeHistory
    fields = ("at", "from_state", "to_state", "actor", "note")
    readonly_fields = fields


class RulingInline(ReadOnlyInline):
    model = Ruling
    fields = ("round", "outcome", "award_to", "method", "decided_by", "rationale", "effects_list")
    readonly_fields = fields

    @admin.display(description=_("effects"))
    def effects_list(self, obj: Ruling) -> SafeString:
        return format_html(
            "<ul>{}</ul>",
            mark_safe("".join(format_html("<li>{}</li>", line) for line in obj.effects)),
        )


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "customer",
        "other_customer",
        "kind",
        "state_badge",
        "claimant",
        "respondent",
        "deadline_display",
        "round",
    ]
    list_display_links = ["pk", "customer"]
    list_filter = ["state", "kind", DeadlineFilter, TeamFilter]
    list_select_related = ["customer", "other_customer", "claimant", "respondent"]
    search_fields = ["customer__display_name", "other_customer__display_name", "=id"]
    date_hierarchy = "filed_at"
    ordering = ["deadline", "pk"]
    actions = ["take_under_review", "refresh_dossier", "close_cases"]
    inlines = [StatementInline, RulingInline, HistoryInline]
    change_form_template = "admin/disputes/dispute/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "kind",
                    "state",
                    "round",
                    "customer",
                    "other_customer",
                    "claimant",
                    "respondent",
                    "rule_event",
                    "filed_at",
                    "deadline",
                    "decided_at",
                    "appeal_until",
                    "appealed_by",
                    "closed_at",
                )
            },
        ),
        (_("Evidence dossier"), {"fields": ("dossier_built_at", "dossier_view")}),
    )
    readonly_fields = [
        "kind",
        "state",
        "round",
        "customer",
        "other_customer",
        "claimant",
        "respondent",
        "rule_event",
        "filed_at",
        "deadline",
        "decided_at",
        "appeal_until",
        "appealed_by",
        "closed_at",
        "dossier_built_at",
        "dossier_view",
    ]

    # --- permissions: committee members read and act; nobody edits fields here ---------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_work_cases(request) and super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may_work_cases(request) and super().has_module_permission(request)

    # --- columns ------------------------------------------------------------------------

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, obj: Dispute) -> str:
        colours: dict[str, str] = {
            DisputeState.FILED: "#0b5ed7",
            DisputeState.UNDER_REVIEW: "#6f42c1",
            DisputeState.APPEALED: "#b02a37",
            DisputeState.DECIDED: "#146c43",
        }
        return format_html(
            '<strong style="color:{}">{}</strong>',
            colours.get(obj.state, "#495057"),
            obj.get_state_display(),
        )

    @admin.display(description=_("deadline"), ordering="deadline")
    def deadline_display(self, obj: Dispute) -> str:
        text = date_format(timezone.localtime(obj.deadline), "Y-m-d H:i")
        if obj.is_overdue():
            # Overdue cases stand out in the queue (colour and words, not colour alone).
            return format_html(
                '<strong style="color:#b02a37">⚠ {} · {}</strong>', text, gettext("overdue")
            )
        return text

    @admin.display(description=_("dossier"))
    def dossier_view(self, obj: Dispute) -> str:
        return render_to_string("admin/disputes/dossier.html", {"dossier": obj.dossier or {}})

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        user = _user(request)
        dispute = get_object_or_404(Dispute, pk=object_id) if object_id.isdigit() else None
        extra = dict(extra_context or {})
        if dispute is not None:
            chair = selectors.chair_for(dispute)
            extra.update(
                {
                    "dispute": dispute,
                    "can_vote": dispute.is_pending
                    and selectors.can_vote(user, dispute)
                    and not selectors.has_voted(user, dispute),
                    "can_chair": dispute.is_pending
                    and chair is not None
                    and chair.pk == user.pk
                    and selectors.needs_chair(dispute),
                    "conflicted": user.role == Role.COMMITTEE
                    and selectors.conflicted(user, dispute),
                    "overdue": dispute.is_overdue(),
                    # Nobody reads an undecided round's votes before casting their own.
                    "votes": selectors.votes_visible_to(user, dispute),
                    "tally": selectors.tally(dispute),
                    "has_voted": selectors.has_voted(user, dispute),
                    "needs_chair": selectors.needs_chair(dispute),
                }
            )
        return super().change_view(request, object_id, form_url, extra)

    # --- actions (the same services as everywhere) ----------------------------------------

    def _run(self, request: HttpRequest, queryset: QuerySet[Dispute], call: Any, done: str) -> None:
        ok = 0
        for dispute in queryset.order_by("pk"):
            try:
                call(dispute)
            except DomainError as error:
                self.message_user(request, f"#{dispute.pk}: {error.message}", messages.ERROR)
            else:
                ok += 1
        if ok:
            self.message_user(request, done % {"count": ok}, messages.SUCCESS)

    @admin.action(description=_("Take up for review"), permissions=["view"])
    def take_under_review(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> None:
        actor = _user(request)
        self._run(
            request,
            queryset,
            lambda d: services.dispute_start_review(actor=actor, dispute=d),
            gettext("%(count)d cases under review."),
        )

    @admin.action(description=_("Assemble the dossier again"), permissions=["view"])
    def refresh_dossier(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> None:
        actor = _user(request)
        self._run(
            request,
            queryset,
            lambda d: services.dispute_refresh_dossier(actor=actor, dispute=d),
            gettext("%(count)d dossiers assembled again."),
        )

    @admin.action(description=_("Close decided cases"), permissions=["view"])
    def close_cases(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> None:
        actor = _user(request)
        self._run(
            request,
            queryset,
            lambda d: services.dispute_close(actor=actor, dispute=d),
            gettext("%(count)d cases closed."),
        )

    # --- the vote and the chair's decision ---------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/vote/",
                self.admin_site.admin_view(self.vote_view),
                name="disputes_dispute_vote",
            ),
            path(
                "<int:pk>/chair/",
                self.admin_site.admin_view(self.chair_view),
                name="disputes_dispute_chair",
            ),
            path(
                "attachments/<int:pk>/",
                self.admin_site.admin_view(self.attachment_view),
                name="disputes_dispute_attachment",
            ),
        ]
        return own + super().get_urls()

    def _case(self, request: HttpRequest, pk: int) -> Dispute:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        return get_object_or_404(
            Dispute.objects.select_related("customer", "other_customer", "claimant", "respondent"),
            pk=pk,
        )

    def _decision_page(self, request: HttpRequest, pk: int, *, chair: bool) -> HttpResponse:
        dispute = self._case(request, pk)
        actor = _user(request)
        form = VoteForm(request.POST or None, dispute=dispute)
        change_url = reverse("admin:disputes_dispute_change", args=[dispute.pk])
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if chair:
                    services.dispute_chair_decide(
                        actor=actor,
                        dispute=dispute,
                        outcome=data["outcome"],
                        award_to=data.get("award_to") or "",
                        rationale=data["rationale"],
                    )
                    message = gettext("Your decision is recorded and applied.")
                else:
                    services.dispute_vote(
                        actor=actor,
                        dispute=dispute,
                        outcome=data["outcome"],
                        award_to=data.get("award_to") or "",
                        rationale=data["rationale"],
                    )
                    message = gettext("Your vote is recorded.")
            except services.DisputeInvalid as error:
                form.add_service_errors(error)
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                dispute.refresh_from_db()
                if dispute.state == DisputeState.DECIDED:
                    message += " " + gettext("The case is decided.")
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "dispute": dispute,
            "form": form,
            "chair": chair,
            "change_url": change_url,
            "title": (gettext("Decide as chair") if chair else gettext("Your vote"))
            + f" · #{dispute.pk}",
        }
        return TemplateResponse(request, "admin/disputes/dispute/vote.html", context)

    def vote_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._decision_page(request, pk, chair=False)

    def chair_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._decision_page(request, pk, chair=True)

    def attachment_view(self, request: HttpRequest, pk: int) -> FileResponse:
        from disputes.models import DisputeAttachment

        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        attachment = get_object_or_404(DisputeAttachment, pk=pk)
        return FileResponse(
            attachment.file.open("rb"),
            as_attachment=True,
            filename=attachment.original_name or attachment.file.name,
            content_type=attachment.content_type,
        )


@admin.register(CommitteeMembership)
class CommitteeMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "is_chair", "since"]
    list_editable = ["is_chair"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
