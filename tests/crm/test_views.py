"""Role-aware pages: each persona lands on its home, sees its navigation, and is refused
(403, never 500) on other roles' pages."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from crm.models import User
from tests.conftest import login

HOME_TITLES = {
    "rep": "销售工作台",
    "second_rep": "销售工作台",
    "manager": "经理工作台",
    "committee": "仲裁委员会",
    "admin": "管理员工作台",
}


@pytest.mark.parametrize("persona", list(HOME_TITLES))
def test_each_persona_lands_on_its_home_in_chinese(
    client: Client, personas: dict[str, User], persona: str
) -> None:
    login(client, personas[persona])
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert HOME_TITLES[persona] in body
    assert 'lang="zh-hans"' in body


@pytest.mark.parametrize(
    ("persona", "sees_team", "sees_admin"),
    [
        ("rep", False, False),
        ("manager", True, False),
        ("committee", False, True),
        ("admin", True, True),
    ],
)
def test_navigation_follows_the_role(
    client: Client, personas: dict[str, User], persona: str, sees_team: bool, sees_admin: bool
) -> None:
    login(client, personas[persona])
    body = client.get("/").content.decode()
    assert (f'href="{reverse("team")}"' in body) is sees_team
    assert (f'href="{reverse("admin:index")}"' in body) is sees_admin


def test_navigation_marks_the_current_page_only(client: Client, rep: User) -> None:
    login(client, rep)
    for page in ("register", "pool"):
        body = client.get(reverse(page)).content.decode()
        current = re.findall(r'<a class="nav-link active" aria-current="page" href="([^"]+)"', body)
        assert current == [reverse(page)]
    body = client.get(reverse("notification_list")).content.decode()  # not in the menu
    assert 'aria-current="page"' not in body


@pytest.mark.parametrize(
    ("persona", "status"),
    [("rep", 403), ("committee", 403), ("manager", 200), ("admin", 200)],
)
def test_team_page_is_for_managers_and_admins(
    client: Client, personas: dict[str, User], persona: str, status: int
) -> None:
    login(client, personas[persona])
    response = client.get(reverse("team"))
    assert response.status_code == status
    if status == 403:
        assert "无权访问" in response.content.decode()


def test_manager_sees_only_their_own_teams_members(
    client: Client, personas: dict[str, User], other_team: object
) -> None:
    from tests.factories import UserFactory

    outsider = UserFactory(username="outsider", display_name="外部销售", team=other_team)
    login(client, personas["manager"])
    body = client.get(reverse("team")).content.decode()
    assert personas["rep"].display_name in body
    assert outsider.display_name not in body


@pytest.mark.parametrize(
    ("persona", "status"),
    [("rep", 302), ("manager", 302), ("committee", 200), ("admin", 200)],
)
def test_only_committee_and_admins_reach_the_admin(
    client: Client, personas: dict[str, User], persona: str, status: int
) -> None:
    login(client, personas[persona])
    response = client.get(reverse("admin:index"))
    assert response.status_code == status


def test_admin_user_and_team_pages_work_in_chinese(
    client: Client, personas: dict[str, User]
) -> None:
    login(client, personas["admin"])
    for url in [
        reverse("admin:crm_user_changelist"),
        reverse("admin:crm_team_changelist"),
        reverse("admin:crm_user_change", args=[personas["rep"].pk]),
        reverse("admin:crm_team_add"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert "用户" in client.get(reverse("admin:crm_user_changelist")).content.decode()


def test_anonymous_visitors_are_sent_to_the_login_page(client: Client, db: None) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert "登录归属" in page.content.decode()


def test_unknown_page_is_a_translated_404(client: Client, rep: User) -> None:
    login(client, rep)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "页面不存在" in response.content.decode()


def test_language_switch_sticks_to_the_user(client: Client, rep: User) -> None:
    login(client, rep)
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302
    rep.refresh_from_db()
    assert rep.language == "en"
    # A fresh browser (no cookie) still gets English once the user signs in.
    fresh = Client()
    login(fresh, rep)
    body = fresh.get("/").content.decode()
    assert "Sales rep home" in body
    assert 'lang="en"' in body


def test_language_switch_refuses_unknown_languages(client: Client, rep: User) -> None:
    login(client, rep)
    response = client.post(reverse("set_language"), {"language": "xx", "next": "/"}, follow=True)
    assert "不支持的语言" in response.content.decode()
    rep.refresh_from_db()
    assert rep.language == "zh-hans"


def test_language_switch_ignores_foreign_redirects(client: Client, rep: User) -> None:
    login(client, rep)
    response = client.post(
        reverse("set_language"), {"language": "en", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_password_change_page(client: Client, rep: User) -> None:
    login(client, rep)
    assert client.get(reverse("password_change")).status_code == 200
