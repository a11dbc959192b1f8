"""S1 — the roles a small business starts with, their field security and sharing defaults.

Pure data plus ``seed_access(apps)``, which the data migration runs with historical models
(and which ``policy`` runs again if the rows were wiped, e.g. by a test database flush).
Existing rows are never overwritten: the settings pages own them after the first seed.
"""

from __future__ import annotations

from typing import Any

PERSON = "people.person"
ORGANISATION = "people.organisation"
ATTACHMENT = "access.attachment"
AUDIT = "access.auditentry"
SETTINGS = "access.settings"

ROLE_SEEDS: list[dict[str, Any]] = [
    {
        "key": "administrator", "name": "Administrator", "is_administrator": True,
        "description": "Runs Rapport: users, roles, sharing, security settings; sees everything.",
        "permissions": {},
    },
    {
        "key": "sales-manager", "name": "Sales manager",
        "description": "Leads the sales team; sees what their reports see through the hierarchy.",
        "permissions": {
            PERSON: ["create", "read", "update", "delete", "export", "merge"],
            ORGANISATION: ["create", "read", "update", "delete", "export", "merge"],
            ATTACHMENT: ["create", "read", "read_restricted", "delete"],
        },
    },
    {
        "key": "sales-rep", "name": "Sales rep", "is_default": True, "requires_reason": True,
        "description": "Works their own customers and accounts.",
        "permissions": {
            PERSON: ["create", "read", "update", "delete", "export", "merge"],
            ORGANISATION: ["create", "read", "update", "export"],
            ATTACHMENT: ["create", "read", "delete"],
        },
    },
    {
        "key": "service-agent", "name": "Service agent", "requires_reason": True,
        "description": "Handles enquiries, complaints and repairs for any customer.",
        "permissions": {
            PERSON: ["create", "read", "update"],
            ORGANISATION: ["read"],
            ATTACHMENT: ["create", "read"],
        },
    },
    {
        "key": "marketing", "name": "Marketing", "requires_reason": True,
        "description": "Builds segments and campaigns; reads and exports, does not edit customers.",
        "permissions": {
            PERSON: ["read", "export"],
            ORGANISATION: ["read", "export"],
            ATTACHMENT: ["read"],
        },
    },
    {
        "key": "front-desk", "name": "Front desk", "requires_reason": True,
        "description": "Finds people, sees contact details and opens cases; never sees income, "
                       "payment history or exports.",
        "permissions": {
            PERSON: ["create", "read", "update"],
            ORGANISATION: ["read"],
            ATTACHMENT: ["read"],
        },
    },
    {
        "key": "auditor", "name": "Auditor",
        "description": "Read-only access to the audit trail.",
        "permissions": {AUDIT: ["read"]},
    },
]

# (role key, model label, field, level). "payment_history" is the name the transactions
# app (P4) checks before showing payments; income and payments are hidden from the desk.
FIELD_RULE_SEEDS: list[tuple[str, str, str, str]] = [
    ("front-desk", "people.Person", "income_band", "hidden"),
    ("front-desk", "people.Person", "payment_history", "hidden"),
    ("front-desk", "people.Person", "birth_date", "read"),
    ("marketing", "people.Person", "notes", "hidden"),
]

# Everyone reads customers and accounts; only owners (and sharing) may change them.
SHARING_DEFAULT_SEEDS: dict[str, str] = {
    PERSON: "read",
    ORGANISATION: "read",
}


def seed_access(apps: Any) -> None:
    """Create missing seed roles, field rules and sharing defaults (idempotent)."""
    Role = apps.get_model("access", "Role")
    FieldRule = apps.get_model("access", "FieldRule")
    SharingDefault = apps.get_model("access", "SharingDefault")
    roles = {}
    has_default = Role.objects.filter(is_default=True).exists()
    for seed in ROLE_SEEDS:
        values = {k: v for k, v in seed.items() if k != "key"}
        if has_default:
            values["is_default"] = False
        role, _ = Role.objects.get_or_create(key=seed["key"], defaults=values)
        roles[seed["key"]] = role
    for role_key, model_label, field, level in FIELD_RULE_SEEDS:
        FieldRule.objects.get_or_create(role=roles[role_key], model_label=model_label, field=field,
                                        defaults={"level": level})
    for object_type, access in SHARING_DEFAULT_SEEDS.items():
        SharingDefault.objects.get_or_create(object_type=object_type, defaults={"access": access})
