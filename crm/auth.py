"""Authentication backends."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

from crm.models import User
from crm.rows import RowLoader

_users = RowLoader(User)


class ModelBackend(DjangoModelBackend):
    """Django's, reading the signed-in user of every request by a statement composed once
    (crm.rows) rather than an ORM query built and compiled on each request."""

    def get_user(self, user_id: Any) -> User | None:
        user = _users.get(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
