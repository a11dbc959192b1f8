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

import contextlib
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
    """One blocking key: equality (or IN, for a tuple) on columns of contact points or people.

    ``skip_when_full``: a block larger than PER_KEY of this key says nothing and is dropped.
    """

    on_points: bool
    where: tuple[tuple[str, Any], ...]
    skip_when_full: bool = False

    @property
    def limit(self) -> int:
        return PER_KEY + 1 if self.skip_when_full else PER_KEY


def _blocked_person_ids(*, given_name: str, family_name: str, emails: Sequence[str],
                        phones: Sequence[str], among: QuerySet | None = None) -> list[Any]:
    """Ids of the people sharing a blocking key, most selective keys first, in one round trip."""
    arms = _arms(given_name=given_name, family_name=family_name, emails=emails, phones=phones)
    if not arms:
        return []
    by_arm: dict[int, list[Any]] = {}
    for arm, person_id in _union(arms, among):
        by_arm.setdefault(arm, []).append(person_id)
    ids: dict[Any, None] = {}
    for n, arm in enumerate(arms):
        members = by_arm.get(n, [])
        if arm.skip_when_full and len(members) > PER_KEY:
            continue
        for person_id in members[:PER_KEY]:
            ids.setdefault(person_id)
    return list(ids)[:MAX_SCORED]


def _arms(*, given_name: str, family_name: str, emails: Sequence[str], phones: Sequence[str]) -> list[_Arm]:
    # Emails through the (kind, search_key) index: the folded key of the address and of its
    # mailbox (Gmail dots, +tags, googlemail.com), so "jsmith@gmail.com" finds
    # "J.Smith@gmail.com". fold() drops case, accents and punctuation, so the folded raw
    # address is the stored search key of its normalised form.
    arms = []
    for email in dict.fromkeys(e.strip() for e in emails if e.strip()):
        keys = {fold(email)[:200]}
        with contextlib.suppress(InvalidIdentifier):  # not an address: its folded text is all there is
            keys.add(fold(email_match_key(email))[:200])
        arms.append(_Arm(True, (("kind", "email"), ("search_key", tuple(sorted(keys))))))
    # Phones by E.164 (the stored ``normalised``), with no filter on kind: one would let the
    # planner take the (kind, search_key) index and scan every phone. phone_match_key gives
    # the E.164 without phonenumbers' half-millisecond parse for the usual layouts.
    for value in dict.fromkeys(phone_match_key(p) for p in phones if p.strip()):
        arms.append(_Arm(True, (("normalised", value),)))
    given, family = fold(given_name)[:100], fold(family_name)[:100]
    if family and given:
        variants = tuple(sorted(v[:100] for v in given_name_variants(given_name)))
        arms.append(_Arm(False, (("family_key", family), ("given_key", variants))))
        arms.append(_Arm(False, (("family_key", given), ("given_key", family))))  # first and last swapped
    elif family:
        arms.append(_Arm(False, (("family_key", family),), skip_when_full=True))
    return arms


def _union(arms: list[_Arm], among: QuerySet | None) -> list[tuple[int, Any]]:
    """(arm number, person id) of every arm, in one round trip.

    ``UNION ALL`` of the arms as derived tables, so each keeps its own LIMIT (SQLite refuses
    LIMIT on a compound's arms). No ORDER BY: it would let the planner pick an ordering's
    index over the key's. Written out as SQL: building them with the ORM cost more CPU than
    the rest of a lookup (bench/identity_realtime.py); a restricted reader's arms are built by
    the ORM, which turns visibility into SQL.
    """
    parts, params = [], []
    for n, arm in enumerate(arms):
        sql, arm_params = _arm_sql(arm) if among is None or not among.query.where else _arm_orm_sql(arm, among)
        parts.append(f"SELECT {n}, block{n}.* FROM ({sql}) AS block{n}")  # noqa: S608 - model metadata, parameters apart
        params.extend(arm_params)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return [(n, _as_uuid(value)) for n, value in cursor.fetchall()]


def _arm_sql(arm: _Arm) -> tuple[str, list[Any]]:
    from rapport.people.models import ContactPoint, Person

    model = ContactPoint if arm.on_points else Person
    quote = connection.ops.quote_name
    conditions, params = [], []
    for name, value in arm.where:
        column = quote(model._meta.get_field(name).column)
        if isinstance(value, tuple):
            conditions.append(f"{column} IN ({', '.join(['%s'] * len(value))})")
            params.extend(value)
        else:
            conditions.append(f"{column} = %s")
            params.append(value)
    selected = quote("person_id" if arm.on_points else model._meta.pk.column)
    return (f"SELECT {selected} FROM {quote(model._meta.db_table)} "  # noqa: S608 - model metadata, parameters apart
            f"WHERE {' AND '.join(conditions)} LIMIT {arm.limit}"), params


def _arm_orm_sql(arm: _Arm, among: QuerySet) -> tuple[str, tuple[Any, ...]]:
    """The arm within ``among``: visibility row by row inside the block (a correlated EXISTS
    on the primary key for contact points), never "person_id IN (every visible person)"."""
    from rapport.people.models import ContactPoint

    lookups = {f"{name}__in" if isinstance(value, tuple) else name: value for name, value in arm.where}
    if arm.on_points:
        visible = Exists(among.order_by().filter(pk=OuterRef("person_id")))
        query = ContactPoint.objects.order_by().filter(visible, **lookups).values_list("person_id", flat=True)
    else:
        query = among.order_by().filter(**lookups).values_list("id", flat=True)
    return query[:arm.limit].query.sql_with_params()


def _prepare_people(person_ids: list[Any], among: QuerySet | None) -> list[tuple[Prepared, str]]:
    """Match keys and display name of each candidate: one query, only the columns scoring needs.

    One row per contact point (LEFT JOIN); kinds are picked here, not in SQL (see _arms).
    """
    from rapport.people.models import ContactPoint, Person

    if among is None or not among.query.where:
        quote = connection.ops.quote_name
        pk = Person._meta.pk
        person, point = quote(Person._meta.db_table), quote(ContactPoint._meta.db_table)
        sql = (f"SELECT p.{quote(pk.column)}, p.given_name, p.family_name, p.preferred_name, c.kind, c.normalised "  # noqa: S608 - model metadata, parameters apart
               f"FROM {person} p LEFT JOIN {point} c ON c.person_id = p.{quote(pk.column)} "
               f"WHERE p.{quote(pk.column)} IN ({', '.join(['%s'] * len(person_ids))})")
        with connection.cursor() as cursor:
            cursor.execute(sql, [pk.get_db_prep_value(v, connection) for v in person_ids])
            rows = [(_as_uuid(row[0]), *row[1:]) for row in cursor.fetchall()]
    else:
        rows = list(among.filter(pk__in=person_ids).order_by().values_list(
            "id", "given_name", "family_name", "preferred_name", "contact_points__kind",
            "contact_points__normalised"))
    people: dict[Any, tuple[str, str, str]] = {}
    points: dict[Any, dict[str, list[str]]] = {}
    for person_id, given, family, preferred, kind, value in rows:
        people.setdefault(person_id, (given, family, preferred))
        if kind in ("email", "phone"):
            points.setdefault(person_id, {}).setdefault(kind, []).append(value)
    out = []
    for person_id, (given, family, preferred) in people.items():
        prepared = prepare(person_id, {"given_name": given, "family_name": family, **points.get(person_id, {})})
        display_name = " ".join(p for p in (preferred or given, family) if p) or "(no name)"
        out.append((prepared, display_name))
    return out


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
