"""C1 — personal data held by the access app (S1–S8), and the staff-side tables that are not.

Customer personal data here: files attached to a person (S8), and the access audit (S5),
whose entries name the person they concern. The audit is kept after erasure — it proves who
accessed the data, and its hash chain forbids edits — but it holds only the person's id
(pseudonymous once the person row is anonymised) and sealed field history, which erasure
drops. Staff accounts, roles, sign-in attempts and MFA devices are the business's own
users' data, covered by the staff privacy notice, not this data map.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from rapport.privacy.datamap import Category as C
from rapport.privacy.datamap import ErasureAction as E
from rapport.privacy.datamap import LawfulBasis as B
from rapport.privacy.datamap import Sensitivity as S
from rapport.privacy.datamap import declare, declare_model, declare_not_personal, exempt

RELATIONSHIP = "life of the customer relationship + 6 years"


def _person_attachments(model: Any, person: Any) -> Any:
    return model._default_manager.filter(object_type="people.person", object_id=person.pk)


def _delete_stored_files(rows: Any, person: Any) -> None:
    """The sealed files go with their rows, once the erasure has committed."""
    from django.core.files.storage import default_storage

    names = list(rows.values_list("storage_name", flat=True))
    transaction.on_commit(lambda: [default_storage.delete(name) for name in names])


declare_model("access.Attachment", person_path=(), rows=_person_attachments, on_erasure=E.DELETE_ROW,
              before_erasure=_delete_stored_files, description="Files attached to the person's record (S8)")
for _name, _category in (("filename", C.BEHAVIOURAL), ("description", C.BEHAVIOURAL),
                         ("content_type", C.TECHNICAL), ("size", C.TECHNICAL), ("restricted", C.TECHNICAL)):
    declare("access.Attachment", _name, category=_category, sensitivity=S.MEDIUM,
            purposes=("customer_relationship",), lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP,
            erasure=E.DELETE_ROW, description="The file itself is stored sealed and deleted with the row")
declare_not_personal("access.Attachment", ["storage_name"], reason="a random storage key, not the file's name")

declare_model("access.AuditEntry", person_path="person_id",
              description="Access audit: who viewed, exported or changed the person's data (S5)")
for _name in ("person_id", "action", "channel", "occurred_at", "reason"):
    declare("access.AuditEntry", _name, category=C.TECHNICAL, sensitivity=S.LOW, purposes=("security",),
            lawful_basis=B.LEGAL_OBLIGATION, retention="6 years (accountability, GDPR Art. 5(2))",
            erasure=E.KEEP, description="Kept after erasure: the hash chain proves nothing was altered")
declare("access.AuditEntry", "changes", category=C.IDENTITY, sensitivity=S.MEDIUM, purposes=("security",),
        lawful_basis=B.LEGAL_OBLIGATION, retention="until the person is erased", erasure=E.ANONYMISE,
        description="Field history (old and new values), sealed; the chain covers only its digest")
declare_not_personal("access.AuditEntry", ["actor_name", "ip"],
                     reason="the staff user who acted and their address, not the customer's")
declare_model("access.AuditEntryPerson", person_path="person_id",
              description="Access audit: the people a bulk entry (an export, an import) covers (S5)")
declare("access.AuditEntryPerson", "person_id", category=C.TECHNICAL, sensitivity=S.LOW, purposes=("security",),
        lawful_basis=B.LEGAL_OBLIGATION, retention="6 years (accountability, GDPR Art. 5(2))", erasure=E.KEEP,
        description="Kept after erasure: the chained entry's digest proves nothing was altered")

for _label in ("access.Role", "access.Team", "access.SharingRule", "access.ApiToken"):
    declare_not_personal(_label, ["name"], reason="the name of a staff-side setting")

exempt("axes.AccessAttempt", reason="staff sign-in attempts (lock-out, S4); staff data, expires with the cool-off")
exempt("axes.AccessFailureLog", reason="staff sign-in failures (S4); staff data")
exempt("axes.AccessLog", reason="staff sign-ins (S4); staff data")
exempt("axes.AccessAttemptExpiration", reason="lock-out expiry of a staff sign-in attempt")
exempt("otp_totp.TOTPDevice", reason="staff MFA devices (S4)")
exempt("otp_static.StaticDevice", reason="staff MFA recovery codes (S4)")
exempt("otp_static.StaticToken", reason="staff MFA recovery codes (S4)")
