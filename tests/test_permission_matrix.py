"""Every URL × every persona: nobody reaches another rep's customer, and no page, fragment
or export shows its contact details. A URL without an entry in MATRIX fails the test, so new
pages must say how they are protected."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db.models import Model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from crm import services as crm_services
from crm.models import Customer, Role, Team, User
from ownership.services import ownership_register
from tests.conftest import login
from tests.factories import TEST_PASSWORD, TeamFactory, UserFactory

# How each named URL is reached: "customer" takes the victim customer's pk; "plain" takes
# no argument; "public" needs no login; "skip" is explained.
MATRIX: dict[str, str] = {
    "home": "plain",
    "import_list": "plain",
    "import_job": "import_job",
    "import_job_progress": "import_job",
    "import_job_confirm": "import_job",
    "import_job_errors": "import_job",
    "notification_list": "plain",
    "notification_read": "plain",
    "notification_badge": "plain",
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
    "review_run_list": "plain",
    "review_run_start": "plain",  # POST only (405 on GET); administrators
    "review_outcomes": "plain",
    "review_run_detail": "review_run",  # takes a review run's pk: see the test below
    "policy_what_if": "plain",
    "policy_what_if_apply": "plain",  # POST only; administrators
    # Territories (ownership app): managers read theirs; the rest is for administrators
    "territory_mine": "plain",
    "territory_simulate": "plain",
    "realignment_preview": "plain",
    "realignment_export": "plain",
    "realignment_confirm": "plain",  # POST only; administrators
    "realignment_apply": "plain",  # POST only; administrators
    "realignment_exceptions": "plain",
    "realignment_exception_clear": "plain",  # POST only; administrators
    "funnel_report": "plain",
    "funnel_export": "plain",
    "funnel_snapshot_take": "plain",  # POST only; managers and administrators
    # Reassignment requests and allocation (allocation app)
    "customer_transfer": "customer",
    "registration_transfer": "registration",  # the rep's own collision record: see below
    "request_list": "plain",
    "request_queue": "plain",
    "request_bulk_approve": "plain",  # POST only; managers and administrators
    "request_detail": "request",  # takes a reassignment request's pk: see below
    "request_decide": "request",
    "request_withdraw": "request",
    # Registrations outside the rep's territory (allocation app)
    "registration_outcome": "held_registration",  # the rep's own: see below
    "registration_queue": "plain",  # managers (their territories) and administrators
    "registration_decide": "held_registration",  # POST only
    "allocation_pool": "plain",
    "allocation_suggest": "plain",
    "allocation_one": "plain",  # POST only; managers and administrators
    "allocation_bulk": "plain",  # POST only; managers and administrators
    "team_overview": "plain",
    # Disputes (disputes app); the committee's queue is in the admin
    "dispute_list": "plain",
    "dispute_file": "plain",  # ?customer= must be one the rep may dispute: see below
    "dispute_report": "plain",  # committee and administrators
    "dispute_detail": "dispute",  # takes a dispute's pk: see below
    "dispute_statement": "dispute",
    "dispute_withdraw": "dispute",
    "dispute_appeal": "dispute",
    "dispute_attachment": "dispute_attachment",  # takes an attachment's pk: see below
    # Departure handover (handover app)
    "handover_departure_list": "plain",
    "handover_departure_new": "plain",  # the rep chooser; reps and committee get 404
    "handover_departure_detail": "departure",  # takes a departure's pk: see below
    "handover_departure_reassign": "departure",
    "handover_departure_report": "departure",
    "handover_my_tasks": "plain",
    "handover_incoming": "plain",
    "handover_incoming_accept": "plain",  # POST only; the successor's own tasks
    "handover_task_detail": "task",  # takes a handover task's pk: see below
    "handover_task_accept": "task",
    "handover_task_refuse": "task",
    "handover_task_done": "task",
    "handover_task_confirm": "task",
    "handover_task_send_back": "task",
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
        args = {
            "customer": [victim.pk],
            "review_run": [1],
            "request": [1],
            "registration": [1],
            "held_registration": [1],
            "dispute": [1],
            "dispute_attachment": [1],
            "departure": [1],
            "task": [1],
            "import_job": [1],
        }.get(kind, [])
        url = reverse(name, args=args)
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_review_run_pages_show_only_the_viewers_teams(
    client: Client, victim: Customer, outsiders: dict[str, User], personas: dict[str, User]
) -> None:
    """A review run's page (kind "review_run") is for managers and administrators; the
    customers behind its figures are shown only to the managers of their team."""
    from django.utils import timezone

    from ownership.models import ReviewAction, ReviewOutcome, ReviewRun

    victim.refresh_from_db()
    now = timezone.now()
    run = ReviewRun.objects.create(started_at=now, as_of=now, status="done")
    ReviewOutcome.objects.create(
        run=run,
        action=ReviewAction.WARNED,
        customer=victim,
        rep=victim.owner,
        team=victim.owner.team,
        detail="x",
    )
    urls = [reverse(name, args=[run.pk]) for name, kind in MATRIX.items() if kind == "review_run"]
    urls += [reverse("review_outcomes") + "?action=warned"]
    for persona, user in outsiders.items():
        client.logout()
        login(client, user)
        for url in urls:
            response = client.get(url + ("&" if "?" in url else "?") + "action=warned")
            where = f"{url} as {persona}"
            if user.role == Role.MANAGER:
                assert response.status_code == 200, where
                assert victim.display_name not in response.content.decode(), where
            else:
                assert response.status_code in (403, 404), where
            _assert_no_secret(response.content.decode(), where)
    for persona in ("manager", "admin"):
        client.logout()
        login(client, personas[persona])
        for url in urls:
            body = client.get(url + ("&" if "?" in url else "?") + "action=warned").content
            assert victim.display_name in body.decode(), f"{url} as {persona}"


def test_outsiders_never_reach_a_reassignment_request(
    client: Client, victim: Customer, outsiders: dict[str, User], personas: dict[str, User]
) -> None:
    """A request (kind "request") is seen by the people it names and the managers of both
    teams; a collision record (kind "registration") only by the rep who made it. Nobody
    else gets more than 403/404, and nobody's approval or withdrawal goes through."""
    from allocation.models import ReassignmentRequest, Registration
    from allocation.services import request_offer

    team = personas["rep"].team
    colleague = UserFactory(username="colleague", role=Role.REP, team=team)
    transfer = request_offer(
        actor=personas["rep"], customer=victim, to_rep=colleague, reason="行业更匹配"
    )
    collision = Registration.objects.create(
        rep=colleague,
        submitted_at=victim.created_at,
        outcome="collision",
        customer=victim,
        entered_name=victim.display_name,
    )
    urls = [reverse(name, args=[transfer.pk]) for name, kind in MATRIX.items() if kind == "request"]
    urls += [
        reverse(name, args=[collision.pk])
        for name, kind in MATRIX.items()
        if kind == "registration"
    ]
    data = {"action": "approve", "comment": "x", "reason": "x", "evidence": "x"}
    for persona, user in outsiders.items():
        client.logout()
        login(client, user)
        for url in urls:
            for method in ("get", "post"):
                response = getattr(client, method)(url, data)
                where = f"{method.upper()} {url} as {persona}"
                assert response.status_code in (403, 404, 405), f"{where}: {response.status_code}"
                _assert_no_secret(response.content.decode(), where)
    transfer.refresh_from_db()
    assert transfer.state == "pending" and transfer.source_approved_at is None
    assert ReassignmentRequest.objects.count() == 1
    victim.refresh_from_db()
    assert victim.owner == personas["rep"]
    # Those it concerns see the request page without the customer's contact details.
    for user in (colleague, personas["manager"], personas["admin"]):
        client.logout()
        login(client, user)
        response = client.get(reverse("request_detail", args=[transfer.pk]))
        assert response.status_code == 200
        if user == colleague:
            _assert_no_secret(response.content.decode(), "request page as the receiver")


def test_outsiders_never_reach_a_held_registration(
    client: Client, outsiders: dict[str, User], personas: dict[str, User]
) -> None:
    """A registration a territory held back (kind "held_registration") is read by the rep
    who made it and decided by managers of the responsible team and administrators. Here
    the responsible team is a third one: every outsider gets 403/404, no decision goes
    through, and the awaiting customer's details never show."""
    from allocation.models import Registration
    from allocation.services import RegistrationForm, registration_submit
    from ownership.models import OutOfTerritoryPolicy, RuleSet, Territory
    from ownership.territories.services import rule_set_activate

    south_manager = UserFactory(username="southmgr", role=Role.MANAGER)
    south: Team = TeamFactory(name="华南销售部", manager=south_manager)
    rule_set = RuleSet.objects.create(name="矩阵区域")
    territory = Territory.objects.create(
        rule_set=rule_set,
        name="华南",
        division_codes=["44"],
        out_of_territory=OutOfTerritoryPolicy.APPROVAL,
    )
    territory.teams.set([south])
    rule_set_activate(actor=personas["admin"], rule_set=rule_set)
    result = registration_submit(
        actor=personas["rep"],
        form=RegistrationForm(
            display_name="深圳机密科技有限公司",
            address="广东省深圳市南山区知春路甲48号",
            phone="010-62345678",
            first_contact_name="机密联系人",
            first_contact_phone="13912345678",
        ),
    )
    held = result.registration
    assert held is not None and held.outcome == "pending"
    urls = [reverse(n, args=[held.pk]) for n, k in MATRIX.items() if k == "held_registration"]
    for persona, user in outsiders.items():
        client.logout()
        login(client, user)
        for url in urls:
            for method in ("get", "post"):
                response = getattr(client, method)(url, {"action": "approve", "comment": "x"})
                where = f"{method.upper()} {url} as {persona}"
                assert response.status_code in (403, 404, 405), f"{where}: {response.status_code}"
                _assert_no_secret(response.content.decode(), where)
        queue = client.get(reverse("registration_queue")).content.decode()
        assert "深圳机密科技有限公司" not in queue, persona
    held.refresh_from_db()
    assert held.outcome == "pending" and held.ledger_event is None
    assert Registration.objects.get(pk=held.pk).customer.owner is None  # type: ignore[union-attr]
    # Those it concerns: the rep reads it, the south manager and administrators decide.
    client.logout()
    login(client, personas["rep"])
    assert client.get(reverse("registration_outcome", args=[held.pk])).status_code == 200
    for user in (south_manager, personas["admin"]):
        client.logout()
        login(client, user)
        assert "深圳机密科技有限公司" in client.get(reverse("registration_queue")).content.decode()


def test_outsiders_never_reach_a_departure_or_its_tasks(
    client: Client, victim: Customer, outsiders: dict[str, User], personas: dict[str, User]
) -> None:
    """A departure's plan (kind "departure") is for the managers of the leaver's team and
    administrators; a task (kind "task") also for its leaver and its successor. Everyone
    else gets 403/404 (a rep who is neither: 404), and no step of theirs goes through."""
    from datetime import timedelta

    from django.utils import timezone

    from handover.models import Departure, HandoverTask
    from handover.services import departure_record

    colleague = UserFactory(username="successor", role=Role.REP, team=personas["rep"].team)
    # At 25% the customer stays with the leaver until a phone introduction is confirmed.
    Customer.objects.filter(pk=victim.pk).update(stage=25)
    departure = departure_record(
        actor=personas["manager"],
        leaver=personas["rep"],
        last_day=timezone.localdate() + timedelta(days=7),
        successor=colleague,
    )
    task = HandoverTask.objects.get(departure=departure)
    urls = [reverse(n, args=[departure.pk]) for n, k in MATRIX.items() if k == "departure"]
    urls += [reverse(n, args=[task.pk]) for n, k in MATRIX.items() if k == "task"]
    data = {"tasks": [task.pk], "successor": outsiders["outsider_rep"].pk, "reason": "x"}
    data |= {"note": "x", "happened_on": timezone.localdate().isoformat()}
    for persona, user in outsiders.items():
        client.logout()
        login(client, user)
        for url in urls:
            for method in ("get", "post"):
                response = getattr(client, method)(url, data)
                where = f"{method.upper()} {url} as {persona}"
                assert response.status_code in (403, 404, 405), f"{where}: {response.status_code}"
                _assert_no_secret(response.content.decode(), where)
        response = client.post(reverse("handover_incoming_accept"), {"tasks": [task.pk]})
        assert response.status_code in (403, 404), persona
    task.refresh_from_db()
    assert task.state == "proposed" and HandoverTask.objects.count() == 1
    assert Departure.objects.get().state == "in_progress"
    victim.refresh_from_db()
    assert victim.owner == personas["rep"]
    # Those it concerns reach the pages.
    for user, names in (
        (personas["manager"], ["handover_departure_detail", "handover_task_detail"]),
        (personas["admin"], ["handover_departure_detail", "handover_task_detail"]),
        (personas["rep"], ["handover_task_detail"]),
        (colleague, ["handover_task_detail"]),
    ):
        client.logout()
        login(client, user)
        for name in names:
            pk = departure.pk if name == "handover_departure_detail" else task.pk
            assert client.get(reverse(name, args=[pk])).status_code == 200, (user, name)
    # The leaver reads the plan only through their own task list.
    client.logout()
    login(client, personas["rep"])
    assert client.get(reverse("handover_departure_detail", args=[departure.pk])).status_code == 404


def test_outsiders_never_reach_a_dispute(
    client: Client, victim: Customer, outsiders: dict[str, User], personas: dict[str, User]
) -> None:
    """A dispute (kind "dispute") is seen by its parties, their managers and administrators;
    the committee works it in the admin. An attachment (kind "dispute_attachment") is read by
    the side that uploaded it and those managers. Everyone else gets 404, no POST goes
    through, and nobody can file about a customer they never met."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from allocation.models import Registration
    from disputes.models import Dispute, DisputeAttachment
    from disputes.services import dispute_file

    claimant = UserFactory(username="claimant", role=Role.REP, team=TeamFactory(name="第三组"))
    Registration.objects.create(
        rep=claimant,
        submitted_at=timezone.now(),
        outcome="collision",
        customer=victim,
        entered_name=victim.display_name,
    )
    case = dispute_file(
        actor=claimant,
        customer=victim,
        kind="first_contact",
        statement="我先联系的",
        attachments=[SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 32)],
    )
    attachment = DisputeAttachment.objects.get(dispute=case)
    urls = [reverse(name, args=[case.pk]) for name, kind in MATRIX.items() if kind == "dispute"]
    urls += [
        reverse(name, args=[attachment.pk])
        for name, kind in MATRIX.items()
        if kind == "dispute_attachment"
    ]
    data = {"text": "x", "note": "x", "statement": "x", "kind": "first_contact"}
    for persona, user in outsiders.items():
        client.logout()
        login(client, user)
        for url in urls:
            for method in ("get", "post"):
                response = getattr(client, method)(url, data)
                where = f"{method.upper()} {url} as {persona}"
                assert response.status_code in (404, 405), f"{where}: {response.status_code}"
                _assert_no_secret(response.content.decode(), where)
        filing = client.get(reverse("dispute_file"), {"customer": victim.pk})
        assert filing.status_code in (403, 404), persona
    case.refresh_from_db()
    assert case.state == "filed" and case.statements.count() == 1
    assert Dispute.objects.count() == 1
    # The parties see the case page, the claimant without the customer's contact details.
    for user in (claimant, personas["rep"], personas["manager"], personas["admin"]):
        client.logout()
        login(client, user)
        response = client.get(reverse("dispute_detail", args=[case.pk]))
        assert response.status_code == 200
        _assert_no_secret(response.content.decode(), f"dispute page as {user}")


def test_outsiders_never_reach_an_import_job(
    client: Client, personas: dict[str, User], outsiders: dict[str, User]
) -> None:
    """A job holds a file of customers: only its uploader (and administrators) may open it."""
    from django.core.files.base import ContentFile

    from crm.models import ImportJob

    job = ImportJob.objects.create(created_by=personas["manager"], original_name="客户.csv")
    job.file.save("jobs.csv", ContentFile("名称\n北京机密科技有限公司\n".encode()), save=True)
    urls = [reverse(name, args=[job.pk]) for name, kind in MATRIX.items() if kind == "import_job"]
    for persona, user in {**outsiders, "rep": personas["rep"]}.items():
        client.logout()
        login(client, user)
        for url in urls:
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                where = f"{method.upper()} {url} as {persona}"
                assert response.status_code in (403, 404, 405), f"{where}: {response.status_code}"
                assert "北京机密科技" not in response.content.decode(), where


# --- The admin -------------------------------------------------------------------------------
# Every admin URL pattern, read from the URL resolver, is requested as every persona with
# objects that belong to someone else. Only staff roles (the committee, administrators) get
# past the admin's door; inside, each ModelAdmin decides. A pattern without an expectation
# here fails the test.

VIEW = frozenset({"changelist", "change", "history"})
EDIT = VIEW | {"save"}
ALL = EDIT | {"add", "delete"}
NONE: frozenset[str] = frozenset()
STANDARD_VIEWS = ("changelist", "add", "change", "history", "delete")

# Per registered ModelAdmin: the standard views the committee and the CRM administrators
# may open (a GET answers 200), and "save" where a POST to the change page may save.
# Anonymous visitors, reps and managers reach none of them.
ADMIN_MODELS: dict[str, dict[str, frozenset[str]]] = {
    "auth.group": {"committee": NONE, "admin": NONE},
    "django_celery_beat.periodictask": {"committee": NONE, "admin": EDIT},
    "django_celery_beat.clockedschedule": {"committee": NONE, "admin": NONE},
    "django_celery_beat.crontabschedule": {"committee": NONE, "admin": NONE},
    "django_celery_beat.solarschedule": {"committee": NONE, "admin": NONE},
    "django_celery_beat.intervalschedule": {"committee": NONE, "admin": NONE},
    "axes.accessattempt": {"committee": NONE, "admin": NONE},
    "axes.accesslog": {"committee": NONE, "admin": NONE},
    "axes.accessfailurelog": {"committee": NONE, "admin": NONE},
    # The role table (crm.roles) lets the committee read people and teams, read-only.
    "crm.team": {"committee": VIEW, "admin": ALL},
    "crm.user": {"committee": VIEW, "admin": EDIT | {"add"}},
    "ownership.poolpolicy": {"committee": NONE, "admin": ALL},
    "ownership.ownershipevent": {"committee": NONE, "admin": VIEW},
    # Territory rule sets: drafts (as the fixture's) are edited; realignments are records.
    "ownership.ruleset": {"committee": NONE, "admin": ALL},
    "ownership.territory": {"committee": NONE, "admin": ALL},
    "ownership.realignment": {"committee": NONE, "admin": VIEW},
    "allocation.registration": {"committee": NONE, "admin": VIEW},
    "allocation.reassignmentrequest": {"committee": NONE, "admin": VIEW},
    "allocation.allocationbatch": {"committee": NONE, "admin": VIEW},
    "allocation.poolcustomer": {"committee": NONE, "admin": VIEW},
    # The committee's workplace: every case, read-only; votes go through the custom views.
    "disputes.dispute": {"committee": VIEW, "admin": VIEW},
    "disputes.committeemembership": {"committee": VIEW, "admin": ALL},
    "handover.departure": {"committee": NONE, "admin": VIEW},
    "handover.handovertask": {"committee": NONE, "admin": VIEW},
}

# Every other admin URL: the staff personas that may open it, or a kind with its own rule
# ("public", "logout", "autocomplete", "view_on_site", "app_list", "catch_all").
ADMIN_VIEWS: dict[str, str] = {
    "index": "committee admin",
    "login": "public",
    "logout": "logout",  # POST only; a GET never signs anyone out or shows anything
    "password_change": "committee admin",  # one's own password
    "password_change_done": "committee admin",
    "jsi18n": "committee admin",
    "autocomplete": "autocomplete",  # as the ModelAdmin of the model searched
    "view_on_site": "view_on_site",  # a redirect to the object's own (protected) page
    "app_list": "app_list",  # an app's index: who may open one of its changelists
    "catch_all": "catch_all",  # unknown admin paths: login first, then 404
    "auth_user_password_change": "admin",  # set someone's password: change_user
    "ownership_ruleset_activate": "admin",  # asks for confirmation first
    "ownership_ruleset_overlaps": "admin",
    "ownership_ruleset_activation": "admin",  # progress of a background activation
    "disputes_dispute_vote": "committee admin",  # the services refuse non-members' votes
    "disputes_dispute_chair": "committee admin",  # ... and anyone but the chair
    "disputes_dispute_attachment": "committee admin",
}

# Custom admin actions (POSTed to a changelist): the staff personas offered them. The
# site-wide delete_selected follows the model's "delete" view above.
ADMIN_ACTIONS: dict[str, str] = {
    "django_celery_beat.periodictask.enable_tasks": "admin",
    "django_celery_beat.periodictask.disable_tasks": "admin",
    "django_celery_beat.periodictask.toggle_tasks": "admin",
    "django_celery_beat.periodictask.run_tasks": "admin",
    "axes.accessattempt.cleanup_expired_attempts": "",
    "crm.user.deactivate_users": "admin",
    "crm.user.mark_departed": "admin",
    "allocation.poolcustomer.distribute": "admin",
    "ownership.ruleset.copy_as_draft": "admin",
    "ownership.ruleset.activate": "admin",
    "disputes.dispute.take_under_review": "committee admin",
    "disputes.dispute.refresh_dossier": "committee admin",
    "disputes.dispute.close_cases": "committee admin",
}

ADMIN_PERSONAS = ("anonymous", "rep", "second_rep", "manager", "committee", "admin")
STAFF = ("committee", "admin")


@dataclass(frozen=True)
class AdminUrl:
    """One admin URL pattern: its key in the matrix, and for a ModelAdmin's own patterns
    the model and which of the standard views it is ("redirect": `<pk>/` → change)."""

    key: str
    pattern: URLPattern
    model: str = ""
    view: str = ""
    owner: str = ""  # a custom view of a ModelAdmin: that model (its pk fills the URL)


def _admin_urls() -> list[AdminUrl]:
    from django.contrib import admin

    models = {
        f"{m._meta.app_label}/{m._meta.model_name}/": m._meta.label_lower
        for m in admin.site._registry
    }
    admin_resolver = next(
        p for p in get_resolver().url_patterns if getattr(p, "namespace", "") == "admin"
    )
    found: list[AdminUrl] = []
    for pattern in admin_resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            label = models[str(pattern.pattern)]
            for inner in pattern.url_patterns:
                assert isinstance(inner, URLPattern), inner
                prefix = label.replace(".", "_") + "_"
                name = inner.name or ""
                view = name.removeprefix(prefix) if name.startswith(prefix) else ""
                if view in STANDARD_VIEWS:
                    found.append(AdminUrl(name, inner, label, view))
                elif not name and str(inner.pattern) == "<path:object_id>/":
                    found.append(AdminUrl(f"{label}:redirect", inner, label, "redirect"))
                else:
                    key = name or f"{label}:{inner.pattern}"
                    found.append(AdminUrl(key, inner, owner=label))
        elif pattern.name:
            found.append(AdminUrl(pattern.name, pattern))
        elif str(pattern.pattern) == "(?P<url>.*)$":
            found.append(AdminUrl("catch_all", pattern))
        else:
            found.append(AdminUrl(f"unnamed:{pattern.pattern}", pattern))
    return found


def test_every_admin_url_has_a_matrix_entry() -> None:
    missing = []
    for url in _admin_urls():
        if url.model:
            if url.model not in ADMIN_MODELS:
                missing.append(url.model)
        elif url.key not in ADMIN_VIEWS:
            missing.append(url.key)
    assert sorted(set(missing)) == [], f"add these admin URLs to the matrix: {missing}"
    assert len(_admin_urls()) > 100  # the walk found the ModelAdmins' patterns


def test_every_admin_action_has_a_matrix_entry() -> None:
    from django.contrib import admin

    missing = []
    for model, model_admin in admin.site._registry.items():
        for _func, name, _description in model_admin._get_base_actions():
            key = f"{model._meta.label_lower}.{name}"
            if name != "delete_selected" and key not in ADMIN_ACTIONS:
                missing.append(key)
    assert missing == [], f"add these admin actions to the matrix: {missing}"


@pytest.fixture
def admin_objects(
    victim: Customer, personas: dict[str, User], settings: Any, tmp_path: Any
) -> dict[str, Model]:
    """One object of every model in the admin, each belonging to someone other than the
    persona asking: the rep's customer and its ledger, another rep's collision and
    dispute (with a file), a transfer, a departure, policies, schedules, log rows."""
    from datetime import timedelta

    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    from allocation.models import AllocationBatch, PoolCustomer, Registration
    from allocation.services import request_offer
    from crm.roles import sync_role_groups
    from disputes.models import CommitteeMembership, DisputeAttachment
    from disputes.services import dispute_file
    from handover.models import HandoverTask
    from handover.services import departure_record
    from ownership.models import OwnershipEvent, Realignment, RuleSet, Territory
    from ownership.selectors import global_policy

    settings.MEDIA_ROOT = str(tmp_path / "media")
    rep, manager = personas["rep"], personas["manager"]
    sync_role_groups()
    claimant = UserFactory(username="claimant", role=Role.REP, team=TeamFactory(name="第三组"))
    Registration.objects.create(
        rep=claimant,
        submitted_at=timezone.now(),
        outcome="collision",
        customer=victim,
        entered_name=victim.display_name,
    )
    case = dispute_file(
        actor=claimant,
        customer=victim,
        kind="first_contact",
        statement="我先联系的",
        attachments=[SimpleUploadedFile("证据.png", b"\x89PNG\r\n\x1a\n" + b"0" * 32)],
    )
    CommitteeMembership.objects.create(user=personas["committee"], is_chair=True)
    colleague = UserFactory(username="colleague", role=Role.REP, team=rep.team)
    transfer = request_offer(actor=rep, customer=victim, to_rep=colleague, reason="行业更匹配")
    leaving = crm_services.customer_create(actor=None, display_name="上海离职交接有限公司")
    departing = UserFactory(username="leaving", role=Role.REP, team=rep.team)
    ownership_register(actor=departing, customer=leaving)
    Customer.objects.filter(pk=leaving.pk).update(stage=25)
    departure = departure_record(
        actor=manager,
        leaver=departing,
        last_day=timezone.localdate() + timedelta(days=7),
        successor=colleague,
    )
    rule_set = RuleSet.objects.create(name="华东片区草案", created_by=personas["admin"])
    pool_customer = crm_services.customer_create(actor=None, display_name="苏州公海客户有限公司")
    interval = IntervalSchedule.objects.create(every=10, period="minutes")
    address = {"ip_address": "10.0.0.9", "user_agent": "x", "http_accept": "x"}
    objects: dict[str, Model] = {
        "auth.group": Group.objects.get(name="sales_rep"),
        "django_celery_beat.periodictask": PeriodicTask.objects.create(
            name="矩阵测试任务", task="crm.tasks.noop", interval=interval
        ),
        "django_celery_beat.clockedschedule": ClockedSchedule.objects.create(
            clocked_time=timezone.now()
        ),
        "django_celery_beat.crontabschedule": CrontabSchedule.objects.create(minute="7"),
        "django_celery_beat.solarschedule": SolarSchedule.objects.create(
            event="sunrise", latitude=31.2, longitude=121.5
        ),
        "django_celery_beat.intervalschedule": interval,
        "axes.accessattempt": AccessAttempt.objects.create(
            username="rep", get_data="", post_data="", failures_since_start=1, **address
        ),
        "axes.accesslog": AccessLog.objects.create(username="rep", **address),
        "axes.accessfailurelog": AccessFailureLog.objects.create(username="rep", **address),
        "crm.team": rep.team,
        "crm.user": rep,
        "ownership.poolpolicy": global_policy(),
        "ownership.ownershipevent": OwnershipEvent.objects.filter(customer=victim).first(),
        "ownership.ruleset": rule_set,
        "ownership.territory": Territory.objects.create(rule_set=rule_set, name="江苏"),
        "ownership.realignment": Realignment.objects.create(
            rule_set=rule_set, applied_by=personas["admin"], applied_at=timezone.now()
        ),
        "allocation.registration": Registration.objects.get(rep=claimant),
        "allocation.reassignmentrequest": transfer,
        "allocation.allocationbatch": AllocationBatch.objects.create(
            actor=manager, team=rep.team, method="manual", requested=1, allocated=1
        ),
        "allocation.poolcustomer": PoolCustomer.objects.get(pk=pool_customer.pk),
        "disputes.dispute": case,
        "disputes.committeemembership": CommitteeMembership.objects.get(),
        "handover.departure": departure,
        "handover.handovertask": HandoverTask.objects.get(departure=departure),
        "attachment": DisputeAttachment.objects.get(dispute=case),
        "customer": victim,
    }
    return objects


def _other_peoples_data(objects: dict[str, Model]) -> list[str]:
    """What nobody refused may see: the customer's contact details, its name, the rep's own
    particulars, the dispute's statement and file, the transfer's reason."""
    rep = objects["crm.user"]
    assert isinstance(rep, User)
    return [*SECRETS, "北京机密科技", rep.email, "我先联系的", "证据.png", "行业更匹配"]


def _admin_url_for(url: AdminUrl, objects: dict[str, Model]) -> str:
    """The URL of a pattern with the objects of the fixture filled in."""
    if url.model:
        if url.view in ("changelist", "add"):
            return reverse(f"admin:{url.key}")
        pk = objects[url.model].pk
        if url.view == "redirect":
            return reverse(f"admin:{url.model.replace('.', '_')}_change", args=[pk]).removesuffix(
                "change/"
            )
        return reverse(f"admin:{url.key}", args=[pk])
    if url.key == "catch_all":
        return reverse("admin:index") + "no-such-page/"
    if url.key == "app_list":
        return reverse("admin:app_list", args=["disputes"])
    if url.key == "view_on_site":
        customer = objects["customer"]
        return reverse("admin:view_on_site", args=[_content_type(customer), customer.pk])
    if url.key == "disputes_dispute_attachment":
        return reverse("admin:disputes_dispute_attachment", args=[objects["attachment"].pk])
    # A custom view of a ModelAdmin takes the pk of that model's object, if anything.
    args = [objects[url.owner].pk] if url.owner and url.pattern.pattern.converters else []
    return reverse(f"admin:{url.key}", args=args)


def _body(response: Any) -> str:
    """The text of a response, also of a file download (an attachment)."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return str(response.content.decode(errors="replace"))


def _content_type(obj: Model) -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(obj).pk


def _admin_allowed(url: AdminUrl, persona: str) -> bool:
    """Whether `persona` may open `url` (a GET answering 200)."""
    if url.model:
        if persona not in STAFF:
            return False
        view = "change" if url.view == "redirect" else url.view
        return view in ADMIN_MODELS[url.model][persona]
    kind = ADMIN_VIEWS[url.key]
    if kind == "public":
        return True
    return persona in STAFF and persona in kind.split()


def _login_as(client: Client, users: dict[str, User], persona: str) -> None:
    client.logout()
    if persona != "anonymous":
        login(client, users[persona])


def _assert_refused(response: Any, persona: str, where: str, data: list[str]) -> None:
    """Refused: reps and managers are sent to the admin's login page (anonymous visitors to
    the site's, by LoginRequiredMiddleware; both come back after signing in); staff without
    the permission get 403/404. Nothing of anyone else's is shown."""
    logins = [reverse("admin:login") + "?next=", reverse("login") + "?next="]
    if persona in STAFF:
        assert response.status_code in (403, 404), f"{where}: {response.status_code}"
    else:
        assert response.status_code == 302, f"{where}: {response.status_code}"
        if persona == "anonymous":
            assert response["Location"].startswith(tuple(logins)), where
        else:
            assert response["Location"].startswith(logins[0]), where
    body = _body(response) + response.get("Location", "")
    for item in data:
        assert item not in body, f"{where} shows {item}"


def _fingerprint() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every model in the admin (login bookkeeping aside): a refused request
    must leave all of them as they were."""
    from django.contrib import admin

    rows: dict[str, list[tuple[Any, ...]]] = {}
    for model in admin.site._registry:
        label = model._meta.label_lower
        if label.startswith("axes.") or model._meta.proxy:
            continue
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "last_login"]
        rows[label] = sorted(model.objects.values_list(*fields), key=repr)
    return rows


def test_admin_urls_as_every_persona(
    client: Client,
    personas: dict[str, User],
    admin_objects: dict[str, Model],
    security_log: list[str],
) -> None:
    from django.core.cache import cache

    cache.clear()
    users = personas
    data = _other_peoples_data(admin_objects)
    before = _fingerprint()
    checked = 0
    for persona in ADMIN_PERSONAS:
        _login_as(client, users, persona)
        for url in _admin_urls():
            path = _admin_url_for(url, admin_objects)
            where = f"GET {path} as {persona}"
            kind = "" if url.model else ADMIN_VIEWS[url.key]
            security_log.clear()
            response = client.get(path)
            checked += 1
            if url.view == "redirect" and persona in STAFF:
                # RedirectView: on to the change page, which decides (checked there).
                assert response.status_code == 302, where
                assert response["Location"] == path + "change/", where
            elif kind == "public":
                # The login page; signed-in staff are sent on to the admin's index.
                assert response.status_code == (302 if persona in STAFF else 200), where
                _assert_no_secret(response.content.decode(), where)
            elif kind == "logout":
                assert response.status_code in (302, 405), f"{where}: {response.status_code}"
            elif kind == "autocomplete" and persona in STAFF:
                # Without a model to search: refused (see the autocomplete test below).
                assert response.status_code == 403, where
            elif kind == "view_on_site" and persona in STAFF:
                # Customers have no public page of their own: nothing to redirect to.
                assert response.status_code == 404, where
                _assert_no_secret(response.content.decode(), where)
            elif kind == "app_list" and persona in STAFF:
                # The disputes app here; every app in the test below.
                assert response.status_code == 200, where
            elif kind == "catch_all" and persona in STAFF:
                assert response.status_code == 404, where
            elif _admin_allowed(url, persona):
                assert response.status_code == 200, f"{where}: {response.status_code}"
                if persona == "committee":
                    # The dossier tells who did what when, never the customer's contacts.
                    _assert_no_secret(_body(response), where)
            else:
                _assert_refused(response, persona, where, data)
                if persona != "anonymous":
                    _assert_refusal_logged(security_log, users[persona], path, where)
    assert checked > 600
    assert _fingerprint() == before


@pytest.fixture
def security_log() -> Iterator[list[str]]:
    """The lines of the security log. A handler of its own rather than caplog's: pages that
    load the Celery app (the periodic tasks admin) configure logging again, which removes
    caplog's handler from the root logger."""
    import logging

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("guishu.security")
    handler = Collect(level=logging.WARNING)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def _assert_refusal_logged(lines: list[str], user: User, path: str, where: str) -> None:
    """A refused authorisation leaves a security log line with user, path and time."""
    assert any(
        f" {path} " in line and f"user={user.username}" in line and " at=" in line for line in lines
    ), f"{where}: refusal not logged ({lines})"


def _admin_model_urls(label: str) -> dict[str, str]:
    return {
        view: reverse(f"admin:{label.replace('.', '_')}_{view}") for view in ("changelist", "add")
    }


def test_admin_posts_change_nothing_they_may_not(
    client: Client,
    personas: dict[str, User],
    admin_objects: dict[str, Model],
    security_log: list[str],
) -> None:
    """A POST (with a payload that would pass many forms) to every admin URL a persona may
    not open, and to the change page of every model they may only read: refused, logged,
    and not a row changed anywhere."""
    data = _other_peoples_data(admin_objects)
    payload = {
        "post": "yes",  # a delete page's confirmation
        "name": "改名",
        "display_name": "改名",
        "username": "renamed",
        "is_superuser": "on",
        "is_active": "on",
        "password1": "Ch4nged-Passw0rd!",
        "password2": "Ch4nged-Passw0rd!",
        "outcome": "award",
        "rationale": "x",
        "_save": "1",
    }
    before = _fingerprint()
    posted = 0
    for persona in ADMIN_PERSONAS:
        _login_as(client, personas, persona)
        for url in _admin_urls():
            if url.key in ("login", "logout", "catch_all") or (
                url.model and url.view == "redirect"
            ):
                continue
            if url.owner == "disputes.dispute" and persona in STAFF:
                continue  # voting is what the committee does here: see tests/disputes
            read_only = (
                url.model
                and url.view == "change"
                and persona in STAFF
                and "change" in ADMIN_MODELS[url.model][persona]
                and "save" not in ADMIN_MODELS[url.model][persona]
            )
            if _admin_allowed(url, persona) and not read_only:
                continue
            if not url.model and ADMIN_VIEWS[url.key] != "admin" and persona in STAFF:
                continue  # the kinds with their own rule: read-only pages
            path = _admin_url_for(url, admin_objects)
            where = f"POST {path} as {persona}"
            security_log.clear()
            response = client.post(path, payload)
            posted += 1
            _assert_refused(response, persona, where, data)
            if persona != "anonymous":
                _assert_refusal_logged(security_log, personas[persona], path, where)
    assert posted > 300
    assert _fingerprint() == before


def test_admin_app_indexes(client: Client, personas: dict[str, User]) -> None:
    """An app's admin index opens for whoever may open one of its changelists."""
    from django.contrib import admin

    apps = {m._meta.app_label for m in admin.site._registry}
    for persona in ADMIN_PERSONAS:
        _login_as(client, personas, persona)
        for app in sorted(apps):
            path = reverse("admin:app_list", args=[app])
            response = client.get(path)
            where = f"GET {path} as {persona}"
            allowed = persona in STAFF and any(
                "changelist" in ADMIN_MODELS[label][persona]
                for label in ADMIN_MODELS
                if label.startswith(app + ".")
            )
            if allowed:
                assert response.status_code == 200, where
            else:
                _assert_refused(response, persona, where, [])


def test_admin_autocomplete(
    client: Client, personas: dict[str, User], admin_objects: dict[str, Model]
) -> None:
    """Every autocomplete field of the admin answers only those who may read the model it
    searches; the answer to anyone else names nobody."""
    from django.contrib import admin

    data = _other_peoples_data(admin_objects)
    fields = [
        (model, field, model_admin.model._meta.get_field(field).related_model)
        for model, model_admin in admin.site._registry.items()
        for field in model_admin.autocomplete_fields
    ]
    assert len(fields) >= 4
    for persona in ADMIN_PERSONAS:
        _login_as(client, personas, persona)
        for model, field, remote in fields:
            query = {
                "app_label": model._meta.app_label,
                "model_name": model._meta.model_name,
                "field_name": field,
                "term": "",
            }
            response = client.get(reverse("admin:autocomplete"), query)
            where = f"autocomplete {model._meta.label_lower}.{field} as {persona}"
            remote_label = remote._meta.label_lower
            if persona in STAFF and "changelist" in ADMIN_MODELS[remote_label][persona]:
                assert response.status_code == 200, where
            else:
                others = [u.email for p, u in personas.items() if p != persona]
                _assert_refused(response, persona, where, data + others)


def _offered_actions(response: Any) -> set[str]:
    form = response.context and response.context.get("action_form")
    if form is None:
        return set()
    return {value for value, _label in form.fields["action"].choices if value}


def test_admin_actions_offered_and_refused(
    client: Client,
    personas: dict[str, User],
    admin_objects: dict[str, Model],
) -> None:
    """Each changelist offers exactly the actions of the matrix; an action posted by anyone
    it is not offered to does nothing."""
    from django.contrib import admin

    data = _other_peoples_data(admin_objects)
    before = _fingerprint()
    for persona in ADMIN_PERSONAS:
        _login_as(client, personas, persona)
        for model, model_admin in admin.site._registry.items():
            label = model._meta.label_lower
            changelist = reverse(f"admin:{label.replace('.', '_')}_changelist")
            may_list = persona in STAFF and "changelist" in ADMIN_MODELS[label][persona]
            expected = set()
            for _func, name, _description in model_admin._get_base_actions():
                if name == "delete_selected":
                    allowed = persona in STAFF and "delete" in ADMIN_MODELS[label][persona]
                else:
                    allowed = persona in ADMIN_ACTIONS[f"{label}.{name}"].split()
                if allowed and may_list:
                    expected.add(name)
                    continue
                where = f"action {label}.{name} as {persona}"
                response = client.post(
                    changelist,
                    {"action": name, "_selected_action": [admin_objects[label].pk], "index": 0},
                )
                if may_list:
                    # Django ignores an action it does not offer: the list again (or back
                    # to it when the list offers other actions).
                    assert response.status_code in (200, 302), where
                    if response.status_code == 302:
                        assert response["Location"] == changelist, where
                else:
                    _assert_refused(response, persona, where, data)
            if may_list:
                offered = _offered_actions(client.get(changelist))
                assert offered == expected, f"{label} offers {offered} to {persona}"
    assert _fingerprint() == before


def test_a_crm_administrator_cannot_raise_their_own_rights(
    client: Client, personas: dict[str, User]
) -> None:
    """The role gives an administrator the role table's permissions and nothing more: the
    user form does not let them tick "superuser" or add permissions, and a superuser's
    account (its password included) is out of their reach."""
    from django.contrib.auth.models import Permission

    admin_user = personas["admin"]
    root = UserFactory(username="root", role=Role.ADMIN)
    User.objects.filter(pk=root.pk).update(is_superuser=True, is_staff=True)
    login(client, admin_user)
    change = reverse("admin:crm_user_change", args=[admin_user.pk])
    form = client.get(change).context["adminform"].form
    assert "is_superuser" not in form.fields and "user_permissions" not in form.fields
    anything = Permission.objects.get(codename="delete_user")
    values = {
        "username": admin_user.username,
        "display_name": admin_user.display_name,
        "email": admin_user.email,
        "role": admin_user.role,
        "state": admin_user.state,
        "language": admin_user.language,
        "is_active": "on",
        "is_superuser": "on",
        "user_permissions": [anything.pk],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "09:00:00",
        "_save": "1",
    }
    response = client.post(change, values)
    assert response.status_code == 302, getattr(response.context, "get", lambda _k: None)("errors")
    admin_user.refresh_from_db()
    assert not admin_user.is_superuser and not admin_user.user_permissions.exists()
    assert not admin_user.has_perm("crm.delete_user")
    for path in (
        reverse("admin:crm_user_change", args=[root.pk]),
        reverse("admin:auth_user_password_change", args=[root.pk]),
    ):
        response = client.post(path, {"password1": "Ch4nged-Passw0rd!", "password2": "x"})
        assert response.status_code == 403, path
    root.refresh_from_db()
    assert root.check_password(TEST_PASSWORD)


def test_admin_posts_without_a_csrf_token_are_refused(
    personas: dict[str, User], admin_objects: dict[str, Model]
) -> None:
    """The admin's forms and actions need the CSRF token too (as in tests/test_csrf_sweep)."""
    client = Client(enforce_csrf_checks=True)
    for persona in STAFF:
        client.force_login(personas[persona])
        for url in _admin_urls():
            if url.key == "catch_all" or (url.model and url.view == "redirect"):
                continue
            path = _admin_url_for(url, admin_objects)
            response = client.post(path, {"post": "yes", "_save": "1"})
            assert response.status_code == 403, f"POST {path} as {persona}: {response.status_code}"
