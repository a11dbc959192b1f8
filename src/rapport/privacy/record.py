"""C1 — the record of processing activities (GDPR Art. 30), generated from the data map.

One activity per purpose declared in the data map: which categories of data about which
people, on which lawful basis, kept how long, erased how. Rendered as JSON (API, CLI) and
Markdown (CLI), and as a staff page.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.utils import timezone

from rapport.privacy.datamap import DATA_MAP, EXEMPT
from rapport.privacy.purposes import PURPOSES
from rapport.privacy.selectors import controller_details

PROCESSING_PURPOSES = {
    "customer_relationship": "Managing the relationship with customers and prospects: one record per "
                             "person, the timeline of contacts, sales and service.",
    "marketing": "Direct marketing on the channels and topics the person accepted, through the contact gate.",
    "service": "Service messages the person needs (transactional, security and breach notices).",
    "consent_records": "Proving consent and honouring withdrawals, objections and preferences.",
    "data_protection": "Handling data-protection rights requests and keeping proof of how they were met.",
    "security": "Keeping the data secure and accountable (access audit, suppression of erased identifiers).",
    "data_import": "Bringing contacts in from files (address books, spreadsheets, exports) without duplicates.",
    "data_quality": "Finding and merging duplicate records of one person, reversibly.",
}
PURPOSE_TITLES = {
    "customer_relationship": "Customer relationship", "marketing": "Direct marketing",
    "service": "Service messages", "consent_records": "Consent records", "data_protection": "Data-protection rights",
    "security": "Security and accountability", "data_import": "Importing contacts", "data_quality": "Data quality",
}
DATA_SUBJECTS = ["Customers", "Prospects and leads", "Contacts at customer organisations"]
SECURITY_MEASURES = [
    "Role-based access with record sharing rules and field-level security",
    "Access audit of who viewed, exported or changed each person's data",
    "Sensitive fields encrypted at rest; suppression list kept as keyed hashes (HMAC-SHA-256)",
    "Every outbound contact passes the contact gate; every decision is logged",
    "Retention policies applied daily; legal holds exempt",
]


def processing_record() -> dict[str, Any]:
    """The Art. 30 record as a JSON-ready dict."""
    by_purpose: dict[str, list[dict[str, Any]]] = defaultdict(list)
    models = []
    for label in sorted(DATA_MAP):
        declaration = DATA_MAP[label]
        fields = []
        for name, f in sorted(declaration.fields.items()):
            entry = {"model": label, "field": name, "category": str(f.category),
                     "sensitivity": str(f.sensitivity), "purposes": list(f.purposes),
                     "lawful_basis": str(f.lawful_basis), "retention": f.retention, "erasure": str(f.erasure),
                     "description": f.description}
            fields.append(entry)
            for purpose in f.purposes:
                by_purpose[purpose].append(entry)
        models.append({"model": label, "description": declaration.description,
                       "belongs_to_person": declaration.person_path is not None,
                       "erasure": str(declaration.on_erasure) if declaration.on_erasure else "per field",
                       "fields": fields, "not_personal": dict(sorted(declaration.not_personal.items()))})
    activities = []
    for purpose in sorted(by_purpose):
        entries = by_purpose[purpose]
        by_model: dict[str, list[str]] = defaultdict(list)
        for e in entries:
            by_model[e["model"]].append(e["field"])
        activities.append({
            "purpose": purpose,
            "title": PURPOSE_TITLES.get(purpose, purpose.replace("_", " ").capitalize()),
            "description": PROCESSING_PURPOSES.get(purpose, purpose.replace("_", " ").capitalize()),
            "data_subjects": DATA_SUBJECTS,
            "categories": sorted({e["category"] for e in entries}),
            "lawful_bases": sorted({e["lawful_basis"] for e in entries}),
            "retention": sorted({e["retention"] for e in entries}),
            "special_category_data": any(e["category"] == "special" for e in entries),
            "recipients": ["Staff of the controller with a role that grants access"],
            "transfers_outside": "None by Rapport itself; document any hosting or email provider here.",
            "fields": [f"{e['model']}.{e['field']}" for e in entries],
            "records": [{"model": label, "fields": sorted(names)} for label, names in sorted(by_model.items())],
        })
    return {
        "title": "Record of processing activities (GDPR Art. 30)",
        "generated_at": timezone.now().isoformat(),
        "controller": controller_details(),
        "activities": activities,
        "contact_purposes": [{"key": p.key, "label": p.label, "class": str(p.purpose_class),
                              "description": p.description} for p in PURPOSES.values()],
        "security_measures": SECURITY_MEASURES,
        "models": models,
        "exempt_models": [{"model": e.model_label, "reason": e.reason} for e in sorted(
            EXEMPT.values(), key=lambda e: e.model_label)],
    }


def processing_record_markdown(record: dict[str, Any] | None = None) -> str:
    """The same record as Markdown (for a document the DPO can file)."""
    record = record or processing_record()
    c = record["controller"]
    lines = [f"# {record['title']}", "", f"Generated {record['generated_at']}.", "",
             "## Controller", "", f"- Name: {c.get('name') or '—'}", f"- Contact: {c.get('contact') or '—'}",
             f"- Address: {c.get('address') or '—'}", f"- Email: {c.get('email') or '—'}",
             f"- Data protection officer: {c.get('dpo') or '—'}", ""]
    for activity in record["activities"]:
        lines += [f"## Purpose: {activity['purpose']} ({activity['title']})", "", activity["description"], "",
                  f"- Data subjects: {', '.join(activity['data_subjects'])}",
                  f"- Categories of data: {', '.join(activity['categories'])}",
                  f"- Lawful bases: {', '.join(activity['lawful_bases'])}",
                  f"- Special category data: {'yes' if activity['special_category_data'] else 'no'}",
                  f"- Retention: {'; '.join(activity['retention'])}",
                  f"- Recipients: {', '.join(activity['recipients'])}",
                  f"- Transfers outside the UK/EEA: {activity['transfers_outside']}", "",
                  "| Field | Category | Sensitivity | Lawful basis | Retention | Erasure |",
                  "|---|---|---|---|---|---|"]
        for model in record["models"]:
            for f in model["fields"]:
                if activity["purpose"] in f["purposes"]:
                    lines.append(f"| {f['model']}.{f['field']} | {f['category']} | {f['sensitivity']} | "
                                 f"{f['lawful_basis']} | {f['retention']} | {f['erasure']} |")
        lines.append("")
    lines += ["## Contact purposes (the contact gate)", ""]
    lines += [f"- **{p['label']}** (`{p['key']}`, {p['class']}): {p['description']}" for p in record["contact_purposes"]]
    lines += ["", "## Security measures", ""] + [f"- {m}" for m in record["security_measures"]]
    lines += ["", "## Models holding no customer personal data", ""]
    lines += [f"- `{e['model']}`: {e['reason']}" for e in record["exempt_models"]]
    return "\n".join(lines) + "\n"
