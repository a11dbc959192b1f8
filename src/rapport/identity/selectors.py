"""I3/I4 — reads of the review queue and merge history, always through ``visible_to`` (S2).

A suggestion is shown only when the reader may see both people; hidden fields (S3) are left
out of the side-by-side comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from rapport.access.fieldsecurity import hidden_fields
from rapport.identity.models import DuplicateSuggestion, MergeRecord

COMPARED_FIELDS = (("honorific", "Title"), ("given_name", "Given name"), ("middle_names", "Middle names"),
                   ("family_name", "Family name"), ("preferred_name", "Preferred name"),
                   ("birth_date", "Birth date"), ("gender", "Gender"), ("language", "Language"),
                   ("timezone", "Time zone"), ("country", "Country"), ("notes", "Notes"), ("owner", "Owner"))
FIELD_LABELS = {"given": "Given name", "family": "Family name", "birth_date": "Birth date", "email": "Email",
                "phone": "Phone", "address": "Address", "postcode": "Postcode", "national_id": "National id"}


def open_suggestions(*, user: Any, person: Any = None) -> QuerySet[DuplicateSuggestion]:
    """Open suggestions whose two people ``user`` may see, best first (one query)."""
    from rapport.people.models import Person
    from rapport.privacy.models import PersonPrivacy

    visible = Person.objects.visible_to(user).values("pk")
    erased = PersonPrivacy.objects.filter(erased_at__isnull=False).values("person_id")
    queryset = (DuplicateSuggestion.objects.filter(status=DuplicateSuggestion.Status.OPEN)
                .filter(left__in=visible, right__in=visible)
                .exclude(left__in=erased).exclude(right__in=erased)
                .select_related("left", "right").order_by("-probability", "created_at"))
    if person is not None:
        queryset = queryset.filter(Q(left=person) | Q(right=person))
    return queryset


def suggestion_get(*, user: Any, suggestion_id: Any) -> DuplicateSuggestion:
    """One suggestion whose people ``user`` may see (any status); DoesNotExist otherwise."""
    from rapport.people.models import Person

    visible = Person.objects.visible_to(user).values("pk")
    return (DuplicateSuggestion.objects.filter(left__in=visible, right__in=visible)
            .select_related("left", "right", "decided_by").get(pk=suggestion_id))


@dataclass(frozen=True)
class FieldRow:
    name: str
    label: str
    left: Any
    right: Any

    @property
    def differs(self) -> bool:
        return _shown(self.left) != _shown(self.right)

    @property
    def both(self) -> bool:
        return bool(_shown(self.left)) and bool(_shown(self.right))


def compare_people(*, user: Any, left: Any, right: Any) -> dict[str, Any]:
    """The side-by-side view: profile fields (hidden ones left out), contact points, timelines."""
    from rapport.people.models import ContactPoint, Interaction

    hidden = hidden_fields(user, "people.Person")
    rows = [FieldRow(name, label, _value(left, name), _value(right, name))
            for name, label in COMPARED_FIELDS if name not in hidden]
    points: dict[Any, list[Any]] = {left.pk: [], right.pk: []}
    for point in ContactPoint.objects.filter(person_id__in=[left.pk, right.pk]).order_by("kind", "-primary"):
        points[point.person_id].append(point)
    left_values = {(p.kind, p.normalised) for p in points[left.pk]}
    right_values = {(p.kind, p.normalised) for p in points[right.pk]}
    counts = dict.fromkeys([left.pk, right.pk], 0)
    for person_id in Interaction.objects.filter(person_id__in=[left.pk, right.pk]).values_list("person_id", flat=True):
        counts[person_id] += 1
    return {
        "rows": rows,
        "left_points": [(p, (p.kind, p.normalised) in right_values) for p in points[left.pk]],
        "right_points": [(p, (p.kind, p.normalised) in left_values) for p in points[right.pk]],
        "left_interactions": counts[left.pk], "right_interactions": counts[right.pk],
    }


def evidence_rows(evidence: list[dict]) -> list[dict[str, Any]]:
    """Evidence with readable field names, strongest contribution first."""
    rows = [{**e, "label": FIELD_LABELS.get(e.get("field", ""), e.get("field", ""))} for e in evidence or []]
    return sorted(rows, key=lambda e: -abs(float(e.get("weight") or 0)))


def merge_history(*, user: Any, person: Any) -> list[MergeRecord]:
    """Merges into ``person`` and merges ``person`` was undone from, newest first."""
    return list(MergeRecord.objects.filter(Q(survivor_id=person.pk) | Q(merged_person_id=person.pk))
                .select_related("merged_by", "unmerged_by").order_by("-created_at")[:20])


def survivor_id_of(person_id: Any) -> Any | None:
    """The id of the person a merged-away id now lives on (following later merges), or None.

    Links, bookmarks and old API ids keep working after a merge; visibility of the survivor is
    still decided by whoever follows the id.
    """
    seen: set[Any] = set()
    current = None
    while person_id not in seen and len(seen) < 20:
        seen.add(person_id)
        survivor = (MergeRecord.objects.filter(merged_person_id=person_id, status=MergeRecord.Status.MERGED)
                    .order_by("-created_at").values_list("survivor_id", flat=True).first())
        if survivor is None:
            break
        current = person_id = survivor
    return current


def merged_name(record: MergeRecord) -> str:
    """The merged person's name: from the snapshot while merged, from the person once restored."""
    from rapport.people.models import Person

    row = (record.snapshot or {}).get("merged_person")
    if row:
        first = row.get("preferred_name") or row.get("given_name") or ""
        return " ".join(p for p in (first, row.get("family_name") or "") if p) or "(no name)"
    person = Person.objects.filter(pk=record.merged_person_id).first()
    return person.display_name if person else "(erased)"


def visible_candidates(*, user: Any, given_name: str = "", family_name: str = "", emails: Any = (),
                       phones: Any = (), threshold: float = 0.5, limit: int = 5) -> list[dict[str, Any]]:
    """I2 — ``find_candidates`` among the people ``user`` may see (S2), shaped for the API.

    Visibility narrows the candidates before they are scored, in the same query that reads
    them: a hidden person is never shown and never takes a visible one's place.
    """
    return visible_candidates_and_suppressed(user=user, given_name=given_name, family_name=family_name,
                                             emails=emails, phones=phones, threshold=threshold, limit=limit)[0]


def visible_candidates_and_suppressed(*, user: Any, given_name: str = "", family_name: str = "",
                                      emails: Any = (), phones: Any = (), threshold: float = 0.5, limit: int = 5,
                                      suppression_digests: Any = (),
                                      read_audit_head: bool = False) -> tuple[list[dict[str, Any]], set[str]]:
    """``visible_candidates``, and which of ``suppression_digests`` are on the internal
    suppression list, looked up in the same statement (``find_candidates_and_suppressed``)."""
    from rapport.identity.services import find_candidates_and_suppressed
    from rapport.people.models import Person

    found, hits = find_candidates_and_suppressed(
        given_name=given_name, family_name=family_name, emails=list(emails), phones=list(phones),
        threshold=threshold, limit=limit, among=Person.objects.visible_to(user),
        suppression_digests=list(suppression_digests), read_audit_head=read_audit_head)
    return [{"id": str(c.person_id), "display_name": c.display_name, "score": c.score, "evidence": c.evidence}
            for c in found], hits


def _value(person: Any, name: str) -> Any:
    if name == "owner":
        return person.owner.get_username() if person.owner_id else ""
    return getattr(person, name)


def _shown(value: Any) -> str:
    return "" if value is None else str(value).strip()
