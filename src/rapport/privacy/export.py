"""C5 — access and portability: everything held about a person, driven by the data map.

``export_person`` builds one JSON document (schema ``rapport.person-export/1``, documented in
docs/privacy.md): every declared model's rows that belong to the person with every declared
field, what each field is for (category, purposes, lawful basis, retention), the consent
history as Kantara consent receipts, preferences, privacy status, rights requests and the
access audit of who viewed the data. The readable HTML page renders the same document.
Exporting is itself recorded in the access audit.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from rapport.access.audit import record_person_access
from rapport.privacy import selectors
from rapport.privacy.datamap import DATA_MAP, declared_models, rows_of
from rapport.privacy.models import RightsRequest

SCHEMA = "rapport.person-export/1"


def export_person(*, person: Any, actor: Any, channel: str = "ui", request: Any = None,
                  reason: str = "") -> dict[str, Any]:
    """The person's data as a JSON-ready dict; records the export in the access audit.

    Fields the exporting user's role may not see (S3) are left out, as everywhere else.
    """
    document = _without_hidden(build_export(person=person), actor)
    record_person_access(actor=actor, action="export", people=[person], channel=channel, request=request,
                         reason=reason or "data subject access / portability")
    return document


def build_export(*, person: Any) -> dict[str, Any]:
    """The export document without auditing (used by tests and by the rights request flow)."""
    records = []
    definitions: dict[str, dict[str, Any]] = {}
    # The profile first, then the rest of the people app (contact points, timeline), then the others.
    ordered = sorted(declared_models(), key=lambda pair: (pair[0].person_path != "",
                                                          not pair[0].model_label.startswith("people.")))
    for declaration, model in ordered:
        names = [n for n in declaration.fields if _has_field(model, n)]
        if not names:
            continue
        rows = []
        queryset = rows_of(declaration, model, person).order_by("pk")
        many = [n for n in names if model._meta.get_field(n).many_to_many]
        if many:
            queryset = queryset.prefetch_related(*many)
        for row in queryset:
            values = {name: _value(row, model._meta.get_field(name)) for name in names}
            rows.append({"id": _json(row.pk), "created_at": _json(getattr(row, "created_at", None)),
                         "fields": values})
        records.append({"model": declaration.model_label, "description": declaration.description,
                        "rows": rows})
        if not rows:
            continue  # what each field is for is told for the data actually held
        for name in names:
            fdecl = declaration.fields[name]
            definitions[f"{declaration.model_label}.{name}"] = {
                "category": str(fdecl.category), "sensitivity": str(fdecl.sensitivity),
                "purposes": list(fdecl.purposes), "lawful_basis": str(fdecl.lawful_basis),
                "retention": fdecl.retention, "description": fdecl.description,
            }
    preference, topics = selectors.preferences_of(person=person)
    status = selectors.status_of(person=person)
    audit = selectors.access_log(person=person)
    return {
        "schema": SCHEMA,
        "generated_at": timezone.now().isoformat(),
        "controller": selectors.controller_details(),
        "subject": {"person_id": str(person.pk), "display_name": getattr(person, "display_name", "")},
        "records": records,
        "field_definitions": definitions,
        "consent": {
            "state": [{"purpose": s.purpose, "channel": s.channel, "status": s.status,
                       "lawful_basis": s.lawful_basis, "since": _json(s.since), "expires_at": _json(s.expires_at)}
                      for s in selectors.consent_states(person=person)],
            "receipts": [selectors.consent_receipt(e) for e in selectors.consent_history(person=person)
                         .select_related("person")],
        },
        "preferences": _preferences(preference, topics),
        "privacy_status": {
            "restricted_since": _json(status.restricted_at) if status else None,
            "objected_to_marketing_since": _json(status.objected_at) if status else None,
            "erased_at": _json(status.erased_at) if status else None,
        },
        "rights_requests": [
            {"id": str(r.pk), "kind": r.kind, "status": r.status, "received_on": _json(r.received_on),
             "due_on": _json(r.due_on), "completed_at": _json(r.completed_at)}
            for r in RightsRequest.objects.filter(person_id=person.pk).order_by("received_on")],
        "access_log": {"available": audit is not None, "entries": audit or []},
    }


def _without_hidden(document: dict[str, Any], actor: Any) -> dict[str, Any]:
    import json

    from rapport.access.fieldsecurity import hidden_fields

    person_hidden = hidden_fields(actor, "people.Person")
    for record in document["records"]:
        if record["model"] == "access.AuditEntry" and person_hidden:
            for row in record["rows"]:  # field history carries old and new values of hidden fields
                changes = row["fields"].get("changes")
                if changes:
                    kept = {k: v for k, v in json.loads(changes).items() if k not in person_hidden}
                    row["fields"]["changes"] = json.dumps(kept, sort_keys=True) if kept else None
        hidden = hidden_fields(actor, record["model"])
        if not hidden:
            continue
        for row in record["rows"]:
            row["fields"] = {name: value for name, value in row["fields"].items() if name not in hidden}
        for name in hidden:
            document["field_definitions"].pop(f"{record['model']}.{name}", None)
    return document


def declared_labels() -> list[str]:
    return sorted(label for label, d in DATA_MAP.items() if d.person_path is not None)


def _preferences(preference: Any, topics: dict[str, bool]) -> dict[str, Any]:
    if preference is None:
        return {"stated": False, "topics": topics}
    return {
        "stated": True,
        "preferred_channel": preference.preferred_channel or None,
        "channels": {c: preference.allows(c) for c in ("email", "phone", "sms", "post", "social")},
        "max_per_week": preference.max_per_week,
        "quiet_hours": ({"start": preference.quiet_start.isoformat(), "end": preference.quiet_end.isoformat()}
                        if preference.quiet_start is not None else None),
        "topics": topics,
    }


def _has_field(model: type[models.Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except Exception:
        return False
    return True


def _value(row: models.Model, model_field: Any) -> Any:
    if model_field.many_to_many:
        return [str(item) for item in getattr(row, model_field.name).all()]
    if model_field.is_relation:
        return _json(getattr(row, model_field.attname))
    return _json(getattr(row, model_field.attname))


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    return value
