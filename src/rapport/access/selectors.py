"""S1–S8 reads: the audit trail (search, a person's access log, field history), attachments,
and what the settings pages list. Each read takes the user and applies their permissions.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from rapport.access.audit import about_person, person_entries
from rapport.access.fieldsecurity import hidden_fields
from rapport.access.models import (
    UNINDEXED_ACTION,
    Attachment,
    AuditEntry,
    RecordShare,
    RestrictedRecord,
)
from rapport.access.permissions import has_permission
from rapport.access.policy import access_context
from rapport.access.sharing import RECORD_TYPES, restrict
from rapport.core.errors import NotAllowed

# -------------------------------------------------------------------------------- audit


def audit_search(*, user: Any, actor: str = "", person_id: Any = None, action: str = "", channel: str = "",
                 object_type: str = "", since: dt.datetime | None = None,
                 until: dt.datetime | None = None) -> QuerySet[AuditEntry]:
    """Audit entries matching every filter, newest first (Auditors and Administrators)."""
    if not has_permission(user, "access.auditentry", "read"):
        raise NotAllowed("Your role may not read the audit trail.")
    entries = AuditEntry.objects.defer("changes").order_by("-seq")
    if actor:
        entries = entries.filter(actor_name__iexact=actor.strip())
    if person_id:
        # The person's own entries and the bulk entries covering them (decision 0008).
        entries = entries.filter(about_person(person_id))
    if action:
        entries = entries.filter(action=action)
        if action != UNINDEXED_ACTION:  # what lets the planner use the index without views
            entries = entries.exclude(action=UNINDEXED_ACTION)
    if channel:
        entries = entries.filter(channel=channel)
    if object_type:
        entries = entries.filter(object_type=object_type.lower())
    if since:
        entries = entries.filter(occurred_at__gte=since)
    if until:
        entries = entries.filter(occurred_at__lt=until)
    return entries


@dataclass(frozen=True)
class AccessLogLine:
    occurred_at: dt.datetime
    who: str
    action: str
    channel: str
    reason: str


def person_access_log(person_id: Any, *, limit: int | None = None) -> list[AccessLogLine]:
    """C5 — who viewed, searched, exported or changed this person's data, newest first.

    For the privacy access export; the caller decides what to show the data subject.
    """
    entries = (person_entries(person_id)
               .values_list("occurred_at", "actor_name", "action", "channel", "reason"))
    if limit:
        entries = entries[:limit]
    return [AccessLogLine(*row) for row in entries]


@dataclass(frozen=True)
class FieldChange:
    occurred_at: dt.datetime
    who: str
    action: str
    channel: str
    changes: list[tuple[str, Any, Any]]  # (field, old, new), hidden fields left out


def field_history(*, user: Any, record: Any, limit: int = 50) -> list[FieldChange]:
    """Who changed what from what to what on ``record``, newest first (FLS applied)."""
    label = record._meta.label_lower
    hidden = hidden_fields(user, record._meta.label)
    entries = (AuditEntry.objects.filter(object_type=label, object_id=str(record.pk), changes__isnull=False)
               .order_by("-seq")[:limit])
    history = []
    for entry in entries:
        try:
            values = json.loads(entry.changes or "{}")
        except ValueError:
            continue
        rows = [(name, pair[0], pair[1]) for name, pair in sorted(values.items())
                if name not in hidden and isinstance(pair, list) and len(pair) == 2]
        if rows:
            history.append(FieldChange(entry.occurred_at, entry.actor_name, entry.action, entry.channel, rows))
    return history


# --------------------------------------------------------------------------- attachments


def attachments_visible_to(user: Any) -> QuerySet[Attachment]:
    """S8 — attachments of records ``user`` may read; restricted ones only for the record's
    owner (or their managers), the uploader, and roles allowed restricted files."""
    attachments = Attachment.objects.all()
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return attachments.none()
    ctx = access_context(user)
    if ctx.is_administrator:
        return attachments
    if not has_permission(user, "access.attachment", "read"):
        return attachments.none()
    visible = Q()
    owned = Q()
    for label, record_type in RECORD_TYPES.items():
        records = restrict(record_type.model._default_manager.all(), user, "read")
        visible |= Q(object_type=label, object_id__in=records.values("pk"))
        owned |= Q(object_type=label, object_id__in=record_type.model._default_manager.filter(
            **{f"{record_type.owner_field}__in": list(ctx.principal_ids)}).values("pk"))
    attachments = attachments.filter(visible)
    if not has_permission(user, "access.attachment", "read_restricted"):
        attachments = attachments.filter(Q(restricted=False) | Q(uploaded_by_id__in=list(ctx.principal_ids))
                                         | owned)
    return attachments


def attachment_list(*, user: Any, record: Any) -> list[Attachment]:
    return list(attachments_visible_to(user).filter(object_type=record._meta.label_lower, object_id=record.pk)
                .select_related("uploaded_by").order_by("-created_at"))


def attachment_get(*, user: Any, attachment_id: Any) -> Attachment:
    """One attachment ``user`` may open; ``Attachment.DoesNotExist`` otherwise (→ 404)."""
    return attachments_visible_to(user).get(pk=attachment_id)


# ------------------------------------------------------------------------ person panel


def person_access_panel(*, user: Any, person: Any, request: Any = None) -> dict[str, Any]:
    """What the "Access" panel on the 360° view shows: restriction, shares, files, history."""
    from rapport.access.sharing import can

    label = person._meta.label_lower
    may_change = can(user, person, "update")
    shares = list(RecordShare.objects.filter(object_type=label, object_id=person.pk)
                  .select_related("user", "team", "role")) if may_change else []
    return {
        "restricted": RestrictedRecord.objects.filter(object_type=label, object_id=person.pk).first(),
        "may_change": may_change,
        "shares": shares,
        "attachments": attachment_list(user=user, record=person),
        "may_attach": may_change and has_permission(user, "access.attachment", "create"),
        "history": field_history(user=user, record=person, limit=10),
        "hidden": hidden_fields(user, "people.Person"),
        "demographics": _demographics(user, person),
    }


def _demographics(user: Any, person: Any) -> list[tuple[str, str]]:
    """The sealed demographics the user may see, as (label, value) rows."""
    hidden = hidden_fields(user, "people.Person")
    rows = []
    for name, label in (("birth_date", "Birth date"), ("gender", "Gender"), ("income_band", "Income band")):
        if name in hidden:
            continue
        value = getattr(person, name, None)
        display = getattr(person, f"get_{name}_display", None)
        rows.append((label, (display() if display and value else value) or "—"))
    return rows
