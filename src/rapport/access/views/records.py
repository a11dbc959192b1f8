"""S2/S5/S8 — screens about one record: break-glass, attachments, manual shares, the
restricted flag, field history and the sealed demographics of a person.

Every record is fetched through ``restrict`` (visible_to); anything not visible is a 404.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rapport.access import selectors, services
from rapport.access.fieldsecurity import hidden_fields, readonly_fields
from rapport.access.forms import (
    AttachmentForm,
    BreakGlassForm,
    DemographicsForm,
    ShareForm,
    apply_errors,
)
from rapport.access.models import Attachment, RecordShare
from rapport.access.sharing import RECORD_TYPES, restrict
from rapport.core.errors import DomainError


def record_or_404(request: HttpRequest, object_type: str, pk: UUID, action: str = "read") -> Any:
    record_type = RECORD_TYPES.get(object_type)
    if record_type is None:
        raise Http404("No such kind of record.")
    found = restrict(record_type.model._default_manager.all(), request.user, action).filter(pk=pk).first()
    if found is None:
        raise Http404("No such record.")
    return found


def record_url(record: Any) -> str:
    label = record._meta.label_lower
    if label == "people.person":
        return reverse("people:person-detail", kwargs={"pk": record.pk})
    if label == "people.organisation":
        return reverse("people:organisation-detail", kwargs={"pk": record.pk})
    return reverse("access:attachments", kwargs={"object_type": label, "pk": record.pk})


def _next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or fallback
    ok = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                         require_https=request.is_secure())
    return target if ok else fallback


# ---------------------------------------------------------------------------- break-glass


@login_required
@require_http_methods(["GET", "POST"])
def break_glass(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Ask why before opening a restricted (VIP) person; the reason goes into the audit trail."""
    person = record_or_404(request, "people.person", pk)
    target = _next(request, record_url(person))
    if not services.require_reason(request.user, person):
        return redirect(target)
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.break_glass(user=request.user, person=person, reason=form.cleaned_data["reason"],
                                 request=request)
        except DomainError as err:
            apply_errors(form, err)
        else:
            return redirect(target)
    return render(request, "access/break_glass.html", {"person": person, "form": form, "next": target},
                  status=400 if request.method == "POST" else 200)


# ---------------------------------------------------------------------------- attachments


@login_required
@require_http_methods(["GET", "POST"])
def attachments(request: HttpRequest, object_type: str, pk: UUID) -> HttpResponse:
    record = record_or_404(request, object_type, pk)
    form = AttachmentForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        record = record_or_404(request, object_type, pk, "update")
        if form.is_valid():
            try:
                services.attachment_add(actor=request.user, record=record, upload=form.cleaned_data["file"],
                                        restricted=form.cleaned_data["restricted"],
                                        description=form.cleaned_data["description"], request=request)
            except DomainError as err:
                apply_errors(form, err)
            else:
                messages.success(request, "File attached.")
                return redirect(_next(request, request.path))
    return render(request, "access/attachments.html", {
        "record": record, "record_url": record_url(record), "form": form,
        "attachments": selectors.attachment_list(user=request.user, record=record),
        "object_type": object_type,
    }, status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def attachment_download(request: HttpRequest, pk: UUID) -> HttpResponse:
    try:
        attachment = selectors.attachment_get(user=request.user, attachment_id=pk)
    except Attachment.DoesNotExist as err:
        raise Http404("No such file.") from err
    data = services.attachment_read(user=request.user, attachment=attachment, request=request)
    response = HttpResponse(data, content_type=attachment.content_type or "application/octet-stream")
    response["Content-Disposition"] = _disposition(attachment.filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
@require_POST
def attachment_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    try:
        attachment = selectors.attachment_get(user=request.user, attachment_id=pk)
    except Attachment.DoesNotExist as err:
        raise Http404("No such file.") from err
    try:
        services.attachment_delete(actor=request.user, attachment=attachment, request=request)
    except DomainError as err:
        messages.error(request, str(err))
        return render(request, "403.html", status=403)
    messages.success(request, f"Removed {attachment.filename}.")
    return redirect(_next(request, reverse("access:attachments", kwargs={
        "object_type": attachment.object_type, "pk": attachment.object_id})))


def _disposition(filename: str) -> str:
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "ignore").decode() or "file"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


# ---------------------------------------------------------------- shares, restriction, history


@login_required
@require_http_methods(["GET", "POST"])
def share(request: HttpRequest, object_type: str, pk: UUID) -> HttpResponse:
    record = record_or_404(request, object_type, pk, "update")
    form = ShareForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.record_share(actor=request.user, record=record, access=data["access"], user=data["user"],
                                  team=data["team"], role=data["role"], request=request)
        except DomainError as err:
            apply_errors(form, err)
        else:
            messages.success(request, "Shared.")
            return redirect(record_url(record))
    shares = RecordShare.objects.filter(object_type=object_type, object_id=record.pk).select_related(
        "user", "team", "role")
    return render(request, "access/share.html", {"record": record, "form": form, "shares": shares,
                                                 "record_url": record_url(record)},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def unshare(request: HttpRequest, pk: UUID) -> HttpResponse:
    found = RecordShare.objects.filter(pk=pk).first()
    if found is None:
        raise Http404("No such share.")
    record = record_or_404(request, found.object_type, found.object_id, "update")
    services.record_unshare(actor=request.user, share=found, request=request)
    messages.success(request, "No longer shared.")
    return redirect(record_url(record))


@login_required
@require_POST
def restrict_record(request: HttpRequest, object_type: str, pk: UUID) -> HttpResponse:
    record = record_or_404(request, object_type, pk, "update")
    if request.POST.get("restricted") == "1":
        services.record_restrict(actor=request.user, record=record, note=request.POST.get("note", ""),
                                 request=request)
        messages.success(request, "Marked restricted: some roles now give a reason before opening it.")
    else:
        services.record_unrestrict(actor=request.user, record=record, request=request)
        messages.success(request, "No longer restricted.")
    return redirect(record_url(record))


@login_required
@require_GET
def history(request: HttpRequest, object_type: str, pk: UUID) -> HttpResponse:
    record = record_or_404(request, object_type, pk)
    return render(request, "access/history.html", {
        "record": record, "record_url": record_url(record),
        "history": selectors.field_history(user=request.user, record=record, limit=200),
    })


@login_required
@require_http_methods(["GET", "POST"])
def demographics(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Edit a person's sealed demographics (birth date, gender, income band) within FLS."""
    from rapport.people.services import person_update

    person = record_or_404(request, "people.person", pk, "update")
    hidden = hidden_fields(request.user, "people.Person")
    readonly = readonly_fields(request.user, "people.Person")
    initial = {"birth_date": person.birth_date, "gender": person.gender or "",
               "income_band": person.income_band or "", "version": person.version}
    form = DemographicsForm(request.POST or None, initial=initial, hidden=hidden, readonly=readonly)
    if request.method == "POST" and form.is_valid():
        try:
            person_update(actor=request.user, person=person, changes=form.changes(),
                          expected_version=form.cleaned_data["version"])
        except ValidationError as err:
            for field, errors in (err.message_dict.items() if hasattr(err, "error_dict") else [(None, err.messages)]):
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, "Details saved.")
            return redirect(record_url(person))
    return render(request, "access/demographics.html", {"person": person, "form": form},
                  status=400 if request.method == "POST" else 200)
