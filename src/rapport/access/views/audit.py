"""S5 — the Auditor's search over the access audit trail, and the chain check."""

from __future__ import annotations

import datetime as dt

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from rapport.access.audit import record_event, verify_chain
from rapport.access.forms import AuditSearchForm
from rapport.access.permissions import permission_required
from rapport.access.selectors import audit_search

PAGE_SIZE = 50


@permission_required("access.auditentry", "read")
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    form = AuditSearchForm(request.GET or None)
    filters = {}
    if form.is_valid():
        data = form.cleaned_data
        filters = {"actor": data["actor"], "person_id": data["person"], "action": data["action"].strip(),
                   "channel": data["channel"], "since": _day(data["since"]), "until": _day(data["until"])}
    entries = audit_search(user=request.user, **filters)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    if any(v for v in filters.values()):
        record_event(actor=request.user, action="audit_search", object_type="access.auditentry", request=request,
                     detail={k: str(v) for k, v in filters.items() if v})
    params = request.GET.copy()
    params.pop("page", None)
    return render(request, "access/audit_search.html", {"form": form, "page": page, "query": params.urlencode()})


@permission_required("access.auditentry", "read")
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    report = verify_chain() if request.method == "POST" else None
    if report is not None:
        record_event(actor=request.user, action="audit_verify", object_type="access.auditentry", request=request,
                     detail={"ok": report.ok, "checked": report.checked, "problem": report.problem})
    return render(request, "access/audit_verify.html", {"report": report},
                  status=200 if report is None or report.ok else 409)


def _day(value: dt.date | None) -> dt.datetime | None:
    if value is None:
        return None
    return timezone.make_aware(dt.datetime.combine(value, dt.time.min))
