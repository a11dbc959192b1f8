"""P1–P3 — the only place people, organisations, employment and timeline entries are written.

Every function is keyword-only, validates, writes inside one transaction and records the
access audit entry for the change. Adapters (UI, API, CLI, jobs) parse input and call these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from rapport.access.audit import (
    diff,
    record_change,
    record_person_access,
    record_person_access_with,
)
from rapport.access.fieldsecurity import refused_writes
from rapport.core.api.prepared import TogetherInsert
from rapport.core.search import fold
from rapport.identity.normalise import InvalidIdentifier
from rapport.imports.fastnorm import normalise_point
from rapport.people.models import ContactPoint, Employment, Interaction, Organisation, Person, Tag
from rapport.privacy.suppression import ensure_not_suppressed

PERSON_FIELDS = ("honorific", "given_name", "middle_names", "family_name", "preferred_name",
                 "language", "timezone", "country", "notes", "birth_date", "gender", "income_band")
ORGANISATION_FIELDS = ("name", "domain", "notes")
# Once: the enum's ``values`` builds its list anew on every read (a tenth of a create's normalising).
CONTACT_POINT_KINDS = frozenset(ContactPoint.Kind.values)


@dataclass(frozen=True)
class ContactPointInput:
    kind: str
    value: str
    label: str = ""
    source: str = ""
    verified: bool = False
    primary: bool = False


@dataclass
class _NormalisedContactPoint:
    data: ContactPointInput
    normalised: str
    search_key: str
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- people


def person_create(*, actor: Any, given_name: str = "", family_name: str = "",
                  preferred_name: str = "", honorific: str = "", middle_names: str = "",
                  language: str = "", timezone_name: str = "", country: str = "", notes: str = "",
                  tags: Iterable[str] = (), owner: Any = None,
                  contact_points: Sequence[ContactPointInput] = (), channel: str = "ui") -> Person:
    """Create a person with their contact points. Refuses suppressed (erased) identifiers."""
    return person_create_with_points(
        actor=actor, given_name=given_name, family_name=family_name, preferred_name=preferred_name,
        honorific=honorific, middle_names=middle_names, language=language, timezone_name=timezone_name,
        country=country, notes=notes, tags=tags, owner=owner, contact_points=contact_points, channel=channel)[0]


def person_create_with_points(*, actor: Any, given_name: str = "", family_name: str = "",
                              preferred_name: str = "", honorific: str = "", middle_names: str = "",
                              language: str = "", timezone_name: str = "", country: str = "", notes: str = "",
                              tags: Iterable[str] = (), owner: Any = None,
                              contact_points: Sequence[ContactPointInput] = (),
                              channel: str = "ui") -> tuple[Person, list[ContactPoint]]:
    """``person_create``, also returning the contact point rows as written (one per value).

    The API answers a create with the stored person; with the rows in hand it need not read
    them back (three queries on every create).
    """
    person, normalised = _new_person(
        actor=actor, given_name=given_name, family_name=family_name, preferred_name=preferred_name,
        honorific=honorific, middle_names=middle_names, language=language, timezone_name=timezone_name,
        country=country, notes=notes, owner=owner, contact_points=contact_points)
    ensure_not_suppressed(  # the values were just normalised: not parsed a second time
        emails=[n.normalised for n in normalised if n.data.kind == ContactPoint.Kind.EMAIL],
        phones=[n.normalised for n in normalised if n.data.kind == ContactPoint.Kind.PHONE],
        normalised=True,
    )
    return person, _insert_new_person(actor=actor, person=person, normalised=normalised, tags=tags, channel=channel)


@dataclass(frozen=True)
class CheckedCreate:
    """What ``person_create_checked`` did: ``person`` is the new person (``written`` its contact
    point rows), or the existing one linked to (``linked``; ``written`` is None)."""

    person: Person
    written: list[ContactPoint] | None
    candidates: list[dict]
    linked: bool = False


def person_create_checked(*, actor: Any, on_duplicate: str = "create", given_name: str = "",
                          family_name: str = "", preferred_name: str = "", honorific: str = "",
                          middle_names: str = "", language: str = "", timezone_name: str = "",
                          country: str = "", notes: str = "", tags: Iterable[str] = (), owner: Any = None,
                          contact_points: Sequence[ContactPointInput] = (), channel: str = "api") -> CheckedCreate:
    """``person_create_with_points`` behind identity's real-time duplicate check (I2), whose one
    statement also looks the contact points up on the suppression list (one round trip for both).

    ``on_duplicate``: ``create`` (default: create anyway, report the candidates), ``refuse``
    (``DuplicateFound``, 409) or ``link`` (the best existing person instead of a new one). A
    suppressed identifier is refused (``Suppressed``) before the policy is applied; invalid
    input (``ValidationError``) before either. The check sees only people ``actor`` may see.
    """
    from rapport.identity import realtime
    from rapport.privacy.suppression import digests_to_check, refuse_hits

    realtime.check_policy(on_duplicate)
    person, normalised = _new_person(
        actor=actor, given_name=given_name, family_name=family_name, preferred_name=preferred_name,
        honorific=honorific, middle_names=middle_names, language=language, timezone_name=timezone_name,
        country=country, notes=notes, owner=owner, contact_points=contact_points)
    by_digest = digests_to_check(
        emails=[n.normalised for n in normalised if n.data.kind == ContactPoint.Kind.EMAIL],
        phones=[n.normalised for n in normalised if n.data.kind == ContactPoint.Kind.PHONE], normalised=True)
    # The duplicate check is given the values as sent (it folds them itself), as before.
    candidates, hits = realtime.candidates_and_suppressed(
        user=actor, given_name=given_name, family_name=family_name,
        emails=[p.value for p in contact_points if p.kind == ContactPoint.Kind.EMAIL],
        phones=[p.value for p in contact_points if p.kind == ContactPoint.Kind.PHONE],
        suppression_digests=list(by_digest), read_audit_head=not tags)  # for the one-statement create
    refuse_hits(by_digest, hits)
    existing = realtime.apply_policy(user=actor, on_duplicate=on_duplicate, candidates=candidates)
    if existing is not None:
        return CheckedCreate(existing, None, candidates, linked=True)
    written = _insert_new_person(actor=actor, person=person, normalised=normalised, tags=tags, channel=channel)
    return CheckedCreate(person, written, candidates)


def _new_person(*, actor: Any, given_name: str, family_name: str, preferred_name: str, honorific: str,
                middle_names: str, language: str, timezone_name: str, country: str, notes: str, owner: Any,
                contact_points: Sequence[ContactPointInput]) -> tuple[Person, list[_NormalisedContactPoint]]:
    """The person to create (not saved) and their points, normalised and validated."""
    person = Person(
        honorific=honorific.strip(), given_name=given_name.strip(), middle_names=middle_names.strip(),
        family_name=family_name.strip(), preferred_name=preferred_name.strip(),
        language=language.strip(), timezone=timezone_name.strip(), country=country.strip().upper(),
        notes=notes, owner=owner if owner is not None else _as_user(actor),
    )
    normalised = _normalise_contact_points(contact_points, region=person.country or None)
    if not (person.given_name or person.family_name or person.preferred_name or normalised):
        raise ValidationError({"given_name": ["Give a name or at least one contact point."]})
    set_name_keys(person)
    # The owner is the signed-in actor, just loaded: checking that the user exists would be one
    # more query on every create (the foreign key still guards it in the database).
    _validate(person, exclude=("owner",) if owner is None and person.owner_id is not None else ())
    return person, normalised


def _insert_new_person(*, actor: Any, person: Person, normalised: list[_NormalisedContactPoint],
                       tags: Iterable[str], channel: str) -> list[ContactPoint]:
    """Write a new person, their points, tags and audit entry in one transaction.

    On PostgreSQL without tags that is one statement (decision 0039): the person and their points
    are inserted inside the audit's append after the chain head this connection guesses, only if
    the guess holds, so the entry and the rows are written together or not at all; in autocommit
    the statement is the whole transaction. A stale guess is tried again after the head the
    statement read; when the audit gives up, the rows are written the usual way, below.
    """
    written = list(dict.fromkeys(_new_contact_points(person, normalised)))
    # One round trip for the person and their points, SQL built once (core.api.prepared).
    insert = TogetherInsert((Person, [person]), (ContactPoint, written))
    if not tags and insert.one_statement and record_person_access_with(
            actor=actor, action="create", person_id=person.pk, channel=channel, writes=insert.run_after):
        insert.done()
        return written
    with transaction.atomic():
        insert.run()
        insert.done()
        if tags:
            _set_tags(person, tags)
        record_person_access(actor=actor, action="create", people=[person], channel=channel)
    return written


def person_update(*, actor: Any, person: Person, changes: dict[str, Any],
                  tags: Iterable[str] | None = None, expected_version: int | None = None,
                  channel: str = "ui") -> Person:
    """Change scalar fields (and optionally tags); bumps ``version`` for optimistic concurrency."""
    unknown = set(changes) - set(PERSON_FIELDS) - {"owner", "timezone_name"}
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    refused = refused_writes(actor, "people.Person", ["timezone" if n == "timezone_name" else n for n in changes])
    if refused:  # S3: hidden and read-only fields are refused, whichever adapter sent them
        raise ValidationError({name: ["You may not change this field."] for name in refused})
    _ensure_may_change(person)
    with transaction.atomic():
        locked = Person.objects.select_for_update().get(pk=person.pk)
        if expected_version is not None and locked.version != expected_version:
            raise ValidationError({"version": ["This person was changed by someone else; reload."]},
                                  code="stale")
        before = {name: getattr(locked, name) for name in PERSON_FIELDS}
        for name, value in changes.items():
            attr = "timezone" if name == "timezone_name" else name
            if isinstance(value, str) and attr != "notes":
                value = value.strip()
            if attr == "country" and isinstance(value, str):
                value = value.upper()
            setattr(locked, attr, value)
        set_name_keys(locked)
        _validate(locked)
        changed = {k: (before[k], getattr(locked, k)) for k in before if before[k] != getattr(locked, k)}
        if "owner" in changes:
            changed["owner"] = ("", str(changes["owner"]))
        if tags is not None:
            changed.update(_set_tags(locked, tags))
        if changed:
            locked.version += 1
            locked.save()
            record_person_access(actor=actor, action="change", people=[locked], channel=channel,
                                 detail={"fields": sorted(changed)},
                                 changes={name: list(pair) for name, pair in changed.items()})
    person.refresh_from_db()
    return person


def person_touch(*, person: Person) -> None:
    """Bump the person's version after a change to something they own (contact points, jobs)."""
    Person.objects.filter(pk=person.pk).update(version=person.version + 1, updated_at=timezone.now())
    person.version += 1


def contact_point_add(*, actor: Any, person: Person, data: ContactPointInput,
                      channel: str = "ui") -> ContactPoint:
    """Add a contact point; a value the person already has only updates its flags."""
    _ensure_may_change(person)
    [normalised] = _normalise_contact_points([data], region=person.country or None)
    ensure_not_suppressed(
        emails=[normalised.normalised] if data.kind == ContactPoint.Kind.EMAIL else [],
        phones=[normalised.normalised] if data.kind == ContactPoint.Kind.PHONE else [],
        normalised=True,
    )
    with transaction.atomic():
        Person.objects.select_for_update().filter(pk=person.pk).first()
        [point] = _write_contact_points(person, [normalised])
        person_touch(person=person)
        record_person_access(actor=actor, action="change", people=[person], channel=channel,
                             detail={"contact_point": data.kind})
    return point


def contact_point_update(*, actor: Any, point: ContactPoint, changes: dict[str, Any],
                         channel: str = "ui") -> ContactPoint:
    allowed = {"value", "label", "source", "verified", "primary"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    with transaction.atomic():
        point = ContactPoint.objects.select_for_update().select_related("person").get(pk=point.pk)
        _ensure_may_change(point.person)
        if "value" in changes:
            try:
                result = normalise_point(point.kind, str(changes["value"]),
                                         region=point.person.country or None, cache_phones=False)
            except InvalidIdentifier as err:
                raise ValidationError({"value": [str(err)]}) from err
            ensure_not_suppressed(  # an edit must not bring back an erased person's identifier
                emails=[result.normalised] if point.kind == ContactPoint.Kind.EMAIL else [],
                phones=[result.normalised] if point.kind == ContactPoint.Kind.PHONE else [], normalised=True)
            point.value = str(changes["value"]).strip()
            point.normalised, point.search_key = result.normalised, result.search_key
        for name in ("label", "source", "verified"):
            if name in changes:
                setattr(point, name, changes[name])
        if changes.get("primary"):
            ContactPoint.objects.filter(person=point.person, kind=point.kind, primary=True).exclude(
                pk=point.pk).update(primary=False)
            point.primary = True
        elif changes.get("primary") is False:
            point.primary = False
        point.full_clean()
        point.save()
        person_touch(person=point.person)
        record_person_access(actor=actor, action="change", people=[point.person], channel=channel,
                             detail={"contact_point": point.kind})
    return point


def contact_point_remove(*, actor: Any, point: ContactPoint, channel: str = "ui") -> None:
    with transaction.atomic():
        person = point.person
        was_primary, kind = point.primary, point.kind
        point.delete()
        if was_primary:
            successor = ContactPoint.objects.filter(person=person, kind=kind).order_by("created_at").first()
            if successor is not None:
                successor.primary = True
                successor.save(update_fields=["primary", "updated_at"])
        person_touch(person=person)
        record_person_access(actor=actor, action="change", people=[person], channel=channel,
                             detail={"contact_point_removed": kind})


# --------------------------------------------------------------------------- organisations


def organisation_create(*, actor: Any, name: str, domain: str = "", parent: Organisation | None = None,
                        notes: str = "", tags: Iterable[str] = (), owner: Any = None) -> Organisation:
    organisation = Organisation(name=name.strip(), domain=domain.strip().lower(), parent=parent,
                                notes=notes, owner=owner if owner is not None else _as_user(actor))
    organisation.name_key = fold(organisation.name)
    _validate(organisation)
    with transaction.atomic():
        organisation.save()
        _set_tags(organisation, tags)
        record_change(actor=actor, record=organisation, action="create",
                      changes={name: [None, getattr(organisation, name)] for name in ORGANISATION_FIELDS})
    return organisation


def organisation_update(*, actor: Any, organisation: Organisation, changes: dict[str, Any],
                        tags: Iterable[str] | None = None) -> Organisation:
    unknown = set(changes) - set(ORGANISATION_FIELDS) - {"parent", "owner"}
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    with transaction.atomic():
        locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
        before = _organisation_snapshot(locked)
        for name, value in changes.items():
            if name == "domain" and isinstance(value, str):
                value = value.strip().lower()
            elif name == "name" and isinstance(value, str):
                value = value.strip()
            setattr(locked, name, value)
        if "parent" in changes:
            _check_no_cycle(locked, changes["parent"])
        locked.name_key = fold(locked.name)
        _validate(locked)
        tag_changes = _set_tags(locked, tags) if tags is not None else {}
        locked.version += 1
        locked.save()
        record_change(actor=actor, record=locked,
                      changes={**diff(before, _organisation_snapshot(locked)),
                               **{k: list(v) for k, v in tag_changes.items()}})
    organisation.refresh_from_db()
    return organisation


def _organisation_snapshot(organisation: Organisation) -> dict[str, Any]:
    return {"name": organisation.name, "domain": organisation.domain, "notes": organisation.notes,
            "parent": str(organisation.parent_id) if organisation.parent_id else None,
            "owner": str(organisation.owner_id) if organisation.owner_id else None}


def organisation_delete(*, actor: Any, organisation: Organisation) -> None:
    """Delete an organisation; its employment history would be lost, so refuse when it has any."""
    if organisation.employments.exists():
        raise ValidationError({"organisation": [
            "This organisation has employment history; it cannot be deleted."]})
    with transaction.atomic():
        Organisation.objects.filter(parent=organisation).update(parent=organisation.parent)
        organisation.delete()


def _check_no_cycle(organisation: Organisation, parent: Organisation | None) -> None:
    seen = {organisation.pk}
    node = parent
    while node is not None:
        if node.pk in seen:
            raise ValidationError({"parent": ["An organisation cannot be its own ancestor."]})
        seen.add(node.pk)
        node = node.parent


# ------------------------------------------------------------------------------ employment


def employment_start(*, actor: Any, person: Person, organisation: Organisation, title: str = "",
                     start_date: dt.date | None = None, end_other_jobs: bool = True,
                     channel: str = "ui") -> Employment:
    """Start a job. By default current jobs elsewhere end the day the new one starts (P2)."""
    _ensure_may_change(person)
    start_date = start_date or timezone.localdate()
    with transaction.atomic():
        Person.objects.select_for_update().filter(pk=person.pk).first()
        if end_other_jobs:
            current = Employment.objects.filter(person=person, end_date__isnull=True).exclude(
                organisation=organisation)
            for job in current:
                job.end_date = max(start_date, job.start_date) if job.start_date else start_date
                job.save(update_fields=["end_date", "updated_at"])
        job = Employment(person=person, organisation=organisation, title=title.strip(),
                         start_date=start_date)
        _validate(job)
        job.save()
        person_touch(person=person)
        record_person_access(actor=actor, action="change", people=[person], channel=channel,
                             detail={"employment": str(organisation.pk)})
    return job


def employment_update(*, actor: Any, employment: Employment, changes: dict[str, Any],
                      channel: str = "ui") -> Employment:
    allowed = {"title", "start_date", "end_date", "organisation"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    with transaction.atomic():
        for name, value in changes.items():
            setattr(employment, name, value)
        _validate(employment)
        employment.save()
        person_touch(person=employment.person)
        record_person_access(actor=actor, action="change", people=[employment.person],
                             channel=channel, detail={"employment": str(employment.pk)})
    return employment


def employment_end(*, actor: Any, employment: Employment, end_date: dt.date | None = None,
                   channel: str = "ui") -> Employment:
    return employment_update(actor=actor, employment=employment,
                             changes={"end_date": end_date or timezone.localdate()}, channel=channel)


# -------------------------------------------------------------------------------- timeline


def interaction_log(*, actor: Any, person: Person, channel: str, kind: str, summary: str,
                    direction: str = Interaction.Direction.INBOUND, body: str = "",
                    occurred_at: dt.datetime | None = None, sentiment: str = Interaction.Sentiment.NEUTRAL,
                    organisation: Organisation | None = None, source_system: str = "",
                    external_id: str = "", via: str = "ui") -> tuple[Interaction, bool]:
    """Add an event to the timeline. The same (source system, external id) is stored once.

    Returns ``(interaction, created)``; a repeat of an imported event returns the stored one.
    """
    _ensure_may_change(person)
    if external_id:
        existing = Interaction.objects.filter(source_system=source_system, external_id=external_id).first()
        if existing is not None:
            return existing, False
    interaction = Interaction(
        person=person, organisation=organisation, channel=channel, kind=kind, direction=direction,
        occurred_at=occurred_at or timezone.now(), summary=summary.strip(), body=body,
        sentiment=sentiment, source_system=source_system, external_id=external_id,
        created_by=_as_user(actor),
    )
    _validate(interaction)
    try:
        with transaction.atomic():
            interaction.save()
            record_person_access(actor=actor, action="change", people=[person], channel=via,
                                 detail={"interaction": kind})
    except IntegrityError:
        if not external_id:
            raise
        existing = Interaction.objects.get(source_system=source_system, external_id=external_id)
        return existing, False
    return interaction, True


def interaction_update(*, actor: Any, interaction: Interaction, changes: dict[str, Any],
                       via: str = "ui") -> Interaction:
    allowed = {"channel", "kind", "direction", "occurred_at", "summary", "body", "sentiment", "organisation"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    with transaction.atomic():
        for name, value in changes.items():
            setattr(interaction, name, value)
        _validate(interaction)
        interaction.save()
        record_person_access(actor=actor, action="change", people=[interaction.person], channel=via,
                             detail={"interaction": str(interaction.pk)})
    return interaction


def interaction_delete(*, actor: Any, interaction: Interaction, via: str = "ui") -> None:
    with transaction.atomic():
        person = interaction.person
        interaction.delete()
        record_person_access(actor=actor, action="change", people=[person], channel=via,
                             detail={"interaction_deleted": True})


# --------------------------------------------------------------------------------- helpers


def _ensure_may_change(person: Person) -> None:
    """C5: an erased person takes no new data; a restricted one is stored, not processed (Art. 18)."""
    from rapport.privacy.services import ensure_not_restricted

    ensure_not_restricted(person)


def _as_user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _validate(instance: Any, exclude: Sequence[str] = ()) -> None:
    instance.full_clean(exclude=list(exclude) or None, validate_unique=False, validate_constraints=True)


def set_name_keys(person: Person) -> None:
    """The folded name keys search and duplicate blocking use; call after any name change."""
    person.given_key = fold(person.given_name)[:100]
    person.family_key = fold(person.family_name)[:100]
    person.preferred_key = fold(person.preferred_name)[:100]


def _normalise_contact_points(points: Sequence[ContactPointInput], *,
                              region: str | None) -> list[_NormalisedContactPoint]:
    errors: dict[str, list[str]] = {}
    result = []
    for index, point in enumerate(points):
        if point.kind not in CONTACT_POINT_KINDS:
            errors[f"contact_points.{index}.kind"] = [
                f"Choose one of {', '.join(sorted(CONTACT_POINT_KINDS))}."]
            continue
        try:
            # the import path's exact shortcuts (decision 0027); an API worker sees each value once
            normalised = normalise_point(point.kind, point.value or "", region=region, cache_phones=False)
        except InvalidIdentifier as err:
            errors[f"contact_points.{index}.value"] = [str(err)]
            continue
        result.append(_NormalisedContactPoint(point, normalised.normalised, normalised.search_key))
    if errors:
        raise ValidationError(errors)
    return result


def _write_contact_points(person: Person, points: list[_NormalisedContactPoint]) -> list[ContactPoint]:
    """Store points, folding repeats of a value the person already has into the existing row."""
    written: list[ContactPoint] = []
    for item in points:
        data = item.data
        point = ContactPoint.objects.filter(person=person, kind=data.kind,
                                            normalised=item.normalised).first()
        if point is None:
            has_primary = ContactPoint.objects.filter(person=person, kind=data.kind, primary=True).exists()
            point = ContactPoint(person=person, kind=data.kind, value=data.value.strip(),
                                 normalised=item.normalised, search_key=item.search_key,
                                 label=data.label, source=data.source, verified=data.verified,
                                 primary=data.primary or not has_primary)
        else:
            point.verified = point.verified or data.verified
            point.label = point.label or data.label
            point.source = point.source or data.source
            point.primary = point.primary or data.primary
        if point.primary:
            ContactPoint.objects.filter(person=person, kind=data.kind, primary=True).exclude(
                pk=point.pk).update(primary=False)
        point.save()
        written.append(point)
    return written


def _new_contact_points(person: Person, points: list[_NormalisedContactPoint]) -> list[ContactPoint]:
    """``_write_contact_points`` for a new person: same folding and primary rules, worked out in
    memory (a new person has no rows to look up). Returns one instance per input point (a
    repeated value twice); the caller inserts them."""
    written: list[ContactPoint] = []
    by_value: dict[tuple[str, str], ContactPoint] = {}
    primary: dict[str, ContactPoint] = {}
    for item in points:
        data = item.data
        point = by_value.get((data.kind, item.normalised))
        if point is None:
            point = ContactPoint(person=person, kind=data.kind, value=data.value.strip(),
                                 normalised=item.normalised, search_key=item.search_key,
                                 label=data.label, source=data.source, verified=data.verified,
                                 primary=data.primary or data.kind not in primary)
            by_value[(data.kind, item.normalised)] = point
        else:
            point.verified = point.verified or data.verified
            point.label = point.label or data.label
            point.source = point.source or data.source
            point.primary = point.primary or data.primary
        if point.primary:
            previous = primary.get(data.kind)
            if previous is not None and previous is not point:
                previous.primary = False
            primary[data.kind] = point
        written.append(point)
    return written


def _set_tags(instance: Person | Organisation, names: Iterable[str]) -> dict[str, tuple[Any, Any]]:
    wanted = sorted({n.strip() for n in names if n and n.strip()})
    before = sorted(instance.tags.values_list("name", flat=True)) if instance.pk else []
    if wanted == before:
        return {}
    tags = []
    for name in wanted:
        tag, _ = Tag.objects.get_or_create(name=name[:64])
        tags.append(tag)
    instance.tags.set(tags)
    return {"tags": (before, wanted)}
