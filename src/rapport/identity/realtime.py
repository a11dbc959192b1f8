"""I2 — the real-time duplicate check on create, for adapters that create people (API).

``check_before_create`` runs ``find_candidates`` over the people the user may see and applies
the caller's policy: ``create`` (default: create anyway, report the candidates), ``refuse``
(409 with the candidates) or ``link`` (return the best existing person instead of a new one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError

from rapport.core.api.prepared import statements_prepared
from rapport.core.errors import DomainError

POLICIES = ("create", "refuse", "link")
# ``link`` only links to a candidate at least this likely; below it a new person is created.
LINK_THRESHOLD = 0.9


class DuplicateFound(DomainError):
    status_code = 409
    title = "Possible duplicate"
    code = "possible_duplicate"


def check_before_create(*, user: Any, on_duplicate: str, given_name: str = "", family_name: str = "",
                        emails: Sequence[str] = (), phones: Sequence[str] = ()) -> tuple[list[dict], Any]:
    """(candidates, existing person to link to or None); raises DuplicateFound for ``refuse``."""
    check_policy(on_duplicate)
    candidates, _ = candidates_and_suppressed(user=user, given_name=given_name, family_name=family_name,
                                              emails=emails, phones=phones)
    return candidates, apply_policy(user=user, on_duplicate=on_duplicate, candidates=candidates)


def check_policy(on_duplicate: str) -> None:
    if on_duplicate not in POLICIES:
        raise ValidationError({"on_duplicate": [f"Choose one of: {', '.join(POLICIES)}."]})


def candidates_and_suppressed(*, user: Any, given_name: str = "", family_name: str = "",
                              emails: Sequence[str] = (), phones: Sequence[str] = (),
                              suppression_digests: Sequence[str] = (),
                              read_audit_head: bool = False) -> tuple[list[dict], set[str]]:
    """The candidates ``user`` may see, and which of ``suppression_digests`` are on the internal
    suppression list: one statement (``people.services.person_create_checked`` refuses those)."""
    from rapport.identity.selectors import visible_candidates_and_suppressed

    # Its one query has few shapes (arms by the identifiers given) and runs on every create:
    # prepared, PostgreSQL plans it once per connection instead of every time.
    with statements_prepared():
        return visible_candidates_and_suppressed(user=user, given_name=given_name, family_name=family_name,
                                                 emails=emails, phones=phones,
                                                 suppression_digests=suppression_digests,
                                                 read_audit_head=read_audit_head)


def apply_policy(*, user: Any, on_duplicate: str, candidates: list[dict]) -> Any:
    """The existing person to link to (``link``, a candidate likely enough) or None; raises
    DuplicateFound for ``refuse`` when there are candidates."""
    from rapport.people.models import Person

    if not candidates or on_duplicate == "create":
        return None
    if on_duplicate == "refuse":
        raise DuplicateFound(f"{len(candidates)} existing {'person looks' if len(candidates) == 1 else 'people look'} "
                             "like this one; not created (on_duplicate=refuse).", candidates=candidates)
    best = candidates[0]
    if best["score"] < LINK_THRESHOLD:
        return None
    return Person.objects.visible_to(user).get(pk=best["id"])


def candidates_header(candidates: list[dict]) -> str:
    """``id;score=0.97, …`` for the ``Rapport-Duplicate-Candidates`` response header."""
    return ", ".join(f"{c['id']};score={c['score']}" for c in candidates)
