"""The funnel report pages, exports and the rep's home card."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from crm.funnel import funnel_snapshot_take
from crm.models import FunnelSnapshot, Role, Team, User
from tests.conftest import login
from tests.factories import CustomerFactory, TeamFactory, UserFactory

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


@pytest.fixture
def snapshot(rep: User, second_rep: User, team: Team, other_team: Team) -> FunnelSnapshot:
    for stage in (0, 0, 25, 25, 50, 50, 75, 100):
        CustomerFactory(owner=rep, stage=stage)
    for stage in (0, 25, 25, 25, 50):
        CustomerFactory(owner=second_rep, stage=stage)
    third = UserFactory(username="rep3", display_name="张伟", team=team)
    for stage in (0, 0, 0, 0, 25, 50, 75):
        CustomerFactory(owner=third, stage=stage)
    outsider = UserFactory(username="outrep", display_name="外部销售", team=other_team)
    CustomerFactory(owner=outsider, stage=25)
    return funnel_snapshot_take()


class FunnelTable(HTMLParser):
    """Rows of the report's rep table: (row heading, first number of each cell)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and "funnel-table" in (dict(attrs).get("class") or ""):
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell[0].strip() if self._cell else "")
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None and data.strip():
            self._cell.append(data)


def test_a_manager_reads_their_team_with_charts_and_diagnosis(
    client: Client, manager: User, team: Team, other_team: Team, snapshot: FunnelSnapshot
) -> None:
    login(client, manager)
    body = client.get(reverse("funnel_report")).content.decode()
    assert "销售漏斗报告" in body and team.name in body and other_team.name not in body
    assert "<svg" in body and not INLINE_SCRIPT.search(body)
    response = client.get(reverse("funnel_report"), {"team": team.pk})
    body = response.content.decode()
    assert response.status_code == 200
    assert "团队中位数" in body and 'class="trend-chart' in body
    assert "张伟" in body and "外部销售" not in body
    report = response.context["report"]
    flagged = {str(r.rep): r.diagnosis for r in report.reps if r.diagnosis}
    for name, diagnosis in flagged.items():
        assert diagnosis.problem in body and diagnosis.training in body, name
    assert not INLINE_SCRIPT.search(body)


def test_other_teams_and_strangers_are_404_and_other_roles_403(
    client: Client,
    manager: User,
    rep: User,
    committee_member: User,
    other_team: Team,
    snapshot: FunnelSnapshot,
) -> None:
    login(client, manager)
    url = reverse("funnel_report")
    assert client.get(url, {"team": other_team.pk}).status_code == 404
    assert client.get(url, {"team": "abc"}).status_code == 404
    assert client.get(url, {"snapshot": 99999}).status_code == 404
    outsider = User.objects.get(username="outrep")
    team_id = manager.team_id
    assert client.get(url, {"team": team_id, "rep": outsider.pk}).status_code == 404
    export = reverse("funnel_export")
    assert client.get(export, {"team": other_team.pk}).status_code == 404
    for user in (rep, committee_member):
        client.logout()
        login(client, user)
        assert client.get(url).status_code == 403
        assert client.get(export).status_code == 403
        assert client.post(reverse("funnel_snapshot_take")).status_code == 403


def test_an_administrator_sees_every_team(
    client: Client, crm_admin: User, team: Team, other_team: Team, snapshot: FunnelSnapshot
) -> None:
    login(client, crm_admin)
    body = client.get(reverse("funnel_report")).content.decode()
    assert team.name in body and other_team.name in body


def test_one_reps_page_shows_their_funnel_next_to_the_team_median(
    client: Client, manager: User, team: Team, snapshot: FunnelSnapshot
) -> None:
    login(client, manager)
    third = User.objects.get(username="rep3")
    response = client.get(reverse("funnel_report"), {"team": team.pk, "rep": third.pk})
    body = response.content.decode()
    assert response.context["chosen"].rep == third
    assert 'id="rep-funnel-title"' in body and "stroke-dasharray" in body  # median outline
    assert "张伟 的销售漏斗与团队中位数对比" in body


def test_the_exports_carry_the_numbers_of_the_page(
    client: Client, manager: User, team: Team, snapshot: FunnelSnapshot
) -> None:
    login(client, manager)
    page = client.get(reverse("funnel_report"), {"team": team.pk})
    table = FunnelTable()
    table.feed(page.content.decode())
    page_rows = {row[0]: row[1:6] for row in table.rows if len(row) >= 6}
    response = client.get(reverse("funnel_export"), {"team": team.pk, "format": "csv"})
    raw = response.content.decode("utf-8")
    assert raw.startswith("\ufeff") and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(raw.lstrip("\ufeff"))))
    header, data = rows[0], rows[1:]
    reached_at = header.index("达到该阶段及以上的客户数")
    exported: dict[str, list[str]] = {}
    for row in data:
        exported.setdefault(row[2], []).append(row[reached_at])
    for who in ("王小明", "李娜", "张伟", "团队合计", "团队中位数"):
        assert exported[who] == page_rows[who], who
    # The XLSX holds the same cells.
    response = client.get(reverse("funnel_export"), {"team": team.pk, "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    xlsx = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    assert xlsx == rows


def test_export_cells_cannot_become_formulas(
    client: Client, manager: User, team: Team, snapshot: FunnelSnapshot
) -> None:
    UserFactory(username="evil", display_name="=HYPERLINK(1)", team=team)
    funnel_snapshot_take()
    login(client, manager)
    raw = client.get(reverse("funnel_export"), {"team": team.pk}).content.decode()
    assert "'=HYPERLINK(1)" in raw


def test_report_pages_take_a_constant_number_of_queries(
    client: Client,
    crm_admin: User,
    team: Team,
    snapshot: FunnelSnapshot,
    django_assert_max_num_queries: Any,
) -> None:
    for n in range(8):
        extra = TeamFactory(name=f"新团队{n}")
        member = UserFactory(username=f"member{n}", team=extra)
        CustomerFactory(owner=member, stage=25)
        UserFactory(username=f"teammate{n}", team=team)
    funnel_snapshot_take()
    login(client, crm_admin)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("funnel_report")).status_code == 200
    with django_assert_max_num_queries(14):
        assert client.get(reverse("funnel_report"), {"team": team.pk}).status_code == 200


def test_taking_a_snapshot_from_the_page(
    client: Client,
    manager: User,
    rep: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    CustomerFactory(owner=rep, stage=25)
    login(client, manager)
    body = client.get(reverse("funnel_report")).content.decode()
    assert "还没有销售漏斗快照" in body
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("funnel_snapshot_take"), follow=True)
    assert "正在生成新快照" in response.content.decode()
    assert FunnelSnapshot.objects.count() == 1
    response = client.post(reverse("funnel_snapshot_take"), follow=True)
    assert "10 分钟内已生成过快照" in response.content.decode()
    assert client.get(reverse("funnel_snapshot_take")).status_code == 405


def test_the_rep_sees_their_funnel_next_to_the_team_median_at_home(
    client: Client, rep: User, second_rep: User, team: Team
) -> None:
    login(client, rep)
    assert "还没有包含你的销售漏斗快照" in client.get(reverse("home")).content.decode()
    for stage in (0, 25, 50):
        CustomerFactory(owner=rep, stage=stage)
    for stage in (0, 0, 0, 0, 0, 0, 25):
        CustomerFactory(owner=second_rep, stage=stage)
    funnel_snapshot_take()
    body = client.get(reverse("home")).content.decode()
    assert "我的销售漏斗与团队中位数对比" in body and "团队中位数" in body
    assert 'id="my-funnel-title"' in body and not INLINE_SCRIPT.search(body)
    assert "李娜" not in body  # the median, never a colleague's own figures by name


def test_a_manager_home_links_the_reports(client: Client, manager: User) -> None:
    login(client, manager)
    body = client.get(reverse("home")).content.decode()
    assert reverse("funnel_report") in body and reverse("review_outcomes") in body


def test_the_rep_role_has_no_report_in_the_navigation(client: Client, rep: User) -> None:
    login(client, rep)
    assert reverse("funnel_report") not in client.get(reverse("customer_list")).content.decode()
    manager = UserFactory(username="m2", role=Role.MANAGER)
    client.logout()
    login(client, manager)
    body = client.get(reverse("customer_list")).content.decode()
    assert reverse("funnel_report") in body and reverse("review_run_list") in body
