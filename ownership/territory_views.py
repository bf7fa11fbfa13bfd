"""Territory pages: managers' territories (read-only), and for CRM administrators the
simulation of customers under the active rule set and another, the realignment preview
and its confirmation, and the list of realignment exceptions."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crm.errors import DomainError
from crm.models import Customer, EmploymentState, Role, Team, User
from crm.roles import role_required
from ownership.models import CustomerTerritory, Realignment
from ownership.territories import selectors
from ownership.territories.services import (
    ALLOCATE,
    KEEP,
    POOL,
    GroupDecision,
    RealignmentPreview,
    RealignmentStale,
    realignment_apply,
    realignment_csv,
    realignment_exception_clear,
    realignment_preview,
)
from ownership.territory_forms import GroupDecisionForm, SimulateForm
from ownership.territory_reports import (
    MAX_SIMULATED_ROWS,
    decode_upload,
    parse_csv,
    parse_pasted,
    pick_customers,
    simulate,
    territory_table,
)

EXAMPLES_PER_GROUP = 5


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


# --- managers: my territories --------------------------------------------------------------


@role_required(Role.MANAGER, Role.ADMIN)
def territory_mine(request: HttpRequest) -> HttpResponse:
    """The active rule set's territories of the manager's teams (an administrator: all),
    with their criteria, responsible teams and customer counts."""
    user = _user(request)
    rule_set, rows = territory_table(user)
    totals = {
        "customers": sum(row.customers for row in rows),
        "owned": sum(row.owned for row in rows),
    }
    totals["in_pool"] = totals["customers"] - totals["owned"]
    return render(
        request,
        "ownership/territories_mine.html",
        {"rule_set": rule_set, "rows": rows, "totals": totals, "scoped": not user.is_crm_admin},
    )


# --- administrators: simulation ------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def territory_simulate(request: HttpRequest) -> HttpResponse:
    """Paste, upload or pick customers and see where each belongs under the active rule
    set and under another one, side by side. Writes nothing."""
    if request.method == "POST":
        form = SimulateForm(request.POST, request.FILES)
    else:
        initial: dict[str, Any] = {}
        raw = request.GET.get("rule_set", "")
        if raw.isdigit():
            initial["rule_set"] = int(raw)
        else:
            first = SimulateForm().fields["rule_set"].queryset.first()  # type: ignore[attr-defined]
            initial["rule_set"] = first.pk if first is not None else None
        form = SimulateForm(initial=initial)
    context: dict[str, Any] = {"form": form, "limit": MAX_SIMULATED_ROWS}
    status = 200
    if form.is_bound:
        if form.is_valid():
            inputs, errors = _simulation_inputs(form.cleaned_data)
            if len(inputs) > MAX_SIMULATED_ROWS:
                errors.insert(
                    0,
                    _("Only the first %(count)d customers are shown; split the list.")
                    % {"count": MAX_SIMULATED_ROWS},
                )
                inputs = inputs[:MAX_SIMULATED_ROWS]
            other = form.cleaned_data.get("rule_set")
            rows, active, compiled_other = simulate(inputs, other=other)
            context.update(
                {
                    "rows": rows,
                    "errors": errors,
                    "other": other,
                    "active": selectors.active_rule_set(),
                    "other_problems": len(compiled_other.problems) if compiled_other else 0,
                    "other_overlaps": len(compiled_other.overlaps()) if compiled_other else 0,
                    "changed": sum(1 for row in rows if row.differs),
                    "has_active": active is not None,
                }
            )
        else:
            status = 400
    return render(request, "ownership/territory_simulate.html", context, status=status)


def _simulation_inputs(data: dict[str, Any]) -> tuple[list[Any], list[str]]:
    inputs: list[Any] = []
    errors: list[str] = []
    if (data.get("lines") or "").strip():
        found, problems = parse_pasted(data["lines"])
        inputs += found
        errors += problems
    upload = data.get("upload")
    if upload is not None:
        try:
            text = decode_upload(upload.read())
        except UnicodeDecodeError:
            errors.append(_("The file is neither UTF-8 nor GB18030 text; save it as CSV."))
        else:
            found, problems = parse_csv(text)
            inputs += found
            errors += [_("File: %(problem)s") % {"problem": p} for p in problems]
    if (data.get("customers") or "").strip():
        found, problems = pick_customers(data["customers"])
        inputs += found
        errors += problems
    return inputs, errors


# --- administrators: realignment -----------------------------------------------------------


def _reps_by_group(preview: RealignmentPreview) -> dict[str, QuerySet[User]]:
    """For each group, the active reps of its responsible teams (and their sub-teams)."""
    teams = {team.pk: team.parent_id for team in Team.objects.only("pk", "parent_id")}

    def lineage(team_id: int | None) -> set[int]:
        found: set[int] = set()
        while team_id is not None and team_id not in found:
            found.add(team_id)
            team_id = teams.get(team_id)
        return found

    reps = User.objects.filter(
        role=Role.REP, is_active=True, state=EmploymentState.ACTIVE, team__isnull=False
    ).order_by("team__name", "display_name", "username")
    rep_teams = dict(reps.values_list("pk", "team_id"))
    result: dict[str, QuerySet[User]] = {}
    for group in preview.groups:
        allowed = {team.pk for team in group.responsible_teams}
        ids = [pk for pk, team_id in rep_teams.items() if lineage(team_id) & allowed]
        result[group.key] = reps.filter(pk__in=ids).select_related("team")
    return result


def _decision_forms(
    preview: RealignmentPreview, data: Any = None
) -> list[tuple[Any, GroupDecisionForm]]:
    reps = _reps_by_group(preview)
    return [
        (
            group,
            GroupDecisionForm(data, group=group, reps=reps[group.key], prefix=f"g{index}"),
        )
        for index, group in enumerate(preview.groups)
    ]


def _preview_page(
    request: HttpRequest,
    preview: RealignmentPreview,
    forms: list[tuple[Any, GroupDecisionForm]] | None = None,
    status: int = 200,
) -> HttpResponse:
    forms = forms if forms is not None else _decision_forms(preview)
    groups = [
        {"group": group, "form": form, "examples": group.customers[:EXAMPLES_PER_GROUP]}
        for group, form in forms
    ]
    recent = Realignment.objects.select_related("rule_set", "applied_by")[:5]
    exceptions = CustomerTerritory.objects.filter(realignment_exception=True).count()
    return render(
        request,
        "ownership/realignment_preview.html",
        {
            "preview": preview,
            "groups": groups,
            "recent": recent,
            "exceptions": exceptions,
        },
        status=status,
    )


@role_required(Role.ADMIN)
def realignment_preview_view(request: HttpRequest) -> HttpResponse:
    """Owned customers outside their owner's team under the active rule set, by group, with
    a decision per group. Computing the preview moves nothing."""
    return _preview_page(request, realignment_preview())


@role_required(Role.ADMIN)
def realignment_export(request: HttpRequest) -> HttpResponse:
    """The whole preview as CSV (one line per customer)."""
    preview = realignment_preview()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="realignment-{stamp}.csv"'
    # A byte-order mark, so that Excel opens the Chinese text as UTF-8.
    response.write("\ufeff")
    writer = csv.writer(response)
    for row in csv.reader(io.StringIO(realignment_csv(preview))):
        writer.writerow([_spreadsheet_safe(cell) for cell in row])
    return response


# Cells a spreadsheet would run as a formula (CSV injection): a customer named "=HYPERLINK(…)"
# must stay text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def _bound_decisions(
    request: HttpRequest,
) -> tuple[RealignmentPreview, list[tuple[Any, GroupDecisionForm]], HttpResponse | None]:
    """The current preview with the posted decisions bound to it; a response instead when
    the preview changed since the page was shown or a decision is missing."""
    preview = realignment_preview()
    if request.POST.get("fingerprint", "") != preview.fingerprint:
        messages.error(
            request,
            _(
                "The customers outside their team changed since the preview was shown; "
                "nothing was moved. Here is the new preview: decide again."
            ),
        )
        return preview, [], _preview_page(request, preview, status=409)
    forms = _decision_forms(preview, request.POST)
    if not all(form.is_valid() for _group, form in forms):
        messages.error(request, _("Choose what happens to every group."))
        return preview, forms, _preview_page(request, preview, forms, status=400)
    return preview, forms, None


def _summary(forms: list[tuple[Any, GroupDecisionForm]]) -> dict[str, int]:
    counts = {KEEP: 0, POOL: 0, ALLOCATE: 0}
    for group, form in forms:
        counts[form.cleaned_data["choice"]] += group.count
    return counts


@require_POST
@role_required(Role.ADMIN)
def realignment_confirm(request: HttpRequest) -> HttpResponse:
    """The decisions, restated with their counts, before anything moves."""
    preview, forms, refusal = _bound_decisions(request)
    if refusal is not None:
        return refusal
    return render(
        request,
        "ownership/realignment_confirm.html",
        {"preview": preview, "forms": forms, "counts": _summary(forms)},
    )


@require_POST
@role_required(Role.ADMIN)
def realignment_apply_view(request: HttpRequest) -> HttpResponse:
    """Apply the confirmed decisions (the service re-checks the preview under a lock)."""
    preview, forms, refusal = _bound_decisions(request)
    if refusal is not None:
        return refusal
    if request.POST.get("confirmed") != "yes":
        return render(
            request,
            "ownership/realignment_confirm.html",
            {"preview": preview, "forms": forms, "counts": _summary(forms)},
        )
    decisions = [
        GroupDecision(
            key=group.key, choice=form.cleaned_data["choice"], rep=form.cleaned_data["rep"]
        )
        for group, form in forms
    ]
    try:
        record = realignment_apply(
            actor=_user(request), fingerprint=preview.fingerprint, decisions=decisions
        )
    except RealignmentStale as error:
        messages.error(request, error.message)
        return _preview_page(request, realignment_preview(), status=409)
    except DomainError as error:
        messages.error(request, error.message)
        return _preview_page(request, realignment_preview(), status=400)
    messages.success(
        request,
        _(
            "Realignment applied: %(keep)d kept with their owners (exceptions), %(pool)d sent "
            "to the pool, %(allocate)d allocated."
        )
        % {
            "keep": record.counts.get(KEEP, 0),
            "pool": record.counts.get(POOL, 0),
            "allocate": record.counts.get(ALLOCATE, 0),
        },
    )
    return redirect("realignment_preview")


@role_required(Role.ADMIN)
def realignment_exceptions(request: HttpRequest) -> HttpResponse:
    """Customers kept with their owner outside the owner's team: realignment leaves them
    alone until the exception is cleared."""
    query = request.GET.get("q", "").strip()
    records = (
        CustomerTerritory.objects.filter(realignment_exception=True)
        .select_related("customer", "customer__owner", "customer__owner__team", "territory")
        .order_by("customer__display_name", "customer_id")
    )
    if query:
        records = records.filter(customer__display_name__icontains=query)
    page = Paginator(records, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "ownership/realignment_exceptions.html",
        {"page": page, "q": query, "query": urlencode({"q": query}) if query else ""},
    )


@require_POST
@role_required(Role.ADMIN)
def realignment_exception_clear_view(request: HttpRequest) -> HttpResponse:
    """Clear one exception (a row's button) or the ticked ones."""
    raw = request.POST.getlist("customer") or request.POST.getlist("selected")
    ids = {int(value) for value in raw if value.isdigit()}
    customers = list(
        Customer.objects.filter(pk__in=ids, territory_record__realignment_exception=True).order_by(
            "pk"
        )
    )
    if not customers:
        messages.error(request, _("Choose the exceptions to clear."))
    else:
        for customer in customers:
            realignment_exception_clear(actor=_user(request), customer=customer)
        messages.success(
            request,
            _(
                "%(count)d exception(s) cleared: these customers appear in the next "
                "realignment preview if they are still outside their owner's team."
            )
            % {"count": len(customers)},
        )
    url = reverse("realignment_exceptions")
    back = request.POST.get("next", "")
    # Only a query string of the list itself (its search and page): never another site.
    return redirect(url + back if back.startswith("?") else url)
