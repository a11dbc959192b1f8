"""U — staff screens of the privacy core: the rights-request queue, the record of processing,
suppression lists, retention, and the person's consent, preferences and export.

Views are adapters: they parse with ``forms``, find people through ``visible_to`` (S2) and
call the privacy services; refusals (``DomainError``) become messages next to the form.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rapport.access.permissions import has_permission, permission_required
from rapport.core.errors import DomainError
from rapport.privacy import export, gate, retention, rights, selectors, services, suppression
from rapport.privacy.forms import (
    ConsentForm,
    ExecuteForm,
    ExtendForm,
    GateCheckForm,
    LegalHoldForm,
    LinkPersonForm,
    ListImportForm,
    ManualSuppressionForm,
    PreferencesForm,
    RefuseForm,
    RestrictForm,
    RetentionPolicyForm,
    RightsRequestForm,
    SecurityNoticeForm,
    VerifyForm,
    apply_errors,
)
from rapport.privacy.models import (
    ConsentBasis,
    ConsentEvent,
    ConsentSource,
    LegalHold,
    RetentionPolicy,
    RightsRequest,
    SuppressionEntry,
)
from rapport.privacy.purposes import MARKETING_PURPOSES, PURPOSES
from rapport.privacy.record import processing_record, processing_record_markdown


def _person(request: HttpRequest, pk: Any, action: str = "read") -> Any:
    from rapport.people.models import Person

    person = Person.objects.visible_to(request.user, action).filter(pk=pk).first()
    if person is None:
        raise Http404("No such person.")
    return person


def _refused(request: HttpRequest, error: Exception) -> None:
    messages.error(request, str(error) if not isinstance(error, ValidationError) else " ".join(error.messages))


SETTINGS = "privacy.settings"


def _require(user: Any, pairs: list[tuple[str, str]]) -> None:
    for object_type, action in pairs:
        if not has_permission(user, object_type, action):
            raise PermissionDenied(f"Your role may not {action} {object_type}.")


def _manages(user: Any) -> bool:
    return has_permission(user, SETTINGS, "manage")


# ------------------------------------------------------------------ person 360° panel


def person_panel_context(request: HttpRequest, person: Any) -> dict[str, Any]:
    """Context of the privacy panel on the person view (registered in PrivacyConfig.ready)."""
    data = selectors.panel_data(person=person)
    today = timezone.localdate()
    return {
        "data": data,
        "purposes": PURPOSES,
        "overdue": [r for r in data.open_requests if r.due_on < today],
        "check_form": GateCheckForm(initial={"channel": "email", "purpose": "newsletter"}),
    }


# ------------------------------------------------------------------- rights requests


@permission_required(rights.RIGHTS_OBJECT, "read")
@require_GET
def request_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "open")
    kind = request.GET.get("kind", "")
    overdue_only = request.GET.get("overdue") == "1"
    queue = list(selectors.request_queue(status=status, kind=kind, overdue_only=overdue_only)[:500])
    today = timezone.localdate()
    return render(request, "privacy/request_list.html", {
        "rows": [{"request": r, "overdue": rights.is_overdue(r, today),
                  "days_left": (r.due_on - today).days} for r in queue],
        "counts": selectors.queue_counts(today=today), "status": status, "kind": kind,
        "overdue_only": overdue_only, "kinds": RightsRequest.Kind.choices,
        "statuses": [("open", "Open"), *RightsRequest.Status.choices, ("", "All")],
    })


@permission_required(rights.RIGHTS_OBJECT, "create")
@require_http_methods(["GET", "POST"])
def request_create(request: HttpRequest) -> HttpResponse:
    person = None
    person_id = request.POST.get("person") or request.GET.get("person")
    if person_id:
        try:
            person = _person(request, UUID(str(person_id)))
        except ValueError as err:
            raise Http404("No such person.") from err
    form = RightsRequestForm(request.POST or None, initial={"person": person.pk if person else None,
                                                          "kind": request.GET.get("kind", "access")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = rights.request_create(
                actor=request.user, kind=data["kind"], person=person, channel=data["channel"],
                received_on=data["received_on"], requester_name=data["requester_name"],
                requester_contact=data["requester_contact"], details=data["details"])
        except ValidationError as err:
            apply_errors(form, err)
        else:
            messages.success(request, f"Request logged; due on {created.due_on:%d %b %Y}.")
            return redirect("privacy:request-detail", created.pk)
    return render(request, "privacy/request_form.html", {"form": form, "person": person},
                  status=400 if request.method == "POST" else 200)


@permission_required(rights.RIGHTS_OBJECT, "read")
@require_GET
def request_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    rights_request = get_object_or_404(RightsRequest.objects.select_related("person", "verified_by"), pk=pk)
    if rights_request.person_id is not None:
        _person(request, rights_request.person_id)
    return render(request, "privacy/request_detail.html", _request_context(rights_request))


def _request_context(rights_request: RightsRequest, **forms: Any) -> dict[str, Any]:
    today = timezone.localdate()
    return {
        "r": rights_request, "events": list(rights_request.events.select_related("actor")),
        "overdue": rights.is_overdue(rights_request, today), "days_left": (rights_request.due_on - today).days,
        "verify_form": forms.get("verify_form") or VerifyForm(),
        "extend_form": forms.get("extend_form") or ExtendForm(),
        "execute_form": forms.get("execute_form") or ExecuteForm(kind=rights_request.kind),
        "refuse_form": forms.get("refuse_form") or RefuseForm(),
        "link_form": forms.get("link_form") or LinkPersonForm(),
        "can_extend": rights_request.is_open and not rights_request.is_extended and today <= rights_request.due_on,
    }


@login_required
@require_POST
def request_action(request: HttpRequest, pk: UUID, action: str) -> HttpResponse:
    rights_request = get_object_or_404(RightsRequest, pk=pk)
    _require(request.user, rights.permissions_needed(action, rights_request.kind))
    if rights_request.person_id is not None:
        _person(request, rights_request.person_id, "change")
    form_class = {"verify": VerifyForm, "extend": ExtendForm, "execute": ExecuteForm, "refuse": RefuseForm,
                  "cancel": RefuseForm, "link": LinkPersonForm}.get(action)
    if form_class is None:
        raise Http404("No such action.")
    form = form_class(request.POST, kind=rights_request.kind) if form_class is ExecuteForm else form_class(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if action == "verify":
                rights.request_verify(actor=request.user, request=rights_request, method=data["method"],
                                      note=data["note"])
                messages.success(request, "Identity verified; the request can be executed.")
            elif action == "extend":
                done = rights.request_extend(actor=request.user, request=rights_request, reason=data["reason"])
                messages.success(request, f"Deadline extended to {done.due_on:%d %b %Y}. Tell the requester why.")
            elif action == "execute":
                done = rights.request_execute(actor=request.user, request=rights_request,
                                              note=data.get("note", ""))
                messages.success(request, done.outcome)
            elif action == "refuse":
                rights.request_refuse(actor=request.user, request=rights_request, reason=data["reason"])
                messages.success(request, "Request refused.")
            elif action == "cancel":
                rights.request_cancel(actor=request.user, request=rights_request, reason=data["reason"])
                messages.success(request, "Request cancelled.")
            else:
                person = _person(request, data["person"])
                rights.request_update(actor=request.user, request=rights_request, changes={"person": person})
                messages.success(request, "Request linked to the person.")
            return redirect("privacy:request-detail", rights_request.pk)
        except ValidationError as err:
            apply_errors(form, err)
        except (DomainError, Http404) as err:
            form.add_error(None, str(err))
    rights_request.refresh_from_db()
    context = _request_context(rights_request, **{f"{action if action != 'cancel' else 'refuse'}_form": form})
    return render(request, "privacy/request_detail.html", context, status=400)


# ------------------------------------------------------------------ person: consent etc.


@permission_required("people.person", "update")
@require_http_methods(["GET", "POST"])
def consent_record(request: HttpRequest, pk: UUID) -> HttpResponse:
    person = _person(request, pk, "change")
    form = ConsentForm(request.POST or None, initial={"purpose": request.GET.get("purpose", "newsletter")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        granted = data["action"] == "grant"
        proof = {"how": data["how"]} if data["how"] else {}
        if data["refusal_offered"]:
            proof["refusal_offered"] = True
        try:
            event = services.record_consent(
                person=person, purpose=data["purpose"], channel=data["channel"], granted=granted,
                lawful_basis=data["lawful_basis"] if granted else ConsentBasis.CONSENT, source=ConsentSource.STAFF,
                captured_by=request.user, notice_version=data["notice_version"], proof=proof,
                double_opt_in=data["double_opt_in"] if granted else False)
        except ValidationError as err:
            apply_errors(form, err)
        except DomainError as err:
            form.add_error(None, str(err))
        else:
            what = "withdrawal" if not granted else ("consent (waiting for the email confirmation)"
                                                     if event.pending else "consent")
            messages.success(request, f"Recorded the {what}: {PURPOSES[event.purpose].label} by {event.get_channel_display()}.")
            return redirect("people:person-detail", person.pk)
    return render(request, "privacy/consent_form.html", {"form": form, "person": person},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def consent_history(request: HttpRequest, pk: UUID) -> HttpResponse:
    person = _person(request, pk)
    return render(request, "privacy/consent_history.html", {
        "person": person, "events": list(selectors.consent_history(person=person)[:500]),
        "states": selectors.consent_states(person=person), "purposes": PURPOSES,
        "decisions": gate.decisions_about(person)[:200]})


@login_required
@require_GET
def consent_receipt(request: HttpRequest, pk: UUID, receipt_id: UUID) -> JsonResponse:
    person = _person(request, pk)
    event = get_object_or_404(ConsentEvent.objects.select_related("person", "notice_version__notice"),
                              person_id=person.pk, receipt_id=receipt_id)
    response = JsonResponse(selectors.consent_receipt(event), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="consent-receipt-{receipt_id}.json"'
    return response


@permission_required("people.person", "update")
@require_http_methods(["GET", "POST"])
def preferences_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    person = _person(request, pk, "change")
    preference, topics = selectors.preferences_of(person=person)
    initial: dict[str, Any] = {f"{c}_allowed": True for c in ("email", "phone", "sms", "post", "social")}
    if preference is not None:
        initial = {name: getattr(preference, name) for name in (
            "preferred_channel", "email_allowed", "phone_allowed", "sms_allowed", "post_allowed", "social_allowed",
            "max_per_week", "quiet_start", "quiet_end")}
    initial.update({f"topic_{k}": topics.get(k, True) for k in MARKETING_PURPOSES})
    form = PreferencesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.preferences_update(actor=request.user, person=person, changes=form.changes(),
                                        topics=form.topics())
        except ValidationError as err:
            apply_errors(form, err)
        except DomainError as err:
            form.add_error(None, str(err))
        else:
            messages.success(request, "Preferences saved.")
            return redirect("people:person-detail", person.pk)
    return render(request, "privacy/preferences_form.html", {"form": form, "person": person},
                  status=400 if request.method == "POST" else 200)


@permission_required("people.person", "export")
@require_GET
def person_export(request: HttpRequest, pk: UUID) -> HttpResponse:
    """The access/portability export: a readable page, or JSON with ``?format=json``."""
    person = _person(request, pk, "export")
    document = export.export_person(person=person, actor=request.user, channel="ui", request=request)
    if request.GET.get("format") == "json":
        response = HttpResponse(json.dumps(document, indent=2, ensure_ascii=False),
                                content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="person-{person.pk}.json"'
        return response
    return render(request, "privacy/export.html", {"person": person, "doc": document})


@permission_required("people.person", "update")
@require_POST
def person_status(request: HttpRequest, pk: UUID, action: str) -> HttpResponse:
    """Restrict / lift restriction / object / lift objection / place a legal hold."""
    person = _person(request, pk, "change")
    try:
        if action == "restrict":
            form = RestrictForm(request.POST)
            if not form.is_valid():
                raise ValidationError("Say why processing is restricted.")
            services.restrict_processing(actor=request.user, person=person, reason=form.cleaned_data["reason"])
            messages.success(request, "Processing restricted: storage only.")
        elif action == "lift-restriction":
            services.lift_restriction(actor=request.user, person=person)
            messages.success(request, "Restriction lifted.")
        elif action == "object":
            services.record_objection(actor=request.user, person=person)
            messages.success(request, "Objection recorded: all marketing withdrawn.")
        elif action == "lift-objection":
            services.lift_objection(actor=request.user, person=person)
            messages.success(request, "Objection lifted; new consents are needed for opt-in channels.")
        elif action == "hold":
            form = LegalHoldForm(request.POST)
            if not form.is_valid():
                raise ValidationError("Say which legal matter needs the data kept.")
            services.place_legal_hold(actor=request.user, person=person, reason=form.cleaned_data["reason"])
            messages.success(request, "Legal hold placed: no erasure or retention purge while it lasts.")
        else:
            raise Http404("No such action.")
    except (ValidationError, DomainError) as err:
        _refused(request, err)
    return redirect("people:person-detail", person.pk)


@permission_required("people.person", "update")
@require_POST
def legal_hold_release(request: HttpRequest, pk: UUID) -> HttpResponse:
    hold = get_object_or_404(LegalHold.objects.select_related("person"), pk=pk, released_at__isnull=True)
    _person(request, hold.person_id, "change")
    services.release_legal_hold(actor=request.user, hold=hold)
    messages.success(request, "Legal hold released.")
    return redirect("people:person-detail", hold.person_id)


@login_required
@require_GET
def gate_check(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Ask the gate from the person view: may we contact them now? (logged like any decision)."""
    person = _person(request, pk)
    form = GateCheckForm(request.GET)
    if not form.is_valid():
        return HttpResponse("Choose a channel and a purpose.", status=400)
    decision = gate.decide(person, form.cleaned_data["channel"], form.cleaned_data["purpose"],
                           actor=request.user, context="staff check")
    return render(request, "privacy/partials/decision.html", {"decision": decision, "form": form})


# ------------------------------------------------------------------ public: double opt-in


@require_http_methods(["GET", "POST"])
def consent_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the double opt-in email. GET shows a button (mail scanners follow links)."""
    if request.method == "POST":
        try:
            event = services.confirm_consent(token=token, ip=request.META.get("REMOTE_ADDR"),
                                             user_agent=request.headers.get("User-Agent", ""))
        except DomainError as err:
            return render(request, "privacy/confirm.html", {"error": str(err)}, status=400)
        return render(request, "privacy/confirm.html", {"done": True, "purpose": PURPOSES[event.purpose]})
    return render(request, "privacy/confirm.html", {"token": token})


# ------------------------------------------------------------------ processing record (C1)


@login_required
@require_GET
def processing_record_view(request: HttpRequest) -> HttpResponse:
    record = processing_record()
    fmt = request.GET.get("format")
    if fmt == "json":
        response = JsonResponse(record, json_dumps_params={"indent": 2, "ensure_ascii": False})
        response["Content-Disposition"] = 'attachment; filename="record-of-processing.json"'
        return response
    if fmt == "md":
        response = HttpResponse(processing_record_markdown(record), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="record-of-processing.md"'
        return response
    return render(request, "privacy/processing_record.html", {"record": record})


# --------------------------------------------------------------------- suppression (I5)


@login_required
@require_http_methods(["GET", "POST"])
def suppression_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and not _manages(request.user):
        raise PermissionDenied("Your role may not manage suppression lists.")
    manual_form = ManualSuppressionForm(request.POST if request.POST.get("form") == "manual" else None)
    import_form = ListImportForm(request.POST if request.POST.get("form") == "import" else None,
                                 request.FILES if request.POST.get("form") == "import" else None)
    status = 200
    if request.method == "POST":
        if manual_form.is_bound and manual_form.is_valid():
            data = manual_form.cleaned_data
            added = suppression.suppress(emails=[data["value"]] if data["kind"] == "email" else [],
                                         phones=[data["value"]] if data["kind"] == "phone" else [],
                                         reason=data["reason"])
            messages.success(request, "Added to the suppression list." if added else "Already on the list.")
            return redirect("privacy:suppression")
        if import_form.is_bound and import_form.is_valid():
            data = import_form.cleaned_data
            try:
                imported = suppression.import_list(name=data["name"], kind=data["kind"],
                                                   screened_on=data["screened_on"], values=import_form.lines(),
                                                   hashed=data["hashed"], actor=request.user)
            except DomainError as err:
                import_form.add_error(None, str(err))
            else:
                messages.success(request, f"Imported {imported.entry_count} entries into “{imported.name}”.")
                return redirect("privacy:suppression")
        status = 400
    return render(request, "privacy/suppression.html", {
        "overview": selectors.suppression_overview(), "manual_form": manual_form, "import_form": import_form,
        "manual": list(selectors.manual_entries()[:100]),
    }, status=status)


@permission_required(SETTINGS, "manage")
@require_POST
def suppression_remove(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_object_or_404(SuppressionEntry, pk=pk)
    try:
        suppression.remove_entry(entry=entry)
    except DomainError as err:
        _refused(request, err)
    else:
        messages.success(request, "Removed from the suppression list.")
    return redirect("privacy:suppression")


# ---------------------------------------------------------------------- retention (C6)


@login_required
@require_GET
def retention_view(request: HttpRequest) -> HttpResponse:
    from rapport.people.models import Person

    reports = retention.find_expired()
    ids = [s["person_id"] for r in reports for s in r.sample]
    names = {str(p.pk): p.display_name for p in Person.objects.filter(pk__in=ids)}
    for report in reports:
        for sample in report.sample:
            sample["name"] = names.get(sample["person_id"], "")
    holds = LegalHold.objects.filter(released_at__isnull=True).select_related("person", "placed_by")
    return render(request, "privacy/retention.html", {
        "policies": RetentionPolicy.objects.order_by("key"), "reports": reports, "holds": holds,
        "runs": retention_runs(), "can_run": _manages(request.user)})


def retention_runs() -> list[Any]:
    from rapport.privacy.models import RetentionRun

    return list(RetentionRun.objects.order_by("-started_at")[:10])


@permission_required(SETTINGS, "manage")
@require_POST
def retention_policy_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    policy = get_object_or_404(RetentionPolicy, pk=pk)
    form = RetentionPolicyForm(request.POST)
    if form.is_valid():
        policy.months = form.cleaned_data["months"]
        policy.enabled = form.cleaned_data["enabled"]
        policy.save(update_fields=["months", "enabled", "updated_at"])
        messages.success(request, f"Policy {policy.key}: {policy.months} months, "
                                  f"{'enabled' if policy.enabled else 'disabled'}.")
    else:
        messages.error(request, "Give a number of months between 1 and 1200.")
    return redirect("privacy:retention")


@permission_required(SETTINGS, "manage")
@require_POST
def retention_run(request: HttpRequest) -> HttpResponse:
    run = retention.apply_retention(actor=request.user, dry_run=False)
    done = sum(p["done"] for p in run.summary["policies"])
    messages.success(request, f"Retention applied: {done} records erased or deleted.")
    return redirect("privacy:retention")


# ----------------------------------------------------------------- security notices (C8)


@permission_required(SETTINGS, "manage")
@require_http_methods(["GET", "POST"])
def security_notice(request: HttpRequest) -> HttpResponse:
    from rapport.people.models import Person
    from rapport.privacy.models import SecurityNotice
    from rapport.privacy.outbound import send_security_notice

    form = SecurityNoticeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ids = []
        for raw in form.person_ids():
            try:
                ids.append(UUID(raw))
            except ValueError:
                form.add_error("people", f"Not a person id: {raw}")
        if form.is_valid():
            people = Person.objects.visible_to(request.user).filter(pk__in=ids)
            notice = send_security_notice(people=people, subject=form.cleaned_data["subject"],
                                          body=form.cleaned_data["body"], actor=request.user,
                                          channel=form.cleaned_data["channel"])
            messages.success(request, f"Sent to {notice.sent_count} of {notice.audience_size} people.")
            return redirect(reverse("privacy:security-notice"))
    return render(request, "privacy/security_notice.html", {
        "form": form, "notices": SecurityNotice.objects.select_related("created_by")[:20]})
