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
