"""factory_boy factories shared by every test suite."""

from __future__ import annotations

from typing import Any

import factory

from crm import services
from crm.models import Customer, Role, Team, User

TEST_PASSWORD = "test-password-Guishu-1"


class TeamFactory(factory.django.DjangoModelFactory[Team]):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"测试团队{n}")


class UserFactory(factory.django.DjangoModelFactory[User]):
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


# Trade-name syllables chosen so that generated names never look alike to the duplicate check.
_TRADE_SYLLABLES = "华瑞鼎盛嘉禾恒泰明德安康永利博远金石青松星海天工"


def _distinct_trade_name(n: int) -> str:
    """A 4-character trade name that differs from every other n's in at least three places
    (the coefficients are coprime with the alphabet size)."""
    base = len(_TRADE_SYLLABLES)
    a, b = divmod(n % (base * base), base)
    c = (a + 5 * b + 7) % base
    d = (7 * a + b + 11) % base
    return _TRADE_SYLLABLES[a] + _TRADE_SYLLABLES[b] + _TRADE_SYLLABLES[c] + _TRADE_SYLLABLES[d]


_CUSTOMER_SERVICE_FIELDS = (
    "display_name",
    "legal_name",
    "credit_code",
    "address",
    "province",
    "city",
    "phone",
    "email",
    "industry",
    "size_band",
    "value_tier",
    "lifecycle",
    "source",
    "external_ref",
    "owner",
    "confirmed_distinct",
    "allow_possible_duplicates",
)


class CustomerFactory(factory.django.DjangoModelFactory[Customer]):
    """A customer created through `services.customer_create`, so identity keys are consistent.

    Fields the service does not take (stage, last_follow_up_at, created_at, ...) are written
    afterwards with a plain UPDATE: tests only.
    """

    class Meta:
        model = Customer
        skip_postgeneration_save = True

    display_name = factory.Sequence(lambda n: f"{_distinct_trade_name(n)}科技有限公司")
    owner = None

    @classmethod
    def _create(cls, model_class: type[Customer], *args: Any, **kwargs: Any) -> Customer:
        service_kwargs = {k: kwargs.pop(k) for k in _CUSTOMER_SERVICE_FIELDS if k in kwargs}
        service_kwargs.setdefault("allow_possible_duplicates", True)
        owner = service_kwargs.pop("owner", None) or kwargs.pop("owner", None)
        actor = kwargs.pop("actor", None) or owner
        customer = services.customer_create(actor=actor, **service_kwargs)
        if owner is not None:
            # Through the ownership writer's core (no cap check: tests build big books).
            from ownership.models import EventKind
            from ownership.services import _change_owner

            _change_owner(
                customer_id=customer.pk,
                to_owner=owner,
                kind=EventKind.REGISTERED,
                reason="test",
                actor=owner,
            )
            customer.refresh_from_db()
        if kwargs:
            model_class.objects.filter(pk=customer.pk).update(**kwargs)
            customer.refresh_from_db()
        return customer


def credit_code_for(n: int, division: str = "110108") -> str:
    """A valid unified social credit code (right check character) unique per `n`."""
    from crm.identity.credit import CREDIT_CODE_ALPHABET, credit_code_check_char

    body = ""
    value = n
    for _position in range(9):
        value, digit = divmod(value, len(CREDIT_CODE_ALPHABET))
        body = CREDIT_CODE_ALPHABET[digit] + body
    first17 = f"91{division}{body}"
    return first17 + credit_code_check_char(first17)
