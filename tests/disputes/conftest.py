"""Fixtures of the disputes suite: two parties in two teams (each with a manager), a
committee of three with a chair, customers on both sides, uploads stored in a temp dir."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm.models import Customer, Role, Team, User
from disputes import services
from disputes.models import CommitteeMembership, Dispute, DisputeKind
from tests.factories import CustomerFactory, UserFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


@pytest.fixture(autouse=True)
def dispute_settings(settings: Any, tmp_path: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.DISPUTE_QUORUM = 2
    settings.DISPUTE_MAJORITY = 0.5


@pytest.fixture
def other_manager(other_team: Team) -> User:
    user = UserFactory(
        username="othermgr", display_name="赵经理", role=Role.MANAGER, team=other_team
    )
    other_team.manager = user
    other_team.save(update_fields=["manager"])
    return user


@pytest.fixture
def claimant(other_team: Team, other_manager: User) -> User:
    """The rep who files (in the other team, so that the two sides have two managers)."""
    return UserFactory(username="claimant", display_name="刘洋", role=Role.REP, team=other_team)


@pytest.fixture
def committee(committee_member: User) -> list[User]:
    """Three members; the first is the chair."""
    members = [
        committee_member,
        UserFactory(username="zhou", display_name="周委员", role=Role.COMMITTEE),
        UserFactory(username="wu", display_name="吴委员", role=Role.COMMITTEE),
    ]
    CommitteeMembership.objects.create(user=members[0], is_chair=True)
    for member in members[1:]:
        CommitteeMembership.objects.create(user=member)
    return members


@pytest.fixture
def contested(rep: User, global_pool_policy: Any) -> Customer:
    """A customer owned by `rep` (the respondent)."""
    return CustomerFactory(owner=rep, display_name="上海云帆信息技术有限公司")


@pytest.fixture
def first_contact_case(claimant: User, contested: Customer, committee: list[User]) -> Dispute:
    return services.dispute_file(
        actor=claimant,
        customer=contested,
        kind=DisputeKind.FIRST_CONTACT,
        statement="我三周前就拜访过他们的采购。",
    )


@pytest.fixture
def pair(rep: User, claimant: User, global_pool_policy: Any) -> tuple[Customer, Customer]:
    """Two records of one company: the respondent's (entered first) and the claimant's."""
    first = CustomerFactory(owner=rep, display_name="杭州青禾生物科技有限公司")
    second = CustomerFactory(owner=claimant, display_name="杭州青禾生物技术有限公司")
    return first, second


@pytest.fixture
def same_company_case(
    claimant: User, pair: tuple[Customer, Customer], committee: list[User]
) -> Dispute:
    first, second = pair
    return services.dispute_file(
        actor=claimant,
        customer=second,
        other_customer=first,
        kind=DisputeKind.SAME_COMPANY,
        statement="两条记录是同一家公司。",
    )


def png(name: str = "photo.png", size: int = 0) -> SimpleUploadedFile:
    content = PNG + (b"\x00" * size)
    return SimpleUploadedFile(name, content, content_type="image/png")


def pdf(name: str = "contract.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PDF, content_type="application/pdf")
