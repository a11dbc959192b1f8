"""I2 — real-time duplicate check (contract used by people, imports and forms).

``find_candidates`` blocks through the columns the people services keep for it (the blocking
index): ``ContactPoint.normalised`` for phones, ``ContactPoint.search_key`` for emails (so
another layout of the same mailbox is found), ``Person.family_key`` + ``given_key`` for names,
nicknames and swapped names included. Every blocking key is one arm of one query, each arm
capped (``PER_KEY``), narrowed to the people the caller may see when ``among`` is given, and
joined to the candidates' names and contact points; the most selective keys come first, and
a surname alone whose block is full is dropped (it says nothing). The candidates are scored
with the matching engine and a fixed real-time model (``REALTIME_MODEL``). One query and at
most ``MAX_SCORED`` people scored per lookup, whatever the table size
(bench/identity_realtime.py, docs/decisions/0011).
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet

from rapport.access import audit
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
    """See ``find_candidates_and_suppressed``, which this is without digests."""
    return find_candidates_and_suppressed(
        given_name=given_name, family_name=family_name, emails=emails, phones=phones,
        exclude_person_id=exclude_person_id, limit=limit, threshold=threshold, among=among)[0]


def find_candidates_and_suppressed(*, given_name: str = "", family_name: str = "", emails: Sequence[str] = (),
                                   phones: Sequence[str] = (), exclude_person_id: Any = None,
                                   limit: int = 5, threshold: float = CANDIDATE_THRESHOLD,
                                   among: QuerySet | None = None,
                                   suppression_digests: Sequence[str] = (),
                                   read_audit_head: bool = False) -> tuple[list[Candidate], set[str]]:
    """Existing people who may be the same as the described one, best first.

    Each candidate carries its evidence: every compared field with its level (exact, close,
    different) and the weight it added. ``among`` (a Person queryset, e.g. ``visible_to(user)``)
    limits the people looked at inside every blocking key, so a hidden person is never read
    or scored, nor takes a visible one's place in a capped block.

    ``suppression_digests`` (``privacy.suppression.digests_to_check``) are looked up on the
    internal suppression list in the same statement (the API create's one round trip for
    both); the second value is the digests found there. ``read_audit_head``: the same statement
    also reads the audit chain's head for the create's one-statement append that follows
    (``access.audit.head_guess_sql``; PostgreSQL).
    """
    digests = list(dict.fromkeys(suppression_digests))
    arms = [] if among is not None and among.query.is_empty() else _arms(
        given_name=given_name, family_name=family_name, emails=emails, phones=phones)
    if arms:
        people, hits = _blocked_people(arms, among, digests, read_audit_head)
    else:
        from rapport.privacy.suppression import internal_hits

        people, hits = [], internal_hits(digests) if digests else set()
    if exclude_person_id is not None:
        people = [(p, name) for p, name in people if str(p.record_id) != str(exclude_person_id)]
    if not people:
        return [], hits
    probe = prepare(None, {"given_name": given_name, "family_name": family_name,
                           "email": list(emails), "phone": list(phones)})
    found = []
    for prepared, display_name in people:
        match = score(REALTIME_MODEL, probe, prepared)
        if match.probability >= threshold:
            evidence = [e for e in match.evidence if e["level"] != "missing"]
            found.append(Candidate(prepared.record_id, round(match.probability, 4), evidence, display_name))
    found.sort(key=lambda c: -c.score)
    return found[:limit], hits


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


def _blocked_people(arms: list[_Arm], among: QuerySet | None, digests: Sequence[str] = (),
                    read_audit_head: bool = False) -> tuple[list[tuple[Prepared, str]], set[str]]:
    """Match keys and display name of the people of every arm, in one round trip.

    ``UNION ALL`` of the arms as derived tables, so each keeps its own LIMIT (SQLite refuses
    LIMIT on a compound's arms), joined to the people and their contact points (one row per
    point; kinds are picked here, see _arms). No ORDER BY: it would let the planner pick an
    ordering's index over the key's. Then, most selective arms first, each arm's first
    PER_KEY people, a full ``skip_when_full`` arm dropped, at most MAX_SCORED in all.
    """
    sql, params = _blocked_sql(arms, among)
    if digests:  # the suppression lookup as rows of arm -1: (-1, NULL …, digest)
        from rapport.privacy.suppression import internal_hits_sql

        hits_sql, hits_params = internal_hits_sql(digests)
        sql = f"{sql} UNION ALL SELECT -1, NULL, NULL, NULL, NULL, NULL, hit.digest FROM ({hits_sql}) AS hit"  # noqa: S608 - as above
        params = [*params, *hits_params]
    head_sql = audit.head_guess_sql() if read_audit_head else ""
    if head_sql:  # the audit chain's head as a row of arm -2: (-2, NULL …, seq, hash)
        sql = f"{sql} UNION ALL SELECT -2, NULL, NULL, NULL, NULL, CAST(h.seq AS varchar), h.hash FROM ({head_sql}) AS h"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    hits = set()
    if digests or head_sql:
        hits = {row[6] for row in rows if row[0] == -1}
        for row in rows:
            if row[0] == -2:
                audit.note_head_guess(row[5], row[6])
        rows = [row for row in rows if row[0] >= 0]
    members: dict[int, dict[uuid.UUID, None]] = {}
    names: dict[uuid.UUID, tuple[str, str, str]] = {}
    points: dict[uuid.UUID, dict[str, dict[str, None]]] = {}
    for arm, person_id, given, family, preferred, kind, value in rows:
        person_id = _as_uuid(person_id)
        members.setdefault(arm, {})[person_id] = None
        names[person_id] = (given, family, preferred)
        if kind in ("email", "phone"):
            points.setdefault(person_id, {}).setdefault(kind, {})[value] = None
    chosen: dict[uuid.UUID, None] = {}
    for n, arm in enumerate(arms):
        block = list(members.get(n, ()))
        if arm.skip_when_full and len(block) > PER_KEY:
            continue
        chosen.update(dict.fromkeys(block[:PER_KEY]))
    out = []
    for person_id in list(chosen)[:MAX_SCORED]:
        given, family, preferred = names[person_id]
        kinds = {kind: list(values) for kind, values in points.get(person_id, {}).items()}
        prepared = prepare(person_id, {"given_name": given, "family_name": family, **kinds})
        out.append((prepared, " ".join(p for p in (preferred or given, family) if p) or "(no name)"))
    return out, hits


def _blocked_sql(arms: list[_Arm], among: QuerySet | None) -> tuple[str, list[Any]]:
    """The one query of a lookup (bench/identity_realtime.py prints its plan)."""
    if among is not None and bool(among.query.where):
        parts, params = [], []
        for arm in arms:
            sql, arm_params = _arm_orm_sql(arm, among)
            parts.append(sql)
            params.extend(arm_params)
        return _joined_sql(connection.vendor, tuple(arm.on_points for arm in arms), tuple(parts)), params
    # Unrestricted, the text depends only on the arms' shape: built once per shape, not on every create.
    params = [value for arm in arms for value in _arm_params(arm)]
    return _unrestricted_sql(connection.vendor, tuple(_arm_shape(arm) for arm in arms)), params


_ArmShape = tuple[bool, int, tuple[tuple[str, int | None], ...]]  # on points, limit, (column, IN size or None)


def _arm_shape(arm: _Arm) -> _ArmShape:
    return arm.on_points, arm.limit, tuple((name, len(value) if isinstance(value, tuple) else None)
                                           for name, value in arm.where)


def _arm_params(arm: _Arm) -> list[Any]:
    params: list[Any] = []
    for _, value in arm.where:
        if isinstance(value, tuple):
            params.extend(value)
        else:
            params.append(value)
    return params


@functools.lru_cache(maxsize=256)
def _unrestricted_sql(vendor: str, shapes: tuple[_ArmShape, ...]) -> str:
    parts = tuple(_arm_text(vendor, shape) for shape in shapes)
    return _joined_sql(vendor, tuple(on_points for on_points, _, _ in shapes), parts)


def _joined_sql(vendor: str, on_points: tuple[bool, ...], parts: tuple[str, ...]) -> str:
    """The arms' derived tables as one ``UNION ALL``, joined to the people and their points."""
    from rapport.people.models import ContactPoint, Person

    quote = connection.ops.quote_name
    pk = quote(Person._meta.pk.column)
    selects = []
    for n, (points, sql) in enumerate(zip(on_points, parts, strict=True)):
        column = "person_id" if points else Person._meta.pk.column
        selects.append(f"SELECT {n} AS arm, block{n}.{quote(column)} AS person_id FROM ({sql}) AS block{n}")  # noqa: S608 - model metadata, parameters apart
    return (f"SELECT b.arm, p.{pk}, p.given_name, p.family_name, p.preferred_name, c.kind, c.normalised "  # noqa: S608 - model metadata, parameters apart
            f"FROM ({' UNION ALL '.join(selects)}) AS b "
            f"JOIN {quote(Person._meta.db_table)} p ON p.{pk} = b.person_id "
            f"LEFT JOIN {quote(ContactPoint._meta.db_table)} c ON c.person_id = p.{pk}")


def _arm_sql(arm: _Arm) -> tuple[str, list[Any]]:
    return _arm_text(connection.vendor, _arm_shape(arm)), _arm_params(arm)


@functools.lru_cache(maxsize=256)
def _arm_text(vendor: str, shape: _ArmShape) -> str:
    """One arm's SQL, its values as placeholders in ``_arm_params``' order (``vendor`` keys the cache:
    the quoting is the connection's)."""
    from rapport.people.models import ContactPoint, Person

    on_points, limit, where = shape
    model = ContactPoint if on_points else Person
    quote = connection.ops.quote_name
    conditions = []
    for name, size in where:
        column = quote(model._meta.get_field(name).column)
        conditions.append(f"{column} = %s" if size is None else f"{column} IN ({', '.join(['%s'] * size)})")
    selected = quote("person_id" if on_points else model._meta.pk.column)
    return (f"SELECT {selected} FROM {quote(model._meta.db_table)} "  # noqa: S608 - model metadata, parameters apart
            f"WHERE {' AND '.join(conditions)} LIMIT {limit}")


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
    sql, params = query[:arm.limit].query.sql_with_params()
    if arm.skip_when_full:
        # Full or not is decided on everyone, as for an unrestricted reader: a reader who sees
        # few of 16,000 Lyons would otherwise read the whole block to find 21 visible ones.
        everyone, everyone_params = _arm_sql(arm)
        sql = f"SELECT * FROM ({sql}) AS visible WHERE (SELECT COUNT(*) FROM ({everyone}) AS everyone) <= {PER_KEY}"  # noqa: S608 - as above
        params = (*params, *everyone_params)
    return sql, tuple(params)


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
