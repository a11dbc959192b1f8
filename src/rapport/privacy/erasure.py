"""C5 — erasure (right to be forgotten), driven by the data map (C1).

``erase_person`` walks every model declared with a path to the person and, per declaration:
deletes the rows (``DELETE_ROW``), overwrites fields with neutral values (``ANONYMISE``),
replaces identifiers in rows the law requires to keep with a stable pseudonym
(``PSEUDONYMISE``), or leaves them (``KEEP``). Before that it stores keyed hashes of the
person's emails and phones on the suppression list (I5) so they cannot come back unnoticed,
and it marks the person erased in ``PersonPrivacy``. All in one transaction.

A later feature that stores personal data declares it in its ``datamap.py`` and is erased
with no change here; the structural test makes forgetting that impossible.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models, transaction
from django.db.models import Case, F, Q, TextField, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from rapport.access.audit import record_person_access
from rapport.privacy import suppression
from rapport.privacy.datamap import ErasureAction, ModelDeclaration, declared_models, rows_of
from rapport.privacy.models import SuppressionEntry
from rapport.privacy.services import ensure_no_legal_hold, lock_privacy_status

ERASED_TEXT = "[erased]"


@dataclass
class ErasureReport:
    person_id: Any
    already_erased: bool = False
    suppressed: int = 0
    models: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """What was done, in words staff read ("contact points: 2 deleted; people: 1 anonymised")."""
        parts = [f"{_plural_name(label)}: " + ", ".join(f"{n} {what}" for what, n in counts.items() if n)
                 for label, counts in self.models.items() if any(counts.values())]
        return "; ".join(parts) or "nothing to erase"


def _plural_name(label: str) -> str:
    from django.apps import apps

    try:
        return str(apps.get_model(label)._meta.verbose_name_plural)
    except LookupError:
        return label


def erase_person(*, actor: Any, person: Any, reason: str = "", channel: str = "ui",
                 suppress_identifiers: bool = True) -> ErasureReport:
    """Erase ``person`` everywhere the data map says they are; idempotent.

    Refused while a legal hold is active. The person row stays (anonymised) so that records
    the law requires to keep still point at a pseudonymous subject and so that the erasure
    itself is provable. ``suppress_identifiers=False`` is for retention purges: the person
    did not ask to be forgotten, so they may come back.
    """
    from rapport.people.models import ContactPoint

    report = ErasureReport(person.pk)
    with transaction.atomic():
        status = lock_privacy_status(person)
        if status.erased_at is not None:
            report.already_erased = True
            return report
        ensure_no_legal_hold(person)
        points = ContactPoint.objects.filter(person_id=person.pk)
        if suppress_identifiers:
            report.suppressed = suppression.suppress(
                emails=list(points.filter(kind="email").values_list("normalised", flat=True)),
                phones=list(points.filter(kind="phone").values_list("normalised", flat=True)),
                source=SuppressionEntry.Source.ERASURE, reason="erased person")
        # Find every declared row first: erasing one model may remove the link to another
        # (an import run is found through the people it touched).
        found = [(declaration, model, model._default_manager.filter(
                     pk__in=list(rows_of(declaration, model, person).values_list("pk", flat=True))))
                 for declaration, model in declared_models(person_last=True)]
        for declaration, _model, rows in found:
            if declaration.before_erasure is not None:
                declaration.before_erasure(rows, person)
        for declaration, model, rows in found:
            report.models[declaration.model_label] = _erase_rows(declaration, model, rows, person)
        report.models["core.IdempotencyRecord"] = {"deleted": _purge_api_replays(person)}
        now = timezone.now()
        status.erased_at = now
        status.erased_by = actor if getattr(actor, "is_authenticated", False) else None
        status.restriction_reason = ""
        status.save()
        record_person_access(actor=actor, action="erase", people=[person], channel=channel,
                             reason=reason, detail={"models": sorted(k for k, v in report.models.items()
                                                                      if any(v.values()))})
    return report


def _erase_rows(declaration: ModelDeclaration, model: type[models.Model], rows: Any,
                person: Any) -> dict[str, int]:
    if declaration.deletes_rows:
        count = rows.count()
        if count:
            rows.delete()
        return {"deleted": count}
    if declaration.on_erasure == ErasureAction.KEEP:
        return {"kept": rows.count()}
    updates: dict[str, Any] = {}
    many: list[str] = []
    anonymised = pseudonymised = 0
    for name, fdecl in declaration.fields.items():
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue  # a stale declaration: the data-map test reports it
        if fdecl.erasure == ErasureAction.KEEP:
            continue
        if model_field.many_to_many:
            many.append(name)
        elif fdecl.erasure == ErasureAction.PSEUDONYMISE:
            updates[name] = _pseudonym(model_field, declaration.model_label, person)
            pseudonymised += 1
        else:
            updates[name] = _neutral(model_field)
            anonymised += 1
    count = rows.count()
    if not count:
        return {"anonymised": 0}
    if any(f.name == "updated_at" for f in model._meta.concrete_fields):
        updates.setdefault("updated_at", timezone.now())
    if any(f.name == "version" for f in model._meta.concrete_fields) and "version" not in updates:
        updates["version"] = F("version") + 1
    if updates:
        rows.update(**updates)
    for name in many:
        for row in rows:
            getattr(row, name).clear()
    result = {}
    if anonymised or many:
        result["anonymised"] = count
    if pseudonymised:
        result["pseudonymised"] = count
    return result or {"kept": count}


def _neutral(model_field: models.Field) -> Any:
    """The value an anonymised field takes: empty, null, or its default."""
    if isinstance(model_field, models.JSONField):
        return model_field.get_default() if model_field.has_default() else None
    if model_field.null:
        return None
    if isinstance(model_field, models.CharField | models.TextField):
        if model_field.blank:
            return ""
        if model_field.has_default():
            return model_field.get_default()
        return ERASED_TEXT[: model_field.max_length] if model_field.max_length else ERASED_TEXT
    if model_field.has_default():
        return model_field.get_default()
    raise ImproperlyConfigured(f"{model_field.model._meta.label}.{model_field.name} cannot be anonymised: "
                               "make it nullable, give it a default, or declare another erasure action.")


def _pseudonym(model_field: models.Field, label: str, person: Any) -> Any:
    """A stable, unlinkable stand-in: the same for all of one person's rows, useless without our key.

    An empty value stays empty (a pseudonym would invent data that was never there).
    """
    if not isinstance(model_field, models.CharField | models.TextField):
        return _neutral(model_field)
    token = hmac.digest(suppression.suppression_key(),
                        f"pseudonym:{label}.{model_field.name}:{person.pk}".encode(), "sha256").hex()
    value = f"pseudonym-{token[:16]}"
    value = value[: model_field.max_length] if model_field.max_length else value
    if type(model_field) not in (models.CharField, models.TextField):
        return value  # a sealed or custom field: its own class prepares the value
    return Case(When(**{model_field.name: ""}, then=Value("")), default=Value(value),
                output_field=model_field.__class__(max_length=model_field.max_length))


def _purge_api_replays(person: Any) -> int:
    """Delete stored API responses (idempotency replays) that mention the person."""
    from rapport.core.models import IdempotencyRecord

    mentioning = IdempotencyRecord.objects.annotate(text=Cast("response_body", TextField())).filter(
        Q(text__contains=str(person.pk)) | Q(text__contains=person.pk.hex))
    deleted, _ = mentioning.delete()
    return deleted

