"""The customer import pages (/imports/): managers and administrators upload a file, watch
the preview being prepared, read it, confirm the import and download the problem rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from crm import services
from crm.models import Customer, ImportJob, ImportStatus, User
from ownership.models import OwnershipEvent
from tests.conftest import login
from tests.factories import UserFactory

ROWS = (
    "外部编号,名称,电话\n"
    "W1,星河数码科技有限公司,13916881234\n"
    "W2,远帆物流有限公司,\n"
    "W3,,\n"  # invalid: no name
    "W4,上海青禾食品有限公司,\n"  # a duplicate of an existing customer
)


@pytest.fixture(autouse=True)
def eager_celery_and_media(settings: Any, tmp_path: Path) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def existing(db: None) -> Customer:
    return services.customer_create(
        actor=None, display_name="青禾食品(上海)有限公司", external_ref="OLD"
    )


def upload(
    client: Client,
    capture: Callable[..., Any],
    content: str = ROWS,
    name: str = "客户.csv",
    **data: Any,
) -> Any:
    with capture(execute=True):
        return client.post(
            reverse("import_list"),
            {"file": SimpleUploadedFile(name, content.encode("utf-8-sig")), **data},
        )


@pytest.mark.parametrize(
    ("persona", "status"), [("rep", 403), ("committee", 403), ("manager", 200), ("admin", 200)]
)
def test_the_import_page_is_for_managers_and_administrators(
    client: Client, personas: dict[str, User], persona: str, status: int
) -> None:
    login(client, personas[persona])
    assert client.get(reverse("import_list")).status_code == status


def test_a_rep_cannot_upload_either(
    client: Client, rep: User, django_capture_on_commit_callbacks: Any
) -> None:
    login(client, rep)
    response = upload(client, django_capture_on_commit_callbacks)
    assert response.status_code == 403
    assert not ImportJob.objects.exists()


def test_upload_runs_a_preview_that_writes_nothing(
    client: Client, manager: User, existing: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    login(client, manager)
    response = upload(client, django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("import_job", args=[job.pk])
    assert (job.status, job.dry_run, job.total_rows, job.processed_rows) == ("done", True, 4, 4)
    assert job.counts["new"] == 2
    assert job.counts["invalid"] == 1
    assert job.counts["duplicate"] == 1
    assert Customer.objects.count() == 1  # only the existing one

    body = client.get(response["Location"]).content.decode()
    assert "预览：尚未写入任何数据。" in body
    assert "请输入公司名称。" in body  # the invalid row
    assert "青禾食品(上海)有限公司" in body  # the existing customer it duplicates
    assert "确认导入" in body
    assert "every 1s" not in body and 'id="import-progress"' not in body  # no polling


def test_the_progress_bar_polls_until_the_job_is_finished(client: Client, manager: User) -> None:
    job = ImportJob.objects.create(
        created_by=manager, original_name="a.csv", file="imports/a.csv", total_rows=200,
        processed_rows=50, status=ImportStatus.RUNNING,
    )  # fmt: skip
    login(client, manager)
    page = client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in page
    assert f'hx-get="{reverse("import_job_progress", args=[job.pk])}"' in page
    assert 'aria-valuenow="25"' in page and 'data-progress="25"' in page
    assert "已处理 50 / 200 行" in page
    assert "js/import-progress.js" in page
    assert "<script>" not in page  # no inline script (CSP)

    partial = client.get(reverse("import_job_progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert "every 1s" in partial.content.decode()
    assert "HX-Refresh" not in partial

    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.DONE, processed_rows=200)
    partial = client.get(reverse("import_job_progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert partial["HX-Refresh"] == "true"
    assert "every 1s" not in partial.content.decode()


def test_confirming_runs_the_real_import(
    client: Client, manager: User, existing: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    login(client, manager)
    upload(client, django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    url = reverse("import_job_confirm", args=[job.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {}, follow=True)
    assert "请勾选确认框后再开始导入。" in response.content.decode()
    assert Customer.objects.count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"confirm": "on"})
    assert response.status_code == 302
    body = client.get(response["Location"]).content.decode()
    job.refresh_from_db()
    assert (job.status, job.dry_run) == ("done", False)
    assert job.counts["created"] == 2
    assert set(Customer.objects.values_list("external_ref", flat=True)) == {"OLD", "W1", "W2"}
    assert Customer.objects.get(external_ref="W1").source == "import"
    assert "已导入 2 个客户" in body

    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(url, {"confirm": "on"}, follow=True)
    assert "该文件已导入" in again.content.decode()
    assert Customer.objects.count() == 3


def test_importing_for_a_rep_goes_through_the_ownership_ledger(
    client: Client, manager: User, rep: User, django_capture_on_commit_callbacks: Any
) -> None:
    login(client, manager)
    upload(client, django_capture_on_commit_callbacks, owner=str(rep.pk))
    job = ImportJob.objects.get()
    assert job.owner == rep
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("import_job_confirm", args=[job.pk]), {"confirm": "on"})
    owned = Customer.objects.filter(owner=rep)
    assert owned.count() == 3
    for customer in owned:
        event = OwnershipEvent.objects.get(customer=customer)
        assert (event.to_owner, event.actor, event.cause_id) == (rep, manager, job.pk)


def test_a_manager_may_only_choose_reps_of_their_teams(
    client: Client,
    manager: User,
    other_team: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    outsider = UserFactory(username="outsider", team=other_team)
    login(client, manager)
    response = upload(client, django_capture_on_commit_callbacks, owner=str(outsider.pk))
    assert response.status_code == 200
    assert "选择一个有效的选项" in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("客户.pdf", ROWS, "只能导入 .csv 和 .xlsx 文件"),
        ("客户.csv", "电话\n13916881234\n", "文件没有名称列"),
        ("客户.csv", "", "文件是空的"),
    ],
)
def test_bad_files_are_refused_on_the_form(
    client: Client,
    manager: User,
    django_capture_on_commit_callbacks: Any,
    name: str,
    content: str,
    message: str,
) -> None:
    login(client, manager)
    response = upload(client, django_capture_on_commit_callbacks, content, name)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_file_over_the_size_limit_is_refused(
    client: Client, manager: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.IMPORT_MAX_BYTES = 50
    login(client, manager)
    response = upload(client, django_capture_on_commit_callbacks)
    assert "文件大于" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_undecodable_files_fail_clearly(
    client: Client, manager: User, django_capture_on_commit_callbacks: Any
) -> None:
    login(client, manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("import_list"),
            {"file": SimpleUploadedFile("a.csv", "名称\n星河\n".encode("utf-16"))},
        )
    assert "既不是 UTF-8 也不是 GBK/GB18030" in response.content.decode()


def test_error_report_downloads_as_csv_excel_can_open(
    client: Client, manager: User, existing: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    login(client, manager)
    upload(client, django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    response = client.get(reverse("import_job_errors", args=[job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("行号,状态,问题,外部编号,名称")
    assert [line.split(",")[3] for line in lines[1:]] == ["W3", "W4"]


def test_jobs_are_private_to_their_creator(
    client: Client, manager: User, crm_admin: User, django_capture_on_commit_callbacks: Any
) -> None:
    login(client, manager)
    upload(client, django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    other_manager = UserFactory(username="manager2", role="manager")
    login(client, other_manager)
    assert client.get(reverse("import_job", args=[job.pk])).status_code == 404
    assert client.get(reverse("import_job_errors", args=[job.pk])).status_code == 404
    assert "客户.csv" not in client.get(reverse("import_list")).content.decode()
    login(client, crm_admin)
    assert client.get(reverse("import_job", args=[job.pk])).status_code == 200


def test_the_jobs_list_costs_a_constant_number_of_queries(
    client: Client, manager: User, rep: User, django_assert_max_num_queries: Any
) -> None:
    for i in range(30):
        ImportJob.objects.create(
            created_by=manager, original_name=f"f{i}.csv", file=f"imports/f{i}.csv", owner=rep
        )
    login(client, manager)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("import_list"))
    assert response.status_code == 200
    assert "f29.csv" in response.content.decode()
    assert "第 1 / 2 页" in response.content.decode()


def test_a_failed_job_shows_its_error(client: Client, manager: User) -> None:
    job = ImportJob.objects.create(
        created_by=manager, original_name="a.csv", file="imports/a.csv",
        status=ImportStatus.FAILED, error="文件是空的。",
    )  # fmt: skip
    login(client, manager)
    body = client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert "文件是空的。" in body and "失败" in body
