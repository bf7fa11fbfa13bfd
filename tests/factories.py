"""factory_boy factories shared by every test suite."""

from __future__ import annotations

from typing import Any

import factory

from crm import services
from crm.models import Role, Team, User

TEST_PASSWORD = "test-password-Guishu-1"


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"测试团队{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Sequence(lambda n: f"测试用户{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    role = Role.REP

    @classmethod
    def _create(cls, model_class: type[User], *args: Any, **kwargs: Any) -> User:
        # Through the service, so groups and staff access match the role as in production.
        return services.user_create(
            actor=None,
            username=kwargs["username"],
            password=kwargs.pop("password", TEST_PASSWORD),
            role=kwargs.get("role", Role.REP),
            team=kwargs.get("team"),
            display_name=kwargs.get("display_name", ""),
            email=kwargs.get("email", ""),
            language=kwargs.get("language", "zh-hans"),
        )
