"""C1 — the data map: every personal-data field of every model, declared once, in code.

Each app declares its own fields in ``<app>/datamap.py`` by calling ``declare`` (imported by
``PrivacyConfig.ready``). The record of processing, the access export and erasure are all
driven by this map, and a test walks every installed model and fails on anything personal
that is not declared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    IDENTITY = "identity"
    CONTACT = "contact"
    DEMOGRAPHIC = "demographic"
    FINANCIAL = "financial"
    BEHAVIOURAL = "behavioural"
    SPECIAL = "special"
    TECHNICAL = "technical"


class Sensitivity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class LawfulBasis(StrEnum):
    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class ErasureAction(StrEnum):
    ANONYMISE = "anonymise"      # overwrite with a neutral value
    DELETE_ROW = "delete_row"    # delete the whole row (contact points, notes…)
    PSEUDONYMISE = "pseudonymise"  # keep the row, replace identifiers (records law requires)
    KEEP = "keep"                # not personal once the person row is anonymised (e.g. FK)


@dataclass(frozen=True)
class FieldDeclaration:
    model_label: str          # "people.Person"
    field: str                # model field name
    category: Category
    sensitivity: Sensitivity
    purposes: tuple[str, ...]
    lawful_basis: LawfulBasis
    retention: str            # human statement, e.g. "life of the relationship + 6 years"
    erasure: ErasureAction = ErasureAction.ANONYMISE
    description: str = ""


# A custom finder: (model, person) -> the queryset of the model's rows that are the person's.
RowFinder = Callable[[Any, Any], Any]
# Called by erasure with the person's rows before they are changed (files outside the database).
ErasureHook = Callable[[Any, Any], None]


@dataclass
class ModelDeclaration:
    model_label: str
    # ORM path from this model to Person ("" for Person, "person", …), or several paths (a row is
    # the person's when any of them leads to them: ``("left", "right")``); None when the rows
    # belong to no person (a model declared only to mark look-alike fields not personal).
    person_path: str | tuple[str, ...] | None
    description: str = ""
    fields: dict[str, FieldDeclaration] = field(default_factory=dict)
    # What erasure does with the whole row; None: decided field by field (DELETE_ROW on any
    # declared field deletes the row, otherwise each field is anonymised/pseudonymised).
    on_erasure: ErasureAction | None = None
    # Fields that look personal (by name or type) but are not, each with the reason.
    not_personal: dict[str, str] = field(default_factory=dict)
    # Rows reached by something a path cannot say (a generic relation: object_type + object_id).
    rows: RowFinder | None = None
    # Erasure calls this with the rows first, e.g. to delete stored files the rows point at.
    before_erasure: ErasureHook | None = None

    @property
    def deletes_rows(self) -> bool:
        if self.on_erasure is not None:
            return self.on_erasure == ErasureAction.DELETE_ROW
        return any(f.erasure == ErasureAction.DELETE_ROW for f in self.fields.values())


@dataclass(frozen=True)
class Exemption:
    """A whole model that is not customer personal data (staff accounts, framework tables)."""

    model_label: str
    reason: str


DATA_MAP: dict[str, ModelDeclaration] = {}
EXEMPT: dict[str, Exemption] = {}
# Functions person -> ids the person's data may still be filed under (people merged into them).
ALIAS_PROVIDERS: list[Callable[[Any], Any]] = []


def register_person_aliases(provider: Callable[[Any], Any]) -> None:
    """Let erasure and export find rows filed under a former id of the person (a merged record).

    Rows that keep a plain id (the access audit, import provenance, the gate's log) are not
    moved by a merge; the identity app registers a provider returning the ids merged into a
    person, so those rows are still found.
    """
    if provider not in ALIAS_PROVIDERS:
        ALIAS_PROVIDERS.append(provider)


def person_ids(person: Any) -> list[Any]:
    """The person's id and every former id their data may be filed under."""
    ids = [person.pk]
    for provider in ALIAS_PROVIDERS:
        ids += [pk for pk in provider(person) if pk not in ids]
    return ids


def declare_model(model_label: str, *, person_path: str | tuple[str, ...], description: str = "",
                  on_erasure: ErasureAction | None = None, rows: RowFinder | None = None,
                  before_erasure: ErasureHook | None = None) -> ModelDeclaration:
    """Declare that rows of ``model_label`` hold personal data reachable via ``person_path``.

    Any app can declare its models (identity's merge snapshots, later cases, deals…): erasure
    and the export walk every declaration, so nothing else needs to change. ``rows`` finds
    the rows when no ORM path leads to the person (a generic relation); ``before_erasure`` is
    called with the rows before erasure changes them (to delete stored files).
    """
    declaration = DATA_MAP.get(model_label)
    if declaration is None:
        declaration = DATA_MAP[model_label] = ModelDeclaration(model_label, person_path, description,
                                                               on_erasure=on_erasure)
    else:
        declaration.person_path = person_path
        declaration.description = description or declaration.description
        if on_erasure is not None:
            declaration.on_erasure = on_erasure
    declaration.rows = rows or declaration.rows
    declaration.before_erasure = before_erasure or declaration.before_erasure
    return declaration


def declare_not_personal(model_label: str, field_names: tuple[str, ...] | list[str], *,
                         reason: str) -> None:
    """Mark fields that look personal (by name or type) as not personal data, saying why.

    The model needs no other declaration when none of its fields is personal; its rows are
    then left alone by erasure and export.
    """
    if not reason.strip():
        raise ValueError("Say why these fields are not personal data.")
    declaration = DATA_MAP.get(model_label)
    if declaration is None:
        declaration = DATA_MAP[model_label] = ModelDeclaration(model_label, person_path=None)
    for name in field_names:
        declaration.not_personal[name] = reason


def exempt(model_label: str, *, reason: str) -> None:
    """Exempt a whole model from the data map (it holds no customer personal data), saying why."""
    if not reason.strip():
        raise ValueError("Say why this model holds no customer personal data.")
    EXEMPT[model_label] = Exemption(model_label, reason)


def personal_models() -> list[ModelDeclaration]:
    """Declarations whose rows belong to a person (export and erasure walk these)."""
    return [d for d in DATA_MAP.values() if d.person_path is not None and (d.fields or d.on_erasure)]


def declared_models(*, person_last: bool = False) -> Iterator[tuple[ModelDeclaration, Any]]:
    """(declaration, model class) for each installed model holding a person's data.

    ``person_last`` puts the person model itself last (erasure clears dependants first).
    """
    from django.apps import apps

    declarations = sorted(personal_models(), key=lambda d: (d.person_path == "") if person_last else 0)
    for declaration in declarations:
        try:
            model = apps.get_model(declaration.model_label)
        except LookupError:
            continue  # an app that is not installed in this build
        yield declaration, model


def rows_of(declaration: ModelDeclaration, model: Any, person: Any) -> Any:
    """The queryset of ``model`` rows that belong to ``person`` (by the declared path)."""
    from django.db.models import Q

    if declaration.rows is not None:
        return declaration.rows(model, person)
    if declaration.person_path == "":
        return model._default_manager.filter(pk=person.pk)
    paths = (declaration.person_path,) if isinstance(declaration.person_path, str) else declaration.person_path
    ids = person_ids(person)
    condition = Q()
    for path in paths or ():
        condition |= Q(**{f"{path}__in": ids}) if len(ids) > 1 else Q(**{path: person.pk})
    rows = model._default_manager.filter(condition)
    if any("__" in p for p in paths or ()):
        # A path through a to-many relation can reach one row several times: select by id.
        return model._default_manager.filter(pk__in=rows.values("pk"))
    return rows


def declare(model_label: str, field_name: str, *, category: Category, sensitivity: Sensitivity,
            purposes: tuple[str, ...] | list[str], lawful_basis: LawfulBasis, retention: str,
            erasure: ErasureAction = ErasureAction.ANONYMISE, description: str = "") -> None:
    """Declare one personal-data field. The model must have been declared with declare_model."""
    if model_label not in DATA_MAP:
        raise LookupError(f"declare_model({model_label!r}, person_path=...) first")
    DATA_MAP[model_label].fields[field_name] = FieldDeclaration(
        model_label, field_name, category, sensitivity, tuple(purposes), lawful_basis, retention,
        erasure, description,
    )


# ------------------------------------------------------------------ the structural check

# Field names (split on "_") that suggest personal data, and stems that do inside a word.
PERSONAL_TOKENS = frozenset({
    "email", "mail", "phone", "mobile", "tel", "fax", "name", "firstname", "lastname", "surname",
    "forename", "fullname", "address", "street", "postcode", "zipcode", "zip", "city", "birth",
    "birthday", "dob", "ip", "agent", "gender", "sex", "income", "salary", "passport", "ssn", "iban",
    "card", "ethnicity", "religion", "health", "nationality", "person", "people", "signature", "photo",
    "avatar", "location", "latitude", "longitude", "handle", "requester", "contact", "recipient",
    "customer",
})
PERSONAL_STEMS = ("email", "phone", "birth", "address", "name")


def looks_personal(model_field: Any) -> str | None:
    """Why a field looks like personal data (its name or type), or None."""
    from django.db import models

    if isinstance(model_field, models.EmailField | models.GenericIPAddressField):
        return f"its type is {type(model_field).__name__}"
    name = model_field.name.lower()
    tokens = set(name.split("_"))
    hit = tokens & PERSONAL_TOKENS
    if hit:
        return f"its name contains “{sorted(hit)[0]}”"
    for stem in PERSONAL_STEMS:
        if stem in name:
            return f"its name contains “{stem}”"
    return None


def undeclared_personal_data(models: list[Any] | None = None) -> list[str]:
    """Every installed model or field that holds personal data and is not in the data map.

    A model linking to ``people.Person`` (foreign key, one-to-one or many-to-many), or to a
    model whose rows belong to a person (a consent event, an import run…), must be declared
    with the path to the person, or exempted; every field that looks personal by name or
    type must be declared, or marked not personal with a reason; whole models can be
    exempted with a reason. Declarations of fields that do not exist are reported too.
    ``models`` narrows the walk (tests of the check itself); the default is every model.
    """
    from django.apps import apps
    from django.core.exceptions import FieldDoesNotExist

    person_model = apps.get_model("people", "Person")
    personal_labels = {d.model_label for d in personal_models()}
    problems: list[str] = []
    for model in (apps.get_models() if models is None else models):
        label = model._meta.label
        if label in EXEMPT:
            continue
        declaration = DATA_MAP.get(label)
        forward = [*model._meta.fields, *model._meta.many_to_many]
        person_links = [f for f in forward if f.is_relation and f.related_model is person_model]
        if (person_links or model is person_model) and (declaration is None or declaration.person_path is None):
            problems.append(f"{label}: holds people's data (links to people.Person) but is not declared: "
                            f"call declare_model({label!r}, person_path=...) in its app's datamap.py")
            continue
        owned_links = [f for f in forward if f.is_relation and f.related_model is not None
                       and f.related_model is not model and f.related_model._meta.label in personal_labels]
        if owned_links and declaration is None:
            targets = ", ".join(sorted({f.related_model._meta.label for f in owned_links}))
            problems.append(f"{label}: links to rows that belong to a person ({targets}) but is not declared: "
                            f"declare_model({label!r}, person_path=...) or exempt it with a reason")
            continue
        for model_field in forward:
            if model_field in person_links or model_field.primary_key:
                continue
            why = looks_personal(model_field)
            if why is None:
                continue
            if declaration is None or (model_field.name not in declaration.fields
                                       and model_field.name not in declaration.not_personal):
                problems.append(f"{label}.{model_field.name}: looks personal ({why}) but is neither declared "
                                "nor marked not personal (declare / declare_not_personal)")
        if declaration is not None:
            for name in [*declaration.fields, *declaration.not_personal]:
                try:
                    model._meta.get_field(name)
                except FieldDoesNotExist:
                    problems.append(f"{label}.{name}: declared in the data map but the field does not exist")
    return problems


# ------------------------------------------------------- the privacy app's own declarations

_C, _S, _B, _E = Category, Sensitivity, LawfulBasis, ErasureAction
_CONSENT = ("consent_records",)
_RIGHTS = ("data_protection",)
_PROOF = "life of the customer relationship + 6 years (proof of consent)"

declare_model("privacy.ConsentEvent", person_path="person",
              description="Consent ledger: grants and withdrawals with their proof")
declare("privacy.ConsentEvent", "origin_person_id", category=_C.IDENTITY, sensitivity=_S.LOW,
        purposes=_CONSENT, lawful_basis=_B.LEGAL_OBLIGATION, retention=_PROOF, erasure=_E.KEEP,
        description="Who the consent was captured for (kept pseudonymous after erasure)")
for _name, _cat in (("ip", _C.TECHNICAL), ("user_agent", _C.TECHNICAL), ("proof", _C.BEHAVIOURAL)):
    declare("privacy.ConsentEvent", _name, category=_cat, sensitivity=_S.MEDIUM, purposes=_CONSENT,
            lawful_basis=_B.LEGAL_OBLIGATION, retention=_PROOF, erasure=_E.PSEUDONYMISE,
            description="Proof of how consent was captured")
for _name in ("purpose", "channel", "granted", "lawful_basis", "source", "occurred_at"):
    declare("privacy.ConsentEvent", _name, category=_C.BEHAVIOURAL, sensitivity=_S.LOW, purposes=_CONSENT,
            lawful_basis=_B.LEGAL_OBLIGATION, retention=_PROOF, erasure=_E.KEEP,
            description="What was consented to or withdrawn, and when")

declare_model("privacy.ConsentState", person_path="person", on_erasure=_E.DELETE_ROW,
              description="Current consent, derived from the ledger")
for _name in ("purpose", "channel", "status", "lawful_basis", "since", "expires_at"):
    declare("privacy.ConsentState", _name, category=_C.BEHAVIOURAL, sensitivity=_S.LOW, purposes=("marketing",),
            lawful_basis=_B.LEGAL_OBLIGATION, retention="while the person is a customer", erasure=_E.DELETE_ROW)

declare_model("privacy.ContactPreference", person_path="person", on_erasure=_E.DELETE_ROW,
              description="How the person likes to be contacted")
for _name in ("preferred_channel", "email_allowed", "phone_allowed", "sms_allowed", "post_allowed",
              "social_allowed", "max_per_week", "quiet_start", "quiet_end"):
    declare("privacy.ContactPreference", _name, category=_C.BEHAVIOURAL, sensitivity=_S.LOW,
            purposes=("marketing", "service"), lawful_basis=_B.LEGITIMATE_INTERESTS,
            retention="while the person is a customer", erasure=_E.DELETE_ROW)

declare_model("privacy.TopicSubscription", person_path="person", on_erasure=_E.DELETE_ROW,
              description="Per-topic subscriptions")
for _name in ("topic", "subscribed"):
    declare("privacy.TopicSubscription", _name, category=_C.BEHAVIOURAL, sensitivity=_S.LOW,
            purposes=("marketing",), lawful_basis=_B.CONSENT, retention="while the person is a customer",
            erasure=_E.DELETE_ROW)

declare_model("privacy.Touch", person_path="person", on_erasure=_E.DELETE_ROW,
              description="Outbound contacts (frequency caps)")
for _name in ("channel", "purpose", "occurred_at", "reference"):
    declare("privacy.Touch", _name, category=_C.BEHAVIOURAL, sensitivity=_S.LOW, purposes=("marketing", "service"),
            lawful_basis=_B.LEGITIMATE_INTERESTS, retention="12 months (retention policy touch_log)",
            erasure=_E.DELETE_ROW)

def _decision_outcomes(model: Any, person: Any) -> Any:
    from rapport.privacy.gate import decision_outcomes_of

    return decision_outcomes_of(person)


# The gate's log: who got which outcome is packed (``DecisionPack``, person ids only, shared by
# many people, so never exported as rows); each outcome the person got is found through the
# packs and exported with its batch's time (docs/decisions/0005-packed-decision-log.md).
declare_model("privacy.DecisionOutcome", person_path=(), on_erasure=_E.KEEP, rows=_decision_outcomes,
              description="The contact gate's decisions about the person (accountability)")
for _name in ("allowed", "reasons", "messages"):
    declare("privacy.DecisionOutcome", _name, category=_C.BEHAVIOURAL, sensitivity=_S.LOW,
            purposes=("consent_records",), lawful_basis=_B.LEGAL_OBLIGATION,
            retention="24 months (retention policy decision_log)", erasure=_E.KEEP)

declare_model("privacy.PersonPrivacy", person_path="person", description="Restriction, objection, erasure status")
for _name, _erasure in (("restricted_at", _E.KEEP), ("restriction_reason", _E.ANONYMISE), ("objected_at", _E.KEEP),
                        ("erased_at", _E.KEEP)):
    declare("privacy.PersonPrivacy", _name, category=_C.BEHAVIOURAL, sensitivity=_S.LOW, purposes=_RIGHTS,
            lawful_basis=_B.LEGAL_OBLIGATION, retention="as long as the person record exists", erasure=_erasure)

declare_model("privacy.RightsRequest", person_path="person", description="Data-protection rights requests")
for _name in ("requester_name", "requester_contact"):
    declare("privacy.RightsRequest", _name, category=_C.CONTACT, sensitivity=_S.MEDIUM, purposes=_RIGHTS,
            lawful_basis=_B.LEGAL_OBLIGATION, retention="6 years after completion", erasure=_E.PSEUDONYMISE)
for _name in ("details", "verification_note", "extension_reason", "outcome"):
    declare("privacy.RightsRequest", _name, category=_C.BEHAVIOURAL, sensitivity=_S.MEDIUM, purposes=_RIGHTS,
            lawful_basis=_B.LEGAL_OBLIGATION, retention="6 years after completion", erasure=_E.ANONYMISE)
for _name in ("kind", "status", "received_on", "due_on", "completed_at"):
    declare("privacy.RightsRequest", _name, category=_C.BEHAVIOURAL, sensitivity=_S.LOW, purposes=_RIGHTS,
            lawful_basis=_B.LEGAL_OBLIGATION, retention="6 years after completion", erasure=_E.KEEP)

declare_model("privacy.RightsRequestEvent", person_path="request__person", description="History of each request")
declare("privacy.RightsRequestEvent", "note", category=_C.BEHAVIOURAL, sensitivity=_S.MEDIUM, purposes=_RIGHTS,
        lawful_basis=_B.LEGAL_OBLIGATION, retention="6 years after completion", erasure=_E.ANONYMISE)

declare_model("privacy.LegalHold", person_path="person", description="Legal holds")
declare("privacy.LegalHold", "reason", category=_C.BEHAVIOURAL, sensitivity=_S.MEDIUM, purposes=_RIGHTS,
        lawful_basis=_B.LEGAL_OBLIGATION, retention="until the legal matter ends", erasure=_E.ANONYMISE)

declare_not_personal("privacy.SuppressionList", ["name"], reason="the name of an imported list")
# Derived from contact points and kept by database triggers (decision 0018): a row is cleared
# when its point's value changes and deleted with the point, so erasure (which anonymises or
# deletes the points) leaves no digest of the old address behind.
exempt("privacy.ContactDigest", reason="keyed HMACs of contact points' values (the suppression key), an "
                                       "index for the gate: no value in clear, no person link; cleared and "
                                       "deleted with the contact point by triggers")
exempt("privacy.ContactDigestKey", reason="a fingerprint of the suppression key")

# Models with no customer personal data, and why.
exempt("access.User", reason="staff accounts: the business's own users, not customer data "
                             "(covered by the staff privacy notice, not this data map)")
exempt("auth.Permission", reason="framework metadata")
exempt("auth.Group", reason="framework metadata (staff permission groups)")
exempt("contenttypes.ContentType", reason="framework metadata")
exempt("sessions.Session", reason="staff sign-in sessions; expire after the session age")
exempt("django_tasks_database.DBTaskResult", reason="job queue: jobs take record ids, never personal values "
                                                     "(STYLE 9)")
exempt("core.WorkerHeartbeat", reason="worker liveness (host names of our own servers)")
exempt("core.ScheduledJob", reason="scheduler state")
exempt("core.IdempotencyRecord", reason="API replay cache; may copy a response that holds personal data: "
                                        "erasure deletes every record mentioning the person")
