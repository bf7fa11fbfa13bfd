"""Every URL × every persona: nobody reaches another rep's customer, and no page, fragment
or export shows its contact details. A URL without an entry in MATRIX fails the test, so new
pages must say how they are protected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from crm import services as crm_services
from crm.models import Customer, Role, Team, User
from ownership.services import ownership_register
from tests.conftest import login
from tests.factories import TeamFactory, UserFactory

# How each named URL is reached: "customer" takes the victim customer's pk; "plain" takes
# no argument; "public" needs no login; "skip" is explained.
MATRIX: dict[str, str] = {
    "home": "plain",
    "notification_list": "plain",
    "notification_read": "plain",
    "team": "plain",
    "healthz": "public",
    "set_language": "public",
    "login": "public",
    "logout": "skip",  # ends the session under test; covered by the login tests
    "password_change": "plain",
    "password_change_done": "plain",
    "customer_list": "plain",
    "customer_duplicate_check": "check",
    "customer_detail": "customer",
    "customer_edit": "customer",
    "customer_contact_add": "customer",
    "customer_follow_up_add": "customer",
    "customer_ownership": "customer",
    "customer_sharing": "customer",
    "customer_release": "customer",
    "register": "plain",
    "pool": "plain",
    "pool_claim": "plain",
}

SECRETS = ["机密联系人", "13912345678", "机密备注内容", "知春路甲48号", "010-62345678"]


def _named_patterns(
    resolver: URLResolver | None = None, namespace: str = ""
) -> Iterator[tuple[str, URLPattern]]:
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue  # the admin has its own permission tests
            yield from _named_patterns(pattern, pattern.namespace or namespace)
        elif pattern.name:
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), pattern


def test_every_url_has_a_matrix_entry() -> None:
    missing = sorted(name for name, _pattern in _named_patterns() if name not in MATRIX)
    assert missing == [], f"add these URLs to the permission matrix: {missing}"


@pytest.fixture
def victim(rep: User) -> Customer:
    customer = crm_services.customer_create(
        actor=rep,
        display_name="北京机密科技有限公司",
        address="北京市海淀区知春路甲48号",
        phone="010-62345678",
    )
    ownership_register(actor=rep, customer=customer)
    crm_services.contact_add(actor=rep, customer=customer, name="机密联系人", mobile="13912345678")
    crm_services.customer_update(actor=rep, customer=customer, notes="机密备注内容")
    return customer


@pytest.fixture
def outsiders(personas: dict[str, User], other_team: Team) -> dict[str, User]:
    """Everyone who must not see the rep's customer."""
    outsider_manager = UserFactory(username="outmgr", role=Role.MANAGER, team=other_team)
    other_team.manager = outsider_manager
    other_team.save(update_fields=["manager"])
    return {
        "second_rep": personas["second_rep"],
        "committee": personas["committee"],
        "outsider_rep": UserFactory(username="outrep", role=Role.REP, team=other_team),
        "outsider_manager": outsider_manager,
        "nested_team_rep": UserFactory(
            username="nested", role=Role.REP, team=TeamFactory(name="下级组", parent=other_team)
        ),
    }


def _assert_no_secret(body: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in body, f"{where} shows {secret}"


@pytest.mark.parametrize("method", ["get", "post"])
def test_outsiders_never_reach_the_customer(
    client: Client, victim: Customer, outsiders: dict[str, User], method: str
) -> None:
    customer_urls = [name for name, kind in MATRIX.items() if kind == "customer"]
    for persona, user in outsiders.items():
        client.logout()
        login(client, user)
        for name in customer_urls:
            url = reverse(name, args=[victim.pk])
            response = getattr(client, method)(url, {"reason": "x", "display_name": "改名"})
            where = f"{method.upper()} {url} as {persona}"
            # 405: the page takes no POST at all.
            assert response.status_code in (403, 404, 405), f"{where}: {response.status_code}"
            _assert_no_secret(response.content.decode(), where)
    victim.refresh_from_db()
    assert victim.display_name == "北京机密科技有限公司"
    assert victim.owner is not None and victim.owner.username == "rep"


def test_no_list_or_fragment_leaks_contact_details(
    client: Client, victim: Customer, outsiders: dict[str, User], personas: dict[str, User]
) -> None:
    everyone = {**outsiders, "manager": personas["manager"], "admin": personas["admin"]}
    for persona, user in everyone.items():
        client.logout()
        login(client, user)
        for name, kind in MATRIX.items():
            if kind == "plain":
                url = reverse(name)
                _assert_no_secret(client.get(url).content.decode(), f"{url} as {persona}")
            elif kind == "check":
                url = reverse(name)
                for query in (
                    {"display_name": "北京机密科技有限公司"},
                    {"phone": "010-62345678"},
                    {"display_name": "机密科技"},
                ):
                    body = client.get(url, query).content.decode()
                    _assert_no_secret(body, f"{url}?{query} as {persona}")


def test_anonymous_visitors_reach_only_public_urls(client: Client, victim: Customer) -> None:
    for name, kind in MATRIX.items():
        if kind in {"public", "skip"}:
            continue
        url = reverse(name, args=[victim.pk]) if kind == "customer" else reverse(name)
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url
