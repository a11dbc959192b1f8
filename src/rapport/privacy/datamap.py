"""C1 — the data map: every personal-data field of every model, declared once, in code.

Each app declares its own fields in ``<app>/datamap.py`` by calling ``declare`` (imported by
``PrivacyConfig.ready``). The record of processing, the access export and erasure are all
driven by this map, and a test walks every installed model and fails on anything personal
that is not declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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


@dataclass
class ModelDeclaration:
    model_label: str
    person_path: str          # ORM path from this model to Person ("" for Person, "person", …)
    description: str = ""
    fields: dict[str, FieldDeclaration] = field(default_factory=dict)


DATA_MAP: dict[str, ModelDeclaration] = {}


def declare_model(model_label: str, *, person_path: str, description: str = "") -> ModelDeclaration:
    """Declare that rows of ``model_label`` hold personal data reachable via ``person_path``."""
    declaration = DATA_MAP.get(model_label)
    if declaration is None:
        declaration = DATA_MAP[model_label] = ModelDeclaration(model_label, person_path, description)
    return declaration


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
