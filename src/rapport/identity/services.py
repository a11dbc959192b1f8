"""I2 — real-time duplicate check (contract used by people, imports and forms).

``find_candidates`` blocks through the columns the people services keep for it (the blocking
index): ``ContactPoint.normalised`` for phones, ``ContactPoint.search_key`` for emails (so
another layout of the same mailbox is found), ``Person.family_key`` + ``given_key`` for names,
nicknames and swapped names included. Every blocking key is one arm of one query, each arm
capped (``PER_KEY``), the most selective keys first; a surname alone whose block is full is
dropped (it says nothing). The candidates and their contact points come in a second query,
narrowed to the people the caller may see when ``among`` is given, and are scored with the
matching engine and a fixed real-time model (``REALTIME_MODEL``). Two queries and at most
``MAX_SCORED`` people scored per lookup, whatever the table size (bench/identity_realtime.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet

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
    email_match_key,
    given_name_variants,
    normalise_email,
    phone_match_key,
)

# Below this probability a person is not worth showing as a possible duplicate.
CANDIDATE_THRESHOLD = 0.5
# Candidates taken from one blocking key, and scored in one lookup. A key whose block is
# larger is a common value (a shared landline, "John Smith"): its first PER_KEY people are
# scored, and the keys before it (emails, then phones, then names) are never crowded out.
PER_KEY = 20
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
    display_name: str = ""


def find_candidates(*, given_name: str = "", family_name: str = "", emails: Sequence[str] = (),
                    phones: Sequence[str] = (), exclude_person_id: Any = None,
                    limit: int = 5, threshold: float = CANDIDATE_THRESHOLD,
                    among: QuerySet | None = None) -> list[Candidate]:
    """Existing people who may be the same as the described one, best first.

    Each candidate carries its evidence: every compared field with its level (exact, close,
    different) and the weight it added. ``among`` (a Person queryset, e.g. ``visible_to(user)``)
    limits the people looked at in every blocking key and again where they are read, so a
    hidden person is never scored nor takes a visible one's place in a capped block.
    """
    if among is not None and among.query.is_empty():
        return []
    person_ids = _blocked_person_ids(given_name=given_name, family_name=family_name, emails=emails,
                                     phones=phones, among=among)
    if exclude_person_id is not None:
        person_ids = [pk for pk in person_ids if str(pk) != str(exclude_person_id)]
    if not person_ids:
        return []
    probe = prepare(None, {"given_name": given_name, "family_name": family_name,
                           "email": list(emails), "phone": list(phones)})
    found = []
    for prepared, display_name in _prepare_people(person_ids, among):
        match = score(REALTIME_MODEL, probe, prepared)
        if match.probability >= threshold:
            evidence = [e for e in match.evidence if e["level"] != "missing"]
            found.append(Candidate(prepared.record_id, round(match.probability, 4), evidence, display_name))
    found.sort(key=lambda c: -c.score)
    return found[:limit]


@dataclass(frozen=True)
class _Arm:
    """One blocking key's query; ``skip_when_full``: a full block of it says nothing."""

    query: QuerySet
    skip_when_full: bool = False


def _blocked_person_ids(*, given_name: str, family_name: str, emails: Sequence[str],
                        phones: Sequence[str], among: QuerySet | None = None) -> list[Any]:
    """Ids of the people sharing a blocking key, most selective keys first, in one round trip."""
    arms = _arms(given_name=given_name, family_name=family_name, emails=emails, phones=phones, among=among)
    if not arms:
        return []
    by_arm: dict[int, list[Any]] = {}
    for arm, person_id in _union(arms):
        by_arm.setdefault(arm, []).append(person_id)
    ids: dict[Any, None] = {}
    for n, arm in enumerate(arms):
        members = by_arm.get(n, [])
        if arm.skip_when_full and len(members) > PER_KEY:
            continue
        for person_id in members[:PER_KEY]:
            ids.setdefault(person_id)
    return list(ids)[:MAX_SCORED]


def _arms(*, given_name: str, family_name: str, emails: Sequence[str], phones: Sequence[str],
          among: QuerySet | None) -> list[_Arm]:
    from rapport.people.models import ContactPoint, Person

    # No ORDER BY and no filter on kind for phones: either lets the planner pick an ordering
    # or the (kind, search_key) index and scan every phone. Emails are looked up through that
    # index on purpose: the folded key of the stored address and of its mailbox (Gmail dots,
    # +tags, googlemail.com) find "J.Smith@gmail.com" from "jsmith@gmail.com".
    points = ContactPoint.objects.order_by()
    people = Person.objects.order_by()
    if among is not None and among.query.where:
        # Visibility row by row inside each block (a correlated EXISTS on the primary key),
        # not "person_id IN (every visible person)", which would read them all.
        people = among.order_by()
        points = points.filter(Exists(among.order_by().filter(pk=OuterRef("person_id"))))
    arms = []
    for email in dict.fromkeys(e for e in emails if e.strip()):
        keys = {fold(email)[:200]}
        try:
            keys.add(fold(normalise_email(email).normalised)[:200])
            keys.add(fold(email_match_key(email))[:200])
        except InvalidIdentifier:
            pass
        arms.append(_Arm(points.filter(kind="email", search_key__in=sorted(keys))
                         .values_list("person_id", flat=True)[:PER_KEY]))
    # The stored form of a valid number is its E.164; phone_match_key gives the same without
    # phonenumbers' half-millisecond parse for the usual layouts (digits for a bad number).
    for value in dict.fromkeys(phone_match_key(p) for p in phones if p.strip()):
        arms.append(_Arm(points.filter(normalised=value).values_list("person_id", flat=True)[:PER_KEY]))
    given, family = fold(given_name)[:100], fold(family_name)[:100]
    if family and given:
        arms.append(_Arm(people.filter(family_key=family, given_key__in=sorted(given_name_variants(given_name)))
                         .values_list("id", flat=True)[:PER_KEY]))
        arms.append(_Arm(people.filter(family_key=given, given_key=family)  # first and last swapped
                         .values_list("id", flat=True)[:PER_KEY]))
    elif family:
        arms.append(_Arm(people.filter(family_key=family).values_list("id", flat=True)[:PER_KEY + 1],
                         skip_when_full=True))
    return arms


def _union(arms: list[_Arm]) -> list[tuple[int, Any]]:
    """(arm number, person id) of every arm, in one round trip.

    ``UNION ALL`` of the queries as derived tables, so each keeps its own LIMIT (SQLite
    refuses LIMIT on a compound's arms, PostgreSQL accepts both forms).
    """
    parts, params = [], []
    for n, arm in enumerate(arms):
        sql, arm_params = arm.query.query.sql_with_params()
        parts.append(f"SELECT {n}, block{n}.* FROM ({sql}) AS block{n}")  # noqa: S608 - Django-built SQL, parameters apart
        params.extend(arm_params)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return [(n, value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
                for n, value in cursor.fetchall()]


def _prepare_people(person_ids: list[Any], among: QuerySet | None) -> list[tuple[Prepared, str]]:
    """Match keys and display name of each candidate: one query, only the columns scoring needs."""
    from rapport.people.models import Person

    queryset = (Person.objects.all() if among is None else among).filter(pk__in=person_ids).order_by()
    people: dict[Any, tuple[str, str, str]] = {}
    points: dict[Any, dict[str, list[str]]] = {}
    # One row per contact point (LEFT JOIN); kinds are picked here, not in SQL (see _arms).
    for person_id, given, family, preferred, kind, value in queryset.values_list(
            "id", "given_name", "family_name", "preferred_name", "contact_points__kind",
            "contact_points__normalised"):
        people.setdefault(person_id, (given, family, preferred))
        if kind in ("email", "phone"):
            points.setdefault(person_id, {}).setdefault(kind, []).append(value)
    out = []
    for person_id, (given, family, preferred) in people.items():
        prepared = prepare(person_id, {"given_name": given, "family_name": family, **points.get(person_id, {})})
        display_name = " ".join(p for p in (preferred or given, family) if p) or "(no name)"
        out.append((prepared, display_name))
    return out
