"""I3/I4 — the reviewer's decisions on the duplicate queue: merge, "not the same person", unmerge.

Each decision asks the one sharing mechanism first: the actor's role must allow ``merge`` on
people and both people must be visible to them for that action (``visible_to(user,
"merge")``), whichever adapter (staff UI, API) calls. Then it calls the merge service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from rapport.access.audit import record_person_access
from rapport.access.permissions import has_permission
from rapport.core.errors import NotAllowed
from rapport.identity.merge import MergeRefused, merge_people, unmerge
from rapport.identity.models import DuplicateSuggestion, MergeRecord, NotDuplicate, pair_key

PERSON = "people.person"


def mergeable_people(*, actor: Any, person_ids: list[Any]) -> list[Any]:
    """The people (in the order asked) ``actor`` may merge; NotAllowed / 404 otherwise."""
    from rapport.people.models import Person

    if not has_permission(actor, PERSON, "merge"):
        raise NotAllowed("Your role may not merge people.")
    wanted = [_uuid(pk) for pk in person_ids]
    found = {p.pk: p for p in Person.objects.visible_to(actor, "merge").filter(
        pk__in=[pk for pk in wanted if pk is not None])}
    people = [found.get(pk) for pk in wanted]
    if any(p is None for p in people):
        raise Http404("No such person.")
    return people


def merge_pair(*, actor: Any, survivor_id: Any, merged_id: Any, field_choices: Mapping[str, str] | None = None,
               strategy: str = "most_recent", reason: str = "", channel: str = "ui") -> MergeRecord:
    """Merge two people on the reviewer's word (from the queue or anywhere else)."""
    if str(survivor_id) == str(merged_id):
        raise MergeRefused("A person cannot be merged with themselves.",
                           field_errors={"merged": ["Choose two different people."]})
    survivor, merged = mergeable_people(actor=actor, person_ids=[survivor_id, merged_id])
    suggestion = DuplicateSuggestion.objects.filter(pair=pair_key(survivor.pk, merged.pk)).first()
    return merge_people(survivor=survivor, merged=merged, actor=actor, field_choices=field_choices,
                        strategy=strategy, reason=reason, channel=channel,
                        probability=suggestion.probability if suggestion else None)


def reject_pair(*, actor: Any, left_id: Any, right_id: Any, reason: str = "", channel: str = "ui") -> NotDuplicate:
    """Remember that two people are different: the pair is never suggested again."""
    left, right = mergeable_people(actor=actor, person_ids=[left_id, right_id])
    if left.pk == right.pk:
        raise MergeRefused("Choose two different people.")
    key = pair_key(left.pk, right.pk)
    with transaction.atomic():
        remembered = NotDuplicate.objects.filter(pair=key).first()
        if remembered is None:
            a, b = sorted((left.pk, right.pk), key=str)
            remembered = NotDuplicate.objects.create(left_id=a, right_id=b, decided_by=_as_user(actor),
                                                     reason=reason[:300])
        DuplicateSuggestion.objects.filter(pair=key).update(
            status=DuplicateSuggestion.Status.REJECTED, decided_by=_as_user(actor), decided_at=timezone.now())
        record_person_access(actor=actor, action="change", people=[left, right], channel=channel, reason=reason,
                             detail={"not_duplicate": key})
    return remembered


def unmerge_record(*, actor: Any, record_id: Any, channel: str = "ui") -> tuple[Any, Any]:
    """Undo a merge the actor may act on (the survivor must be mergeable by them)."""
    record = MergeRecord.objects.filter(pk=record_id).first()
    if record is None:
        raise Http404("No such merge.")
    mergeable_people(actor=actor, person_ids=[record.survivor_id])
    return unmerge(merge_record=record, actor=actor, channel=channel)


def _uuid(value: Any) -> Any:
    import uuid

    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def _as_user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None
