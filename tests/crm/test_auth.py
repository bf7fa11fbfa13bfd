"""The signed-in user of every request is read by crm.auth's backend: the same user the ORM
reads, and nobody once deactivated."""

from __future__ import annotations

import pytest
from django.test import Client

from crm.auth import ModelBackend
from crm.models import User

pytestmark = pytest.mark.django_db


def test_get_user_reads_the_user_as_the_orm_does(rep: User) -> None:
    user = ModelBackend().get_user(rep.pk)
    assert user is not None
    expected = User.objects.get(pk=rep.pk)
    for field in User._meta.concrete_fields:
        assert getattr(user, field.attname) == getattr(expected, field.attname), field.name


def test_an_inactive_or_unknown_user_is_nobody(rep: User) -> None:
    User.objects.filter(pk=rep.pk).update(is_active=False)
    assert ModelBackend().get_user(rep.pk) is None
    assert ModelBackend().get_user(-1) is None


def test_signing_in_by_password_and_staying_signed_in(rep: User) -> None:
    rep.set_password("a-long-password-2026")
    rep.save(update_fields=["password"])
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": rep.username, "password": "a-long-password-2026"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_backend"] == "crm.auth.ModelBackend"
    assert client.get("/").status_code == 200
    User.objects.filter(pk=rep.pk).update(is_active=False)
    # Deactivated: the very next request is anonymous again (the login page).
    assert client.get("/").status_code == 302
