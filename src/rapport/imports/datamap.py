"""C1 — personal data held by the imports app: the uploaded files and what was learnt from them.

An import's file, sample rows, preview and per-row issues hold the same personal data as the
people they describe; the undo ledger holds values people had before the import. All of it is
kept only as long as an import may still be checked or undone, then purged
(``services.purge_expired_imports``, every 6 hours, after RAPPORT_IMPORT_RETENTION_DAYS).
"""

from rapport.privacy.datamap import Category as C
from rapport.privacy.datamap import ErasureAction as E
from rapport.privacy.datamap import LawfulBasis as B
from rapport.privacy.datamap import Sensitivity as S
from rapport.privacy.datamap import declare, declare_model, declare_not_personal

RETENTION = "30 days after upload (RAPPORT_IMPORT_RETENTION_DAYS), then purged"
PURPOSES = ("customer_relationship", "data_import")

def _delete_import_files(rows, person):
    """Erasure: the uploaded files that held the person go, and their imports count as purged."""
    import shutil

    from django.utils import timezone

    from rapport.imports.services import file_path

    for imp in rows.exclude(file_path=""):
        shutil.rmtree(file_path(imp).parent, ignore_errors=True)
    rows.filter(purged_at__isnull=True).update(purged_at=timezone.now())


# Imports reach a person through ImportedPerson (the people each run created or changed); erasing
# one of them purges what those runs kept of their file (as retention would, only sooner).
declare_model("imports.Import", person_path="people__person_id", before_erasure=_delete_import_files,
              description="An uploaded contacts file: the file itself, a sample and a preview of its rows")
for name, category, description in (
        ("file_path", C.CONTACT, "The uploaded file (names, emails, phones, addresses of many people)"),
        ("file_name", C.TECHNICAL, "Name of the uploaded file"),
        ("sample", C.CONTACT, "The first rows of the file, shown in the wizard"),
        ("preview", C.CONTACT, "Outcomes of the first rows (names, emails, phones, match evidence)"),
        ("report_rows", C.CONTACT, "Outcomes of the first rows of the run"),
        ("consent_source", C.BEHAVIOURAL, "Where the file's marketing permission was collected")):
    declare("imports.Import", name, category=category, sensitivity=S.MEDIUM, purposes=PURPOSES,
            lawful_basis=B.LEGITIMATE_INTERESTS, retention=RETENTION, erasure=E.ANONYMISE,
            description=description)

declare_model("imports.ImportIssue", person_path="import_run__people__person_id",
              description="Why a row of an import was invalid, suppressed or skipped")
declare("imports.ImportIssue", "message", category=C.CONTACT, sensitivity=S.MEDIUM, purposes=PURPOSES,
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RETENTION, erasure=E.DELETE_ROW,
        description="May quote the offending value (an email or phone as typed)")

declare_model("imports.ImportChunk", person_path="import_run__people__person_id",
              description="Undo ledger: values people had before an import changed them")
declare("imports.ImportChunk", "changes", category=C.IDENTITY, sensitivity=S.MEDIUM, purposes=PURPOSES,
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RETENTION, erasure=E.DELETE_ROW,
        description="Previous names and profile fields of people the import changed")

declare_model("imports.ImportedPerson", person_path="person_id",
              description="Which people an import created or changed (provenance of the record)")
declare("imports.ImportedPerson", "person_id", category=C.TECHNICAL, sensitivity=S.LOW, purposes=PURPOSES,
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RETENTION, erasure=E.DELETE_ROW,
        description="The person's id")
declare_not_personal("imports.Import", ["mapping_name"], reason="the name of a saved column mapping")
declare_not_personal("imports.ImportMapping", ["name"], reason="the name of a saved column mapping")
