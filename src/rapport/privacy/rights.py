"""C5 — data-protection rights requests: received, identity verified, executed within the deadline.

The statutory deadline is one month from receipt (GDPR Art. 12(3)): the same day of the next
month, or that month's last day when it has no such day. It can be extended once, by two
further months, with a reason, before the first deadline passes. A request is executed only
after the requester's identity has been verified; executing it calls the service that does
the work (export, rectification, erasure, restriction, objection) and completes the request.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from rapport.core.errors import Conflict, StaleVersion
from rapport.privacy import services
from rapport.privacy.jurisdictions import add_months
from rapport.privacy.models import RightsRequest, RightsRequestEvent

Kind = RightsRequest.Kind
Status = RightsRequest.Status
CHANNELS = ("email", "post", "phone", "in_person", "portal", "api", "web")
EDITABLE = ("requester_name", "requester_contact", "channel", "details", "person")


RIGHTS_OBJECT = "privacy.rightsrequest"
PERSON_OBJECT = "people.person"


def permissions_needed(action: str, kind: str = "") -> list[tuple[str, str]]:
    """The role permissions (object type, action) an adapter checks before ``action``.

    Reading the queue needs ``read``; logging a request ``create``; verifying, extending,
    refusing and linking ``update``; executing ``execute`` plus what the execution does to
    the person (erasure: ``erase``; access/portability: ``export``; the rest: ``update``).
    """
    if action in ("read", "create"):
        return [(RIGHTS_OBJECT, action)]
    if action != "execute":
        return [(RIGHTS_OBJECT, "update")]
    on_person = {Kind.ERASURE: "erase", Kind.ACCESS: "export", Kind.PORTABILITY: "export"}.get(kind, "update")
    return [(RIGHTS_OBJECT, "execute"), (PERSON_OBJECT, on_person)]


def allowed(user: Any, action: str, kind: str = "") -> bool:
    from rapport.access.permissions import has_permission

    return all(has_permission(user, obj, act) for obj, act in permissions_needed(action, kind))


def statutory_due_on(received_on: dt.date) -> dt.date:
    return add_months(received_on, 1)


def extended_due_on(received_on: dt.date) -> dt.date:
    return add_months(received_on, 3)


def request_create(*, actor: Any, kind: str, person: Any = None, requester_name: str = "",
                   requester_contact: str = "", channel: str = "email", details: str = "",
                   received_on: dt.date | None = None, via: str = "ui") -> RightsRequest:
    """Log a request the day it arrives; the due date follows from the received date."""
    today = timezone.localdate()
    received_on = received_on or today
    errors: dict[str, list[str]] = {}
    if kind not in Kind.values:
        errors["kind"] = [f"Choose one of {', '.join(Kind.values)}."]
    if channel not in CHANNELS:
        errors["channel"] = [f"Choose one of {', '.join(CHANNELS)}."]
    if received_on > today:
        errors["received_on"] = ["A request cannot be received in the future."]
    if person is None and not (requester_name.strip() or requester_contact.strip()):
        errors["person"] = ["Link the person, or give the requester's name or contact details."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        request = RightsRequest.objects.create(
            kind=kind, person=person, requester_name=requester_name.strip(),
            requester_contact=requester_contact.strip(), channel=channel, details=details.strip(),
            received_on=received_on, due_on=statutory_due_on(received_on), created_by=_user(actor))
        _event(request, "received", actor, f"{request.get_kind_display()} request received by {channel}.")
        if person is not None:
            from rapport.access.audit import record_person_access

            record_person_access(actor=actor, action="change", people=[person], channel=via,
                                 detail={"rights_request": kind})
    return request


def request_update(*, actor: Any, request: RightsRequest, changes: dict[str, Any],
                   expected_version: int | None = None) -> RightsRequest:
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in unknown})
    if "channel" in changes and changes["channel"] not in CHANNELS:
        raise ValidationError({"channel": [f"Choose one of {', '.join(CHANNELS)}."]})
    with transaction.atomic():
        locked = _lock(request, expected_version)
        _ensure_open(locked)
        for name, value in changes.items():
            setattr(locked, name, value.strip() if isinstance(value, str) else value)
        locked.version += 1
        locked.save()
        _event(locked, "updated", actor, ", ".join(sorted(changes)))
    return locked


def request_verify(*, actor: Any, request: RightsRequest, method: str, note: str = "",
                   expected_version: int | None = None) -> RightsRequest:
    """Record how the requester's identity was checked (the step before execution)."""
    if not method.strip():
        raise ValidationError({"method": ["Say how the identity was verified (e.g. ID document, "
                                          "reply from the registered email)."]})
    with transaction.atomic():
        locked = _lock(request, expected_version)
        _ensure_open(locked)
        if locked.person_id is None:
            raise ValidationError({"person": ["Link the request to the person before verifying."]})
        locked.status = Status.VERIFIED
        locked.verification_method = method.strip()[:100]
        locked.verification_note = note.strip()
        locked.verified_at = timezone.now()
        locked.verified_by = _user(actor)
        locked.version += 1
        locked.save()
        _event(locked, "verified", actor, locked.verification_method)
    return locked


def request_extend(*, actor: Any, request: RightsRequest, reason: str, today: dt.date | None = None,
                   expected_version: int | None = None) -> RightsRequest:
    """Extend the deadline by two months (once, with a reason, before the first deadline passes)."""
    today = today or timezone.localdate()
    if not reason.strip():
        raise ValidationError({"reason": ["Give the reason for the extension (complexity or number of requests)."]})
    with transaction.atomic():
        locked = _lock(request, expected_version)
        _ensure_open(locked)
        if locked.is_extended:
            raise Conflict("This request was already extended; the law allows one extension of two months.")
        if today > locked.due_on:
            raise Conflict("The deadline has passed: an extension must be decided, and the requester "
                           "told, within the first month.")
        locked.due_on = extended_due_on(locked.received_on)
        locked.extension_reason = reason.strip()
        locked.extended_at = timezone.now()
        locked.version += 1
        locked.save()
        _event(locked, "extended", actor, f"Due on {locked.due_on:%d %b %Y}: {locked.extension_reason}")
    return locked


def request_execute(*, actor: Any, request: RightsRequest, changes: dict[str, Any] | None = None,
                    note: str = "", expected_version: int | None = None, channel: str = "ui") -> RightsRequest:
    """Carry out a verified request and complete it.

    access/portability: the export is produced (and audited) for the requester;
    rectification: ``changes`` are applied to the person (or ``note`` says what was corrected);
    erasure: the person is erased everywhere; restriction: processing is frozen;
    objection: all marketing is withdrawn.
    """
    with transaction.atomic():
        locked = _lock(request, expected_version)
        _ensure_open(locked)
        if locked.status != Status.VERIFIED:
            raise Conflict("Verify the requester's identity before executing the request.")
        person = locked.person
        if person is None:
            raise ValidationError({"person": ["Link the request to the person first."]})
        outcome = _carry_out(locked, person, actor, changes, note, channel)
        # Erasure has just pseudonymised this very row: write only what completing changes.
        locked.status = Status.COMPLETED
        locked.completed_at = timezone.now()
        locked.completed_by = _user(actor)
        locked.outcome = outcome
        locked.version += 1
        locked.save(update_fields=["status", "completed_at", "completed_by", "outcome", "version", "updated_at"])
        _event(locked, "completed", actor, outcome)
    return locked


def request_refuse(*, actor: Any, request: RightsRequest, reason: str,
                   expected_version: int | None = None) -> RightsRequest:
    """Refuse (manifestly unfounded or excessive, identity not proven…) with the reason given."""
    if not reason.strip():
        raise ValidationError({"reason": ["Give the reason; the requester must be told it and their "
                                          "right to complain to the supervisory authority."]})
    return _close(actor, request, Status.REFUSED, reason.strip(), expected_version)


def request_cancel(*, actor: Any, request: RightsRequest, reason: str = "",
                   expected_version: int | None = None) -> RightsRequest:
    """The requester withdrew the request."""
    return _close(actor, request, Status.CANCELLED, reason.strip() or "Withdrawn by the requester.",
                  expected_version)


def is_overdue(request: RightsRequest, today: dt.date | None = None) -> bool:
    return request.is_open and request.due_on < (today or timezone.localdate())


# ------------------------------------------------------------------------------ helpers


def _carry_out(request: RightsRequest, person: Any, actor: Any, changes: dict[str, Any] | None,
               note: str, channel: str) -> str:
    kind = request.kind
    if kind in (Kind.ACCESS, Kind.PORTABILITY):
        from rapport.privacy.export import export_person

        export = export_person(person=person, actor=actor, channel=channel,
                               reason=f"{request.get_kind_display()} request")
        rows = sum(len(r["rows"]) for r in export["records"])
        return (f"Export prepared ({rows} records, {len(export['consent']['receipts'])} consent receipts); "
                "send it to the requester through a secure channel. " + note).strip()
    if kind == Kind.RECTIFICATION:
        if changes:
            from rapport.people.services import person_update

            services.ensure_not_restricted(person)
            person_update(actor=actor, person=person, changes=changes, channel=channel)
            return ("Corrected: " + ", ".join(sorted(changes)) + ". " + note).strip()
        if not note.strip():
            raise ValidationError({"note": ["Say what was corrected (or give the changes to apply)."]})
        return note.strip()
    if kind == Kind.ERASURE:
        from rapport.privacy.erasure import erase_person

        report = erase_person(actor=actor, person=person, reason="erasure request", channel=channel)
        return ("Already erased." if report.already_erased
                else f"Erased: {report.summary}; {report.suppressed} identifiers suppressed.")
    if kind == Kind.RESTRICTION:
        services.restrict_processing(actor=actor, person=person, channel=channel,
                                     reason=f"Restriction requested on {request.received_on:%d %b %Y}"
                                            + (f": {note.strip()}" if note.strip() else ""))
        return "Processing restricted: storage only until the restriction is lifted."
    if kind == Kind.OBJECTION:
        services.record_objection(actor=actor, person=person, channel=channel)
        return "Objection recorded: all marketing consents withdrawn."
    raise ValidationError({"kind": ["Unknown request kind."]})


def _close(actor: Any, request: RightsRequest, status: str, outcome: str,
           expected_version: int | None) -> RightsRequest:
    with transaction.atomic():
        locked = _lock(request, expected_version)
        _ensure_open(locked)
        locked.status = status
        locked.completed_at = timezone.now()
        locked.completed_by = _user(actor)
        locked.outcome = outcome
        locked.version += 1
        locked.save()
        _event(locked, status, actor, outcome)
    return locked


def _lock(request: RightsRequest, expected_version: int | None) -> RightsRequest:
    # of=("self",): PostgreSQL cannot lock the nullable side of the outer join to the person.
    locked = RightsRequest.objects.select_for_update(of=("self",)).select_related("person").get(pk=request.pk)
    if expected_version is not None and locked.version != expected_version:
        raise StaleVersion("This request was changed by someone else; reload it.")
    return locked


def _ensure_open(request: RightsRequest) -> None:
    if not request.is_open:
        raise Conflict(f"This request is {request.get_status_display().lower()}; it can no longer change.")


def _event(request: RightsRequest, action: str, actor: Any, note: str) -> None:
    RightsRequestEvent.objects.create(request=request, action=action, actor=_user(actor), note=note[:2000])


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None
