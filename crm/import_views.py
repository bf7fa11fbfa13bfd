"""Customer import pages (批量导入) for managers and administrators: upload, preview with
progress, confirm, error report. Thin: the work is in crm.importer and the Celery task."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import importer
from crm.errors import DomainError
from crm.import_forms import ImportConfirmForm, ImportUploadForm
from crm.models import ImportJob, ImportStatus, Role, User
from crm.roles import role_required

PAGE_SIZE = 25


def _user(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    return user


def _job_for(request: HttpRequest, pk: int) -> ImportJob:
    """Only jobs the user may see (their own; administrators all): others are a 404."""
    return get_object_or_404(importer.import_jobs_for(_user(request)), pk=pk)


@role_required(Role.MANAGER, Role.ADMIN)
@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES, user=user)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = importer.import_job_create(
                    actor=user, file=upload, name=upload.name, owner=form.cleaned_data["owner"]
                )
            except DomainError as error:
                form.add_error("file", error.message)
            else:
                messages.success(request, _("File uploaded; the preview is being prepared."))
                return redirect("import_job", pk=job.pk)
    else:
        form = ImportUploadForm(user=user)
    page = Paginator(importer.import_jobs_for(user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "crm/import/list.html", {"form": form, "page": page})


@role_required(Role.MANAGER, Role.ADMIN)
@require_GET
def import_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_for(request, pk)
    context: dict[str, object] = {"job": job, "counts": job.counts}
    if job.status == ImportStatus.DONE:
        rows = importer.ReportRows(job, int(job.counts.get("problems", 0)))
        context["page"] = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
        context["has_error_rows"] = bool(job.counts.get("invalid") or job.counts.get("duplicate"))
        if job.dry_run:
            context["confirm_form"] = ImportConfirmForm()
    return render(request, "crm/import/job.html", context)


@role_required(Role.MANAGER, Role.ADMIN)
@require_GET
def import_job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar, polled by htmx every second; a finished job reloads the page."""
    job = _job_for(request, pk)
    response = render(request, "crm/import/_progress.html", {"job": job})
    if job.finished:
        response["HX-Refresh"] = "true"
    return response


@role_required(Role.MANAGER, Role.ADMIN)
@require_POST
def import_job_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_for(request, pk)
    form = ImportConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Tick the confirmation box to start the import."))
        return redirect("import_job", pk=job.pk)
    try:
        importer.import_job_confirm(actor=_user(request), job=job)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The import has started."))
    return redirect("import_job", pk=job.pk)


@role_required(Role.MANAGER, Role.ADMIN)
@require_GET
def import_job_errors(request: HttpRequest, pk: int) -> HttpResponse:
    """Invalid and duplicate rows as CSV (UTF-8 with BOM, so Excel shows the Chinese)."""
    job = _job_for(request, pk)
    if job.status != ImportStatus.DONE:
        raise Http404
    data = importer.error_csv(importer.report_text_lines(job))
    response = HttpResponse(data, content_type="text/csv; charset=utf-8")
    filename = f"{Path(job.original_name).stem}-{_('problems')}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename) or "attachment"
    return response
