"""I4 — merge two people into one, and undo it exactly (``merge_people`` / ``unmerge``).

Related records are found generically: every foreign key and one-to-one to ``people.Person``
(hidden ones and many-to-many link tables included, via ``Person._meta.get_fields``), so a
model added later is moved with no change here. Rows of the merged side that would break a
unique constraint on the survivor (one ``ContactPreference`` each, one ``ConsentState`` per
purpose and channel, a tag both have…) are kept in the merge record and deleted; privacy rows
are first folded into the survivor's conservatively (an objection, an opt-out or an
unsubscription on either side wins). Consent is re-derived by the privacy core
(``recompute_consent_state``), which carries a withdrawal of either side over.

The merged person's row is then deleted and kept, every column, in the ``MergeRecord`` — an
empty tombstone would otherwise show in every list, search and duplicate run, which the
identity app cannot filter out of the people app's selectors. ``unmerge`` re-creates it with
the same id and moves back exactly the rows the merge moved: rows added to the survivor
after the merge stay, and survivor fields edited after the merge keep their new value.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from rapport.access.audit import record_person_access
from rapport.core.errors import DomainError
from rapport.identity.models import MergeRecord
from rapport.people.services import set_name_keys

# Person fields decided by survivorship (the editable profile; keys follow the names).
SURVIVORSHIP_FIELDS = ("honorific", "given_name", "middle_names", "family_name", "preferred_name",
                       "language", "timezone", "country", "notes", "birth_date", "gender", "income_band",
                       "owner")
STRATEGIES = ("most_recent", "most_trusted")
CHOICES = ("survivor", "merged", "both")  # "both" only for notes: the two texts joined
# Bookkeeping about identities, not records of the person: removed with the merged person
# and restored by unmerge, never re-pointed (a suggestion "A ~ B" must not become "A ~ A").
NOT_MOVED = ("identity.DuplicateSuggestion", "identity.NotDuplicate")
# Fields folded conservatively when both people have a row: the more protective value wins.
CONSERVATIVE: dict[str, dict[str, str]] = {
    "privacy.PersonPrivacy": {"objected_at": "earliest"},
    "privacy.ContactPreference": {"email_allowed": "all", "phone_allowed": "all", "sms_allowed": "all",
                                  "post_allowed": "all", "social_allowed": "all", "max_per_week": "lowest"},
    "privacy.TopicSubscription": {"subscribed": "all"},
}


class MergeRefused(DomainError):
    status_code = 409
    title = "Merge refused"
    code = "merge_refused"


class UnmergeRefused(DomainError):
    status_code = 409
    title = "Unmerge refused"
    code = "unmerge_refused"


# ---------------------------------------------------------------------------------- merge


def merge_people(*, survivor: Any, merged: Any, actor: Any, field_choices: Mapping[str, str] | None = None,
                 strategy: str = "most_recent", reason: str = "", channel: str = "ui",
                 probability: float | None = None) -> MergeRecord:
    """Merge ``merged`` into ``survivor``; returns the record ``unmerge`` needs.

    ``field_choices`` is the reviewer's pick per field ("survivor", "merged"; "both" for notes);
    other fields follow ``strategy``: "most_recent" (the more recently updated person's value
    when it has one) or "most_trusted" (the person whose contact points come from the source
    ranked higher in ``RAPPORT_IDENTITY_SOURCE_TRUST``). Every contact point is kept.
    """
    from rapport.people.models import Person
    from rapport.privacy.services import ensure_not_restricted, recompute_consent_state

    field_choices = dict(field_choices or {})
    _check_choices(field_choices, strategy)
    if survivor.pk == merged.pk:
        raise MergeRefused("A person cannot be merged with themselves.",
                           field_errors={"merged": ["Choose two different people."]})
    with transaction.atomic():
        # Rows locked in one order (smaller id first) so two merges never deadlock.
        locked = {p.pk: p for p in Person.objects.select_for_update().filter(
            pk__in=sorted([survivor.pk, merged.pk], key=str)).order_by("pk")}
        if len(locked) != 2:
            raise MergeRefused("One of these people no longer exists (already merged?).")
        survivor, merged = locked[survivor.pk], locked[merged.pk]
        for person in (survivor, merged):
            ensure_not_restricted(person)
        plan = survivorship_plan(survivor=survivor, merged=merged, field_choices=field_choices,
                                 strategy=strategy)
        snapshot: dict[str, Any] = {
            "merged_person": _dump(merged),
            "survivor_before": {name: _field_value(survivor, name) for name in SURVIVORSHIP_FIELDS},
            "moved": {}, "deleted": {}, "updated": {}, "created": {}, "plan": plan,
        }
        for relation in person_relations():
            _merge_relation(relation, survivor, merged, snapshot)
        changes = _apply_plan(survivor, merged, plan)
        snapshot["survivor_after"] = {name: _field_value(survivor, name) for name in SURVIVORSHIP_FIELDS}
        merged_id, merged_name = merged.pk, merged.display_name
        merged.delete()
        before_events = set(_ids("privacy.ConsentEvent", survivor))
        recompute_consent_state(person=survivor)
        carried = [str(pk) for pk in set(_ids("privacy.ConsentEvent", survivor)) - before_events]
        if carried:
            snapshot["created"]["privacy.ConsentEvent"] = carried
        note = _timeline_note(survivor, actor, f"Merged with {merged_name}",
                              reason or "Duplicate records merged into this one.")
        if note is not None:
            snapshot["created"]["people.Interaction"] = [str(note.pk)]
        record = MergeRecord.objects.create(
            survivor=survivor, merged_person_id=merged_id, field_choices=field_choices, reason=reason[:300],
            probability=probability, snapshot=_jsonable(snapshot), merged_by=_as_user(actor))
        record_person_access(actor=actor, action="merge", people=[survivor, merged_id], channel=channel,
                             reason=reason, detail={"merge_record": str(record.pk), "survivor": str(survivor.pk),
                                                    "merged": str(merged_id)},
                             changes={k: [str(a), str(b)] for k, (a, b) in changes.items()})
    return record


def survivorship_plan(*, survivor: Any, merged: Any, field_choices: Mapping[str, str] | None = None,
                      strategy: str = "most_recent") -> dict[str, str]:
    """Whose value each field takes: "survivor", "merged" or "both" (notes)."""
    field_choices = dict(field_choices or {})
    preferred = _preferred_side(survivor, merged, strategy)
    plan = {}
    for name in SURVIVORSHIP_FIELDS:
        if name in field_choices:
            plan[name] = field_choices[name]
            continue
        mine, theirs = _field_value(survivor, name), _field_value(merged, name)
        if name == "notes" and mine and theirs and mine != theirs:
            plan[name] = "both"
        elif _empty(mine) and not _empty(theirs):
            plan[name] = "merged"
        elif _empty(theirs) or preferred == "survivor":
            plan[name] = "survivor"
        else:
            plan[name] = "merged"
    return plan


def person_relations() -> list[models.ForeignKey]:
    """Every foreign key (one-to-one included) from any installed model to Person."""
    from rapport.people.models import Person

    fields = {relation.field for relation in Person._meta.get_fields(include_hidden=True)
              if relation.auto_created and not relation.concrete
              and (relation.one_to_many or relation.one_to_one)}
    return sorted(fields, key=lambda f: (f.model._meta.label, f.name))


# -------------------------------------------------------------------------------- unmerge


def unmerge(*, merge_record: MergeRecord, actor: Any, channel: str = "ui") -> tuple[Any, Any]:
    """Undo a merge: the merged person comes back with their own records; returns both people."""
    from rapport.people.models import Person
    from rapport.privacy.services import recompute_consent_state

    with transaction.atomic():
        record = MergeRecord.objects.select_for_update().get(pk=merge_record.pk)
        if record.status != MergeRecord.Status.MERGED:
            raise UnmergeRefused("This merge was already undone.")
        if Person.objects.filter(pk=record.merged_person_id).exists():
            raise UnmergeRefused("The merged person's id is in use again; this merge cannot be undone.")
        survivor = Person.objects.select_for_update().get(pk=record.survivor_id)
        snapshot = record.snapshot
        merged = _restore_row(Person, snapshot["merged_person"])
        if merged is None:
            raise UnmergeRefused("The merged person cannot be restored.")
        for label, ids in snapshot.get("created", {}).items():
            model = _model(label)
            if model is not None:
                model._default_manager.filter(pk__in=ids).delete()
        for label, by_field in snapshot.get("moved", {}).items():
            model = _model(label)
            if model is None:
                continue
            for field_name, ids in by_field.items():
                attname = model._meta.get_field(field_name).attname
                model._default_manager.filter(pk__in=ids, **{attname: survivor.pk}).update(
                    **{attname: merged.pk})
        for label, rows in snapshot.get("updated", {}).items():
            model = _model(label)
            if model is None:
                continue
            for pk, before, after in rows:
                row = model._default_manager.filter(pk=pk).first()
                if row is None:
                    continue
                # A value changed after the merge is the survivor's newer choice: it stays.
                restore = {k: _from_json(model, k, v) for k, v in before.items()
                           if _json_value(getattr(row, k)) == after.get(k)}
                if restore:
                    model._default_manager.filter(pk=pk).update(**restore)
        for label, rows in snapshot.get("deleted", {}).items():
            model = _model(label)
            if model is not None:
                for row in rows:
                    _restore_row(model, row)
        changes = _restore_survivor(survivor, snapshot)
        recompute_consent_state(person=survivor)
        recompute_consent_state(person=merged)
        record.status = MergeRecord.Status.UNMERGED
        record.unmerged_by = _as_user(actor)
        record.unmerged_at = timezone.now()
        # The snapshot was only kept to undo the merge; both people hold their data again.
        record.snapshot = {"unmerged": True}
        record.save(update_fields=["status", "unmerged_by", "unmerged_at", "snapshot", "updated_at"])
        record_person_access(actor=actor, action="unmerge", people=[survivor, merged], channel=channel,
                             detail={"merge_record": str(record.pk)}, changes=changes)
    return survivor, merged


# -------------------------------------------------------------------------------- helpers


def _check_choices(field_choices: Mapping[str, str], strategy: str) -> None:
    errors: dict[str, list[str]] = {}
    if strategy not in STRATEGIES:
        errors["strategy"] = [f"Choose one of: {', '.join(STRATEGIES)}."]
    for name, choice in field_choices.items():
        if name not in SURVIVORSHIP_FIELDS:
            errors[f"field_choices.{name}"] = ["Unknown field."]
        elif choice not in CHOICES or (choice == "both" and name != "notes"):
            errors[f"field_choices.{name}"] = ['Choose "survivor" or "merged"' +
                                               (' or "both".' if name == "notes" else ".")]
    if errors:
        raise ValidationError(errors)


def _preferred_side(survivor: Any, merged: Any, strategy: str) -> str:
    if strategy == "most_trusted":
        ranks = [_trust_rank(p) for p in (survivor, merged)]
        if ranks[0] != ranks[1]:
            return "survivor" if ranks[0] < ranks[1] else "merged"
    return "merged" if merged.updated_at > survivor.updated_at else "survivor"


def _trust_rank(person: Any) -> int:
    """Position of the person's best contact-point source in RAPPORT_IDENTITY_SOURCE_TRUST."""
    from rapport.people.models import ContactPoint

    trust = [s.lower() for s in getattr(settings, "RAPPORT_IDENTITY_SOURCE_TRUST", ["staff", "portal", "import"])]
    sources = {s.lower() for s in ContactPoint.objects.filter(person_id=person.pk).values_list("source", flat=True)}
    ranks = [trust.index(s) for s in sources if s in trust]
    return min(ranks) if ranks else len(trust)


def _field_value(person: Any, name: str) -> Any:
    return person.owner_id if name == "owner" else getattr(person, name)


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _apply_plan(survivor: Any, merged: Any, plan: Mapping[str, str]) -> dict[str, tuple[Any, Any]]:
    changes = {}
    for name, side in plan.items():
        before = _field_value(survivor, name)
        if side == "merged":
            value = _field_value(merged, name)
        elif side == "both":
            value = "\n\n".join(t for t in (survivor.notes, merged.notes) if t)
        else:
            continue
        if value != before:
            setattr(survivor, "owner_id" if name == "owner" else name, value)
            changes[name] = (before, value)
    set_name_keys(survivor)
    survivor.version += 1
    survivor.save()
    return changes


def _restore_survivor(survivor: Any, snapshot: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Give back the survivor's own values, except fields edited since the merge."""
    before, after = snapshot["survivor_before"], snapshot["survivor_after"]
    changes = {}
    for name in SURVIVORSHIP_FIELDS:
        current = _json_value(_field_value(survivor, name))
        if current == after.get(name) and after.get(name) != before.get(name):
            attname = "owner_id" if name == "owner" else name
            setattr(survivor, attname, _from_json(type(survivor), attname, before.get(name)))
            changes[name] = [str(current), str(before.get(name))]
    set_name_keys(survivor)
    survivor.version += 1
    survivor.save()
    return changes


def _merge_relation(fk: models.ForeignKey, survivor: Any, merged: Any, snapshot: dict[str, Any]) -> None:
    model = fk.model
    label = model._meta.label
    manager = model._default_manager
    rows = manager.filter(**{fk.attname: merged.pk})
    if label in NOT_MOVED:
        dumps = [_dump(row) for row in rows]
        if dumps:
            snapshot["deleted"].setdefault(label, []).extend(dumps)
            rows.delete()
        return
    conflicts = _conflicting_rows(fk, survivor, merged)
    for merged_row, survivor_row in conflicts:
        rule = CONSERVATIVE.get(label)
        if rule and survivor_row is not None:
            _fold_conservatively(model, rule, survivor_row, merged_row, snapshot)
        snapshot["deleted"].setdefault(label, []).append(_dump(merged_row))
    if conflicts:
        manager.filter(pk__in=[row.pk for row, _ in conflicts]).delete()
    ids = [str(pk) for pk in manager.filter(**{fk.attname: merged.pk}).values_list("pk", flat=True)]
    if ids:
        snapshot["moved"].setdefault(label, {})[fk.name] = ids
        manager.filter(**{fk.attname: merged.pk}).update(**{fk.attname: survivor.pk})
    if label == "people.ContactPoint" and ids:
        # One primary of each kind: the survivor's stays primary, the merged side's is kept
        # (every contact point is kept) but no longer primary.
        survivor_kinds = set(manager.filter(person_id=survivor.pk, primary=True).exclude(
            pk__in=ids).values_list("kind", flat=True))
        demote = manager.filter(pk__in=ids, primary=True, kind__in=survivor_kinds)
        for row in demote:
            snapshot["updated"].setdefault(label, []).append([str(row.pk), {"primary": True}, {"primary": False}])
        demote.update(primary=False)


def _conflicting_rows(fk: models.ForeignKey, survivor: Any, merged: Any) -> list[tuple[Any, Any]]:
    """Rows of the merged side that would collide with a survivor row on a unique constraint."""
    model = fk.model
    manager = model._default_manager
    unique_sets: list[tuple[tuple[str, ...], Any]] = []
    if fk.unique:
        unique_sets.append(((), None))
    for together in model._meta.unique_together:
        if fk.name in together or fk.attname in together:
            unique_sets.append((tuple(n for n in together if n not in (fk.name, fk.attname)), None))
    for constraint in model._meta.constraints:
        fields = getattr(constraint, "fields", ())
        if isinstance(constraint, models.UniqueConstraint) and (fk.name in fields or fk.attname in fields):
            unique_sets.append((tuple(n for n in fields if n not in (fk.name, fk.attname)), constraint.condition))
    found: dict[Any, tuple[Any, Any]] = {}
    for others, condition in unique_sets:
        mine = manager.filter(**{fk.attname: survivor.pk})
        theirs = manager.filter(**{fk.attname: merged.pk})
        if condition is not None:
            mine, theirs = mine.filter(condition), theirs.filter(condition)
        attnames = [model._meta.get_field(n).attname for n in others]
        taken = {tuple(getattr(row, a) for a in attnames): row for row in mine}
        for row in theirs:
            key = tuple(getattr(row, a) for a in attnames)
            if key in taken and row.pk not in found:
                found[row.pk] = (row, taken[key])
    return list(found.values())


def _fold_conservatively(model: Any, rule: Mapping[str, str], survivor_row: Any, merged_row: Any,
                         snapshot: dict[str, Any]) -> None:
    before, after = {}, {}
    for name, how in rule.items():
        mine, theirs = getattr(survivor_row, name), getattr(merged_row, name)
        if how == "all":
            value = bool(mine) and bool(theirs)
        else:  # earliest / lowest: the one that is set, or the smaller of the two
            present = [v for v in (mine, theirs) if v is not None]
            value = min(present) if present else None
        if value != mine:
            before[name], after[name] = _json_value(mine), _json_value(value)
    if after:
        model._default_manager.filter(pk=survivor_row.pk).update(
            **{k: _from_json(model, k, v) for k, v in after.items()})
        snapshot["updated"].setdefault(model._meta.label, []).append([str(survivor_row.pk), before, after])


def _timeline_note(person: Any, actor: Any, summary: str, body: str) -> Any:
    from rapport.people.models import Interaction

    return Interaction.objects.create(
        person=person, channel=Interaction.Channel.INTERNAL, kind=Interaction.Kind.NOTE,
        direction=Interaction.Direction.INTERNAL, occurred_at=timezone.now(), summary=summary[:300], body=body,
        source_system="rapport.identity", created_by=_as_user(actor))


def _ids(label: str, person: Any) -> list[Any]:
    model = _model(label)
    if model is None:
        return []
    return list(model._default_manager.filter(person_id=person.pk).values_list("pk", flat=True))


def _model(label: str) -> Any:
    try:
        return apps.get_model(label)
    except LookupError:
        return None


def _dump(row: models.Model) -> dict[str, Any]:
    """Every column of a row, JSON-ready (values as Python holds them, dates as ISO text)."""
    return {f.attname: _json_value(getattr(row, f.attname)) for f in row._meta.concrete_fields}


def _restore_row(model: Any, dump: Mapping[str, Any]) -> Any | None:
    """Insert a dumped row again with its own id and timestamps.

    A row pointing at something deleted since the merge (the other person of a suggestion was
    merged away, a tag was removed) comes back without that link, or not at all when the link
    is required.
    """
    values = {name: _from_json(model, name, value) for name, value in dump.items()}
    for fk in model._meta.concrete_fields:
        target = values.get(fk.attname)
        if not fk.is_relation or target is None or not fk.db_constraint:
            continue
        if not fk.related_model._default_manager.filter(pk=target).exists():
            if not fk.null:
                return None
            values[fk.attname] = None
    row = model(**values)
    row.save(force_insert=True)
    stamps = {f.attname: values[f.attname] for f in model._meta.concrete_fields
              if (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)) and f.attname in values}
    if stamps:
        model._default_manager.filter(pk=row.pk).update(**stamps)
        for name, value in stamps.items():
            setattr(row, name, value)
    return row


def _from_json(model: Any, attname: str, value: Any) -> Any:
    field = next(f for f in model._meta.concrete_fields if f.attname == attname)
    if value is None or isinstance(field, models.JSONField):
        return value
    if field.is_relation:
        return field.target_field.to_python(value)
    return field.to_python(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return _json_value(value)


def _as_user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def merge_history(*, person: Any) -> Iterable[MergeRecord]:
    """Merges into this person, newest first (the 360° panel and the API show these)."""
    return MergeRecord.objects.filter(survivor_id=person.pk).select_related("merged_by", "unmerged_by")

