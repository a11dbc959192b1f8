"""I2 — real-time duplicate check (contract used by people, imports and forms).

``find_candidates`` is implemented by the identity-resolution issue; until then it finds
exact matches on normalised email or phone only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Candidate:
    person_id: Any
    score: float                       # match probability, 0..1
    evidence: list[dict] = field(default_factory=list)  # [{"field", "level", "weight", ...}]


def find_candidates(*, given_name: str = "", family_name: str = "", emails: Sequence[str] = (),
                    phones: Sequence[str] = (), exclude_person_id: Any = None,
                    limit: int = 5) -> list[Candidate]:
    """Existing people who may be the same as the described one, best first."""
    from rapport.people.models import ContactPoint

    values = [e.lower() for e in emails] + list(phones)
    if not values:
        return []
    points = ContactPoint.objects.filter(normalised__in=values)
    if exclude_person_id is not None:
        points = points.exclude(person_id=exclude_person_id)
    found: dict[Any, list[dict]] = {}
    for point in points[: limit * 4]:
        found.setdefault(point.person_id, []).append(
            {"field": point.kind, "level": "exact", "value": point.normalised})
    return [Candidate(pid, 0.99, ev) for pid, ev in list(found.items())[:limit]]
