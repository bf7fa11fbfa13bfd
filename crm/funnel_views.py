"""The funnel report pages: managers read their teams, administrators every team (reps see
their own funnel on their home page). Charts are server-rendered SVG; exports give the very
figures of the page (the same report objects), as XLSX or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm import funnel
from crm.errors import DomainError
from crm.funnel_charts import STAGE_COLOURS, funnel_chart, trend_chart
from crm.models import FunnelSnapshot, Role, Team, User
from crm.roles import role_required

TEAMS_PER_PAGE = 25


def _int_param(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404
    return int(raw)


def _pick_snapshot(request: HttpRequest, recent: Sequence[FunnelSnapshot]) -> FunnelSnapshot | None:
    wanted = _int_param(request, "snapshot")
    if wanted is None:
        return recent[0] if recent else None
    for snapshot in recent:
        if snapshot.pk == wanted:
            return snapshot
    found = FunnelSnapshot.objects.filter(pk=wanted).first()
    if found is None:
        raise Http404
    return found


def _pick_team(request: HttpRequest, teams: Sequence[Team]) -> Team | None:
    """The `?team=` among the teams the user may read; another id is a 404 (no hint)."""
    wanted = _int_param(request, "team")
    if wanted is None:
        return None
    for team in teams:
        if team.pk == wanted:
            return team
    raise Http404


@role_required(Role.MANAGER, Role.ADMIN)
def funnel_report(request: HttpRequest) -> HttpResponse:
    """Overview of the user's teams; `?team=` one team with its reps; `&rep=` one rep."""
    user: User = request.user  # type: ignore[assignment]
    teams = list(funnel.funnel_teams_for(user))
    recent = funnel.recent_snapshots()
    snapshot = _pick_snapshot(request, recent)
    team = _pick_team(request, teams)
    context: dict[str, Any] = {
        "snapshot": snapshot,
        "recent": recent,
        "teams": teams,
        "team": team,
        "stages": [(stage, STAGE_COLOURS[stage]) for stage in funnel.STAGES],
        "weak_percent": round(funnel.WEAK_RATIO * 100),
        "min_base": funnel.MIN_BASE,
    }
    if snapshot is None:
        return render(request, "crm/funnel/report.html", context)
    export_query: dict[str, Any] = {"snapshot": snapshot.pk}
    if team is None:
        page = Paginator(teams, TEAMS_PER_PAGE).get_page(request.GET.get("page"))
        summaries = funnel.teams_overview(snapshot, list(page))
        combined = funnel.combine(summary.funnel for summary in summaries)
        context.update(
            {
                "page": page,
                "query": urlencode({"snapshot": snapshot.pk}),
                "summaries": [
                    (
                        summary,
                        funnel_chart(
                            summary.funnel,
                            chart_id=f"team-{summary.team.pk}-funnel",
                            title=_("Funnel of %(team)s") % {"team": summary.team},
                        ),
                    )
                    for summary in summaries
                ],
                "combined": combined,
                "combined_chart": funnel_chart(
                    combined, chart_id="all-funnel", title=_("Funnel of the teams on this page")
                ),
            }
        )
    else:
        export_query["team"] = team.pk
        report = funnel.team_report(snapshot, team, with_trend=True)
        context.update(
            {
                "report": report,
                "team_chart": funnel_chart(
                    report.funnel,
                    chart_id="team-funnel",
                    title=_("Funnel of %(team)s") % {"team": team},
                ),
                "team_trend": trend_chart(
                    report.trend,
                    chart_id="team-trend",
                    title=_("Trend of %(team)s") % {"team": team},
                ),
            }
        )
        rep_id = _int_param(request, "rep")
        if rep_id is not None:
            chosen = next((rep for rep in report.reps if rep.rep.pk == rep_id), None)
            if chosen is None:
                raise Http404
            chosen.trend = funnel.rep_trend(snapshot, chosen.rep)
            context.update(
                {
                    "chosen": chosen,
                    "rep_chart": funnel_chart(
                        chosen.funnel,
                        chart_id="rep-funnel",
                        title=_("Funnel of %(rep)s next to the team median") % {"rep": chosen.rep},
                        median=report.median,
                    ),
                    "rep_trend_chart": trend_chart(
                        chosen.trend,
                        chart_id="rep-trend",
                        title=_("Trend of %(rep)s") % {"rep": chosen.rep},
                    ),
                }
            )
    context["export_query"] = urlencode(export_query)
    return render(request, "crm/funnel/report.html", context)


@require_POST
@role_required(Role.MANAGER, Role.ADMIN)
def funnel_snapshot_take(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        funnel.funnel_snapshot_request(actor=user)
    except DomainError as error:
        messages.info(request, error.message)
    else:
        messages.success(request, _("A new snapshot is being taken; reload this page in a minute."))
    return redirect("funnel_report")


# --- export ------------------------------------------------------------------------------------

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Cells a spreadsheet would run as a formula (CSV/formula injection): a rep named "=HYPERLINK(…)"
# must stay text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


@role_required(Role.MANAGER, Role.ADMIN)
def funnel_export(request: HttpRequest) -> HttpResponse:
    """The figures of the report page (`?snapshot=`, `?team=`), `?format=xlsx` or CSV."""
    user: User = request.user  # type: ignore[assignment]
    teams = list(funnel.funnel_teams_for(user))
    snapshot = _pick_snapshot(request, funnel.recent_snapshots(limit=1))
    team = _pick_team(request, teams)
    if snapshot is None:
        messages.info(request, _("There is no funnel snapshot to export yet."))
        return redirect("funnel_report")
    reports = funnel.team_reports(snapshot, [team] if team else teams)
    header = funnel.export_header()
    rows = [[_safe(value) for value in row] for row in funnel.export_rows(reports)]
    stamp = timezone.localtime(snapshot.taken_at).strftime("%Y%m%d-%H%M")
    name = f"funnel-{stamp}" + (f"-team{team.pk}" if team else "")
    if request.GET.get("format") == "xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(title=_("Funnel")[:31])
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        buffer = io.BytesIO()
        workbook.save(buffer)
        response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
        return response
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    # A byte-order mark, so that Excel opens the Chinese text as UTF-8.
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response
