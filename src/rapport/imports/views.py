"""A3 — the staff import wizard (upload → map → preview → run → report) and the export page.

Adapters only: forms parse, ``services`` write, ``selectors`` read. The preview and the run
are background jobs; the detail page polls a progress fragment with htmx every second and
reloads itself when the job is done.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rapport.core.errors import DomainError
from rapport.imports import exports, selectors, services
from rapport.imports.forms import ExportForm, MappingForm, UploadForm
from rapport.imports.mapping import TARGETS
from rapport.imports.models import Import, ImportIssue
from rapport.imports.services import OUTCOME_LABELS

try:  # S1 role checks, when the access app provides them
    from rapport.access.permissions import permission_required
except ImportError:  # pragma: no cover - foundation without roles
    def permission_required(object_type: str, action: str):  # type: ignore[no-redef]
        return login_required

ISSUES_SHOWN = 100
RUNNING = (Import.Status.PREVIEWING, Import.Status.QUEUED, Import.Status.RUNNING, Import.Status.UNDOING)


def _import_or_404(request: HttpRequest, pk: UUID) -> Import:
    try:
        return selectors.import_get(user=request.user, import_id=pk)
    except Import.DoesNotExist as err:
        raise Http404("No such import.") from err


def _apply_errors(form: Any, err: DomainError) -> None:
    for field, field_messages in err.field_errors.items():
        name = field if field in form.fields else None
        for message in field_messages:
            form.add_error(name, message if name else f"{field}: {message}")
    form.add_error(None, str(err))


@permission_required("people.person", "create")
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    """Step 1: upload a file; below, the imports so far."""
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            imp = services.import_create(actor=request.user, upload=upload, file_name=upload.name,
                                         encoding=form.cleaned_data["encoding"],
                                         delimiter=form.cleaned_data["delimiter"])
        except DomainError as err:
            _apply_errors(form, err)
        else:
            return redirect("imports:mapping", pk=imp.pk)
    imports = list(selectors.import_list(user=request.user)[:25])
    return render(request, "imports/index.html", {"form": form, "imports": imports, "outcomes": OUTCOME_LABELS},
                  status=400 if form.errors else 200)


@permission_required("people.person", "create")
@require_http_methods(["GET", "POST"])
def mapping(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Step 2: map columns (suggested), choose the policy, state consent provenance; then preview."""
    imp = _import_or_404(request, pk)
    if imp.status not in services.EDITABLE:
        return redirect("imports:detail", pk=imp.pk)
    template_name = request.POST.get("template", "") if request.method == "POST" else ""
    if request.method == "POST" and request.POST.get("action") == "load" and template_name:
        try:
            imp = services.import_configure(actor=request.user, import_run=imp, mapping_name=template_name)
            messages.success(request, f"Mapping {template_name!r} applied.")
        except DomainError as err:
            messages.error(request, str(err))
        return redirect("imports:mapping", pk=imp.pk)
    if request.method == "POST" and request.POST.get("action") == "sheet":
        try:
            imp = services.import_configure(actor=request.user, import_run=imp, sheet=request.POST.get("sheet", ""))
        except DomainError as err:
            messages.error(request, str(err))
        return redirect("imports:mapping", pk=imp.pk)
    initial = {"date_format": imp.mapping.get("date_format", ""), "split": imp.mapping.get("split", ";"),
               "policy": imp.policy, "consent_purpose": imp.consent_purpose, "consent_source": imp.consent_source,
               "consent_lawful_basis": imp.consent_lawful_basis, "consent_collected_on": imp.consent_collected_on,
               "consent_notice_version": imp.consent_notice_version, "consent_confirmed": imp.consent_confirmed}
    form = MappingForm(request.POST or None, imp=imp, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            imp = services.import_configure(
                actor=request.user, import_run=imp, policy=form.cleaned_data["policy"], consent=form.consent(),
                mapping=form.mapping() if not imp.premapped else None)
            if form.cleaned_data.get("save_as") and not imp.premapped:
                services.mapping_save(actor=request.user, name=form.cleaned_data["save_as"], mapping=imp.mapping)
                messages.success(request, f"Mapping saved as {form.cleaned_data['save_as']!r}.")
            services.import_preview(actor=request.user, import_run=imp)
        except DomainError as err:
            _apply_errors(form, err)
        else:
            return redirect("imports:detail", pk=imp.pk)
    return render(request, "imports/mapping.html", {
        "imp": imp, "form": form, "templates": selectors.mapping_list(), "targets": TARGETS,
    }, status=400 if form.errors else 200)


@permission_required("people.person", "create")
@require_GET
def detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Step 3 and 4: live progress, then the preview (dry run) or the final report."""
    imp = _import_or_404(request, pk)
    return render(request, "imports/detail.html", _report_context(imp))


@permission_required("people.person", "create")
@require_GET
def progress(request: HttpRequest, pk: UUID) -> HttpResponse:
    """The progress fragment htmx polls; once the job is done it asks the page to reload."""
    imp = _import_or_404(request, pk)
    response = render(request, "imports/partials/progress.html", _progress_context(imp))
    if imp.status not in RUNNING and request.headers.get("HX-Request") == "true":
        response["HX-Refresh"] = "true"
    return response


@permission_required("people.person", "create")
@require_POST
def run(request: HttpRequest, pk: UUID) -> HttpResponse:
    imp = _import_or_404(request, pk)
    try:
        services.import_start(actor=request.user, import_run=imp)
    except DomainError as err:
        messages.error(request, str(err))
    return redirect("imports:detail", pk=imp.pk)


@permission_required("people.person", "create")
@require_POST
def undo(request: HttpRequest, pk: UUID) -> HttpResponse:
    imp = _import_or_404(request, pk)
    try:
        services.import_undo(actor=request.user, import_run=imp)
        messages.success(request, "The import was undone: people it created are removed, changes reverted.")
    except DomainError as err:
        messages.error(request, str(err))
    return redirect("imports:detail", pk=imp.pk)


@permission_required("people.person", "create")
@require_GET
def error_file(request: HttpRequest, pk: UUID) -> StreamingHttpResponse:
    imp = _import_or_404(request, pk)
    phase = request.GET.get("phase") or None
    response = StreamingHttpResponse(selectors.error_file(import_run=imp, phase=phase),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_stem(imp.file_name)}-errors.csv"'
    return response


@login_required
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    """The export page: what, which format, filtered like the list views (same query parameters)."""
    form = ExportForm(request.GET or None, initial={"what": "people", "format": "csv"})
    return render(request, "imports/export.html", {"form": form})


@login_required
@require_GET
def export_download(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.GET)
    if not form.is_valid():
        return render(request, "imports/export.html", {"form": form}, status=400)
    data = form.cleaned_data
    what = data["what"]
    allowed = exports.PERSON_FILTERS if what == "people" else exports.ORGANISATION_FILTERS
    filters: dict[str, Any] = {k: data[k] for k in allowed if data.get(k)}
    if filters.get("updated_since"):
        filters["updated_since"] = timezone.make_aware(dt.datetime.combine(filters["updated_since"], dt.time.min))
    try:
        result = (exports.export_people if what == "people" else exports.export_organisations)(
            user=request.user, fmt=data["format"], filters=filters, channel="export", request=request)
    except DomainError as err:
        _apply_errors(form, err)
        return render(request, "imports/export.html", {"form": form}, status=err.status_code)
    response = StreamingHttpResponse(result.chunks, content_type=result.content_type)
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return response


# --------------------------------------------------------------------------- context


def _progress_context(imp: Import) -> dict[str, Any]:
    previewing = imp.status == Import.Status.PREVIEWING
    in_preview = imp.status in (Import.Status.PREVIEWING, Import.Status.PREVIEWED)
    done = imp.preview.get("next_row", 0) if in_preview else imp.next_row
    total = imp.total_rows or 1
    rate = eta = None
    started = imp.started_at if not previewing else None
    if started and done and imp.heartbeat_at:
        seconds = max((imp.heartbeat_at - started).total_seconds(), 0.001)
        rate = done / seconds
        eta = (imp.total_rows - done) / rate if rate else None
    counts = imp.preview.get("counts", {}) if in_preview else imp.counts
    return {"imp": imp, "done": done, "total": imp.total_rows, "percent": min(100, int(done * 100 / total)),
            "rate": rate, "eta": eta, "running": imp.status in RUNNING, "counts": counts,
            "outcomes": OUTCOME_LABELS}


def _report_context(imp: Import) -> dict[str, Any]:
    preview = imp.status in (Import.Status.PREVIEWING, Import.Status.PREVIEWED)
    phase = ImportIssue.Phase.PREVIEW if preview else ImportIssue.Phase.RUN
    counts = imp.preview.get("counts", {}) if preview else imp.counts
    rows = imp.preview.get("rows", []) if preview else imp.report_rows
    issues = list(selectors.import_issues(import_run=imp, phase=phase)[:ISSUES_SHOWN])
    summary = selectors.issue_summary(import_run=imp, phase=phase)
    return {**_progress_context(imp), "imp": imp, "preview": preview, "counts": counts, "rows": rows,
            "issues": issues, "issue_total": sum(summary.values()),
            "failed_total": sum(v for k, v in summary.items() if k != "warning"), "outcomes": OUTCOME_LABELS,
            "phase": phase}


def _stem(name: str) -> str:
    stem = name.rsplit(".", 1)[0] or "import"
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in stem)[:60]
