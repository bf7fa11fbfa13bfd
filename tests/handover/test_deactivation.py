"""Invariant 5: a user who still owns customers cannot be deactivated — not by the service,
not in the admin (form, save, bulk actions). The message points to the handover."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from crm import services as crm_services
from crm.models import Customer, EmploymentState, User
from tests.conftest import login
from tests.factories import TEST_PASSWORD, CustomerFactory, UserFactory


@pytest.fixture
def superuser(db: None) -> User:
    user = UserFactory(username="root", role="admin")
    user.is_superuser = True
    user.is_staff = True
    user.save(update_fields=["is_superuser", "is_staff"])
    return user


@pytest.fixture
def owned(rep: User, global_pool_policy: Any) -> Customer:
    return CustomerFactory(owner=rep)


def test_the_service_refuses_while_owning(rep: User, owned: Customer) -> None:
    with pytest.raises(crm_services.UserStillOwnsCustomers) as caught:
        crm_services.user_deactivate(actor=None, user=rep, departed=True)
    assert "离职交接" in caught.value.message or "handover" in caught.value.message
    rep.refresh_from_db()
    assert rep.is_active and rep.state == EmploymentState.ACTIVE


def test_the_service_deactivates_once_nothing_is_owned(rep: User) -> None:
    crm_services.user_deactivate(actor=None, user=rep, departed=True)
    rep.refresh_from_db()
    assert (rep.is_active, rep.state) == (False, EmploymentState.DEPARTED)
    client = Client()
    client.post(reverse("login"), {"username": "rep", "password": TEST_PASSWORD})
    assert "_auth_user_id" not in client.session


def _change_data(user: User, **overrides: Any) -> dict[str, Any]:
    data = {
        "username": user.username,
        "display_name": user.display_name,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "phone": "",
        "team": user.team_id or "",
        "role": user.role,
        "state": user.state,
        "language": user.language,
        "is_active": "on" if user.is_active else "",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("overrides", [{"is_active": ""}, {"state": "departed", "is_active": ""}])
def test_the_admin_form_refuses_with_a_pointer_to_the_handover(
    client: Client, superuser: User, rep: User, owned: Customer, overrides: dict[str, str]
) -> None:
    login(client, superuser)
    url = reverse("admin:crm_user_change", args=[rep.pk])
    response = client.post(url, _change_data(rep, **overrides))
    assert response.status_code == 200  # the form again, with the error
    assert "离职交接" in response.content.decode()
    rep.refresh_from_db()
    assert rep.is_active and rep.state == EmploymentState.ACTIVE


def test_the_admin_form_deactivates_who_owns_nothing(
    client: Client, superuser: User, rep: User
) -> None:
    login(client, superuser)
    url = reverse("admin:crm_user_change", args=[rep.pk])
    response = client.post(url, _change_data(rep, is_active="", state="departed"))
    assert response.status_code == 302
    rep.refresh_from_db()
    assert (rep.is_active, rep.state) == (False, EmploymentState.DEPARTED)


def test_save_model_blocks_even_if_the_form_was_bypassed(
    superuser: User, rep: User, owned: Customer, rf: Any
) -> None:
    from django.contrib.admin.sites import site
    from django.contrib.messages.storage.fallback import FallbackStorage

    admin = site._registry[get_user_model()]
    request = rf.post("/")
    request.user = superuser
    request.session = {}
    request._messages = FallbackStorage(request)
    rep.is_active = False
    rep.state = EmploymentState.DEPARTED
    admin.save_model(request, rep, form=None, change=True)
    rep.refresh_from_db()
    assert rep.is_active and rep.state == EmploymentState.ACTIVE
    assert any("离职交接" in str(m) for m in request._messages)


@pytest.mark.parametrize("action", ["deactivate_users", "mark_departed"])
def test_bulk_actions_refuse_owners_and_deactivate_the_others(
    client: Client, superuser: User, rep: User, second_rep: User, owned: Customer, action: str
) -> None:
    login(client, superuser)
    response = client.post(
        reverse("admin:crm_user_changelist"),
        {"action": action, "_selected_action": [rep.pk, second_rep.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "离职交接" in response.content.decode()
    rep.refresh_from_db()
    second_rep.refresh_from_db()
    assert rep.is_active
    assert not second_rep.is_active
    if action == "mark_departed":
        assert second_rep.state == EmploymentState.DEPARTED


def test_a_crm_administrator_cannot_deactivate_a_superuser(
    superuser: User, crm_admin: User, client: Client
) -> None:
    with pytest.raises(crm_services.UserError):
        crm_services.user_deactivate(actor=crm_admin, user=superuser)
    login(client, crm_admin)
    client.post(
        reverse("admin:crm_user_changelist"),
        {"action": "deactivate_users", "_selected_action": [superuser.pk]},
    )
    superuser.refresh_from_db()
    assert superuser.is_active
    crm_services.user_deactivate(actor=superuser, user=superuser)  # a superuser may
    superuser.refresh_from_db()
    assert not superuser.is_active
