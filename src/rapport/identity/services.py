"""I2 — real-time duplicate check (contract used by people, imports and forms).

``find_candidates`` blocks through indexed columns that already exist (``ContactPoint.normalised``
for emails and phones, ``Person.family_key``/``given_key`` for names, nicknames and swapped
names included), then scores each candidate with the matching engine and a fixed real-time
model (``REALTIME_MODEL``), so a lookup is a handful of index queries whatever the table size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from rapport.core.search import fold
from rapport.identity.engine import (
    CLOSE,
    DIFFERENT,
    EXACT,
    FIELDS,
    Model,
    Prepared,
    prepare,
    score,
)
from rapport.identity.normalise import (
    InvalidIdentifier,
    given_name_variants,
    normalise_email,
    phone_match_key,
)

# Below this probability a person is not worth showing as a possible duplicate.
CANDIDATE_THRESHOLD = 0.5
# At most this many people are scored per lookup (a very common name gives many blocks).
MAX_SCORED = 50

# Generic Fellegi–Sunter parameters for one-off lookups (no population to learn from in a
# request). u is the chance two different people agree: tiny for an email or a phone,
# larger for a given name. The prior is the chance a random existing person is the new one.
_U = {"given": 0.02, "family": 0.005, "birth_date": 0.0003, "email": 0.0001, "phone": 0.0001,
      "address": 0.001, "postcode": 0.002, "national_id": 0.00001}
_U_CLOSE = {"given": 0.005, "family": 0.002, "birth_date": 0.001, "email": 0.0004, "phone": 0.0004,
            "address": 0.004, "postcode": 0.008, "national_id": 0.00004}
REALTIME_MODEL = Model(
    m={name: {EXACT: 0.9, CLOSE: 0.07, DIFFERENT: 0.03} for name in FIELDS},
    u={name: {EXACT: u, CLOSE: _U_CLOSE[name], DIFFERENT: 1.0 - u - _U_CLOSE[name]}
       for name, u in _U.items()},
    prior=0.001,
)


@dataclass(frozen=True)
class Candidate:
    person_id: Any
    score: float                       # match probability, 0..1
    evidence: list[dict] = field(default_factory=list)  # [{"field", "level", "weight", ...}]


def find_candidates(*, given_name: str = "", family_name: str = "", emails: Sequence[str] = (),
                    phones: Sequence[str] = (), exclude_person_id: Any = None,
                    limit: int = 5, threshold: float = CANDIDATE_THRESHOLD) -> list[Candidate]:
    """Existing people who may be the same as the described one, best first.

    Each candidate carries its evidence: every compared field with its level (exact, close,
    different) and the weight it added.
    """
    probe = prepare(None, {"given_name": given_name, "family_name": family_name,
                           "email": list(emails), "phone": list(phones)})
    person_ids = _blocked_person_ids(probe, emails, phones, given_name, family_name)
    person_ids.discard(exclude_person_id)
    if exclude_person_id is not None:
        person_ids.discard(str(exclude_person_id))
    if not person_ids:
        return []
    found = []
    for prepared in _prepare_people(person_ids):
        match = score(REALTIME_MODEL, probe, prepared)
        if match.probability >= threshold:
            evidence = [e for e in match.evidence if e["level"] != "missing"]
            found.append(Candidate(prepared.record_id, round(match.probability, 4), evidence))
    found.sort(key=lambda c: -c.score)
    return found[:limit]


def _blocked_person_ids(probe: Prepared, emails: Sequence[str], phones: Sequence[str],
                        given_name: str, family_name: str) -> set[Any]:
    from rapport.people.models import ContactPoint, Person

    values = set()
    for email in emails:
        try:
            values.add(normalise_email(email).normalised)
        except InvalidIdentifier:
            values.add(email.strip().lower())
    # The stored form of a valid number is its E.164; phone_match_key gives the same without
    # phonenumbers' half-millisecond parse for the usual layouts (digits for a bad number).
    values |= {phone_match_key(phone) for phone in phones if phone.strip()}
    blocks = []
    if values:
        blocks.append(ContactPoint.objects.filter(normalised__in=values).order_by().values_list(
            "person_id", flat=True)[:MAX_SCORED])
    given, family = fold(given_name), fold(family_name)
    names = Q()
    if family and given:
        variants = given_name_variants(given_name)
        names |= Q(family_key=family[:100], given_key__in=variants)
        names |= Q(family_key=given[:100], given_key=family[:100])  # first and last swapped
    elif family:
        names |= Q(family_key=family[:100])
    if names:
        blocks.append(Person.objects.filter(names).order_by().values_list("id", flat=True)[:MAX_SCORED])
    return _ids_of_blocks(blocks)


def _ids_of_blocks(blocks: list[Any]) -> set[Any]:
    """The ids the blocking queries find, in one round trip (every API create runs them).

    ``UNION ALL`` of the queries as derived tables, so each keeps its own LIMIT (SQLite
    refuses LIMIT on a compound's arms, PostgreSQL accepts both forms).
    """
    import uuid

    from django.db import connection

    if not blocks:
        return set()
    if len(blocks) == 1:
        return set(blocks[0])
    parts, params = [], []
    for n, block in enumerate(blocks):
        sql, block_params = block.query.sql_with_params()
        parts.append(f"SELECT * FROM ({sql}) AS block{n}")  # noqa: S608 - Django-built SQL, parameters apart
        params.extend(block_params)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return {value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)) for (value,) in cursor.fetchall()}


def _prepare_people(person_ids: set[Any]) -> list[Prepared]:
    from rapport.people.models import ContactPoint, Person

    # No ORDER BY and no filter on kind in these lookups: either lets the planner pick the
    # ordering or the (kind, search_key) index over the person index and scan every email
    # (tens of ms at 20,000 people, bench/identity_realtime.py). Kinds are picked in Python.
    people = Person.objects.filter(pk__in=person_ids).order_by().only("id", "given_name", "family_name")
    points: dict[Any, dict[str, list[str]]] = {}
    for person_id, kind, value in ContactPoint.objects.order_by().filter(
            person_id__in=person_ids).values_list("person_id", "kind", "normalised"):
        if kind in ("email", "phone"):
            points.setdefault(person_id, {}).setdefault(kind, []).append(value)
    return [prepare(person.pk, {"given_name": person.given_name, "family_name": person.family_name,
                                **points.get(person.pk, {})})
            for person in people]
