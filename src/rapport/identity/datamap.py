"""C1 — personal data held by identity resolution (I3, I4).

A merge record's snapshot holds every column of the merged person and every row the merge
moved or folded: the same personal data as the people themselves. While a merge stands the
merged person *is* the survivor, so the record belongs to the survivor and erasing them
deletes it (and with it the snapshot). Unmerge empties the snapshot: both people hold their
own data again; a record is also found by the merged person's old id, so erasing someone who
was split out again deletes it too. Suggestions and "not the same person" pairs hold two ids
and the engine's evidence (field, level, weight — never values); erasing either side deletes
them.
"""

from typing import Any

from rapport.privacy.datamap import Category as C
from rapport.privacy.datamap import ErasureAction as E
from rapport.privacy.datamap import LawfulBasis as B
from rapport.privacy.datamap import Sensitivity as S
from rapport.privacy.datamap import declare, declare_model, register_person_aliases

RELATIONSHIP = "life of the customer relationship + 6 years"
PURPOSES = ("customer_relationship", "data_quality")



def _merge_records(model: Any, person: Any) -> Any:
    """Merges into the person, and merges the person was split out of again (by their old id)."""
    from django.db.models import Q

    return model._default_manager.filter(Q(survivor_id=person.pk) | Q(merged_person_id=person.pk))


declare_model("identity.MergeRecord", person_path="survivor", on_erasure=E.DELETE_ROW, rows=_merge_records,
              description="Merges into this person, with what is needed to undo them")
declare("identity.MergeRecord", "snapshot", category=C.IDENTITY, sensitivity=S.HIGH, purposes=PURPOSES,
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.DELETE_ROW,
        description="The merged person's profile and the ids of the records the merge moved")
declare("identity.MergeRecord", "merged_person_id", category=C.IDENTITY, sensitivity=S.LOW, purposes=PURPOSES,
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.DELETE_ROW,
        description="The id the merged record had")
declare("identity.MergeRecord", "reason", category=C.BEHAVIOURAL, sensitivity=S.LOW, purposes=PURPOSES,
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.DELETE_ROW)

declare_model("identity.DuplicateSuggestion", person_path=("left", "right"), on_erasure=E.DELETE_ROW,
              description="Possible duplicates waiting for review")
declare("identity.DuplicateSuggestion", "evidence", category=C.BEHAVIOURAL, sensitivity=S.LOW,
        purposes=PURPOSES, lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.DELETE_ROW,
        description="Which fields agreed and how (no values)")

declare_model("identity.NotDuplicate", person_path=("left", "right"), on_erasure=E.DELETE_ROW,
              description="Pairs a reviewer said are different people")
declare("identity.NotDuplicate", "reason", category=C.BEHAVIOURAL, sensitivity=S.LOW, purposes=PURPOSES,
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.DELETE_ROW)


def _merged_into(person: Any) -> list[Any]:
    """Ids of the people merged into ``person`` (and into those, …): their audit and logs stay filed there."""
    from rapport.identity.models import MergeRecord

    found: list[Any] = []
    frontier = [person.pk]
    while frontier:
        # Only standing merges: once unmerged, the other person's data is theirs again.
        frontier = [pk for pk in MergeRecord.objects.filter(survivor_id__in=frontier, unmerged_at__isnull=True)
                    .values_list("merged_person_id", flat=True) if pk not in found and pk != person.pk]
        found += frontier
    return found


register_person_aliases(_merged_into)
