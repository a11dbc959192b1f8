"""A3/I2 — the chunk matcher: which rows are the same person, and who they already are.

Per chunk, set-based: rows sharing an identifier (normalised email, phone, handle, URL, or a
postal address together with the family name) are one group (union–find); then one indexed
``IN`` query per kind finds the existing people holding any of the chunk's identifiers. Rows
in later chunks find people created by earlier chunks the same way, because each chunk is
committed before the next is read — so memory does not grow with the file.

A dry run writes nothing, so earlier chunks' would-be people are remembered in a
``DryRunIndex`` (a throw-away SQLite file) instead of the database.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sqlite3
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from django.db import connection

from rapport.imports.bulk import pg_array
from rapport.imports.records import ImportRecord
from rapport.people.models import ContactPoint

Key = tuple[str, str]
IN_BATCH = 500
SQLITE_IN_BATCH = 5000  # well under SQLite's 32,766 variables


class Group:
    """Rows of one chunk that describe the same person, in file order.

    Groups travel from the read-ahead process (``imports.pipeline``) with their records
    pickled apart: the run reads a group's records only when it matched someone (or in the
    first, reported rows); new people come with their rows built (``fresh``), so most groups'
    records are never unpickled.
    """

    __slots__ = ("_blob", "_records", "evidence", "fresh", "keys", "others", "target")

    def __init__(self, records: list[ImportRecord] | None, keys: set[Key], *, blob: bytes | None = None,
                 fresh: Any = None) -> None:
        self._records, self._blob = records, blob
        self.keys = keys
        self.target: Any = None            # an existing person's id (or a dry-run placeholder)
        self.evidence: list[dict] = []
        self.others: list[Any] = []        # further people the rows also match
        self.fresh = fresh                 # the rows of the new person it would be (services._Context._fresh)

    @property
    def records(self) -> list[ImportRecord]:
        if self._records is None:
            self._records = pickle.loads(self._blob)  # noqa: S301 - pickled by our own read-ahead process
            self._blob = None
        return self._records

    def __reduce__(self) -> tuple:
        blob = self._blob if self._records is None else pickle.dumps(self._records, pickle.HIGHEST_PROTOCOL)
        return _group_from, (blob, self.keys, self.fresh, self.target, self.evidence, self.others)


def _group_from(blob: bytes, keys: set[Key], fresh: Any, target: Any, evidence: list, others: list) -> Group:
    group = Group(None, keys, blob=blob, fresh=fresh)
    group.target, group.evidence, group.others = target, evidence, others
    return group


def group_records(records: list[ImportRecord]) -> list[Group]:
    """Union–find over shared identifiers; groups ordered by their first row."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[Key, int] = {}
    keys_of: list[set[Key]] = []
    for index, record in enumerate(records):
        keys = record.identifiers() | record.address_keys()
        keys_of.append(keys)
        for key in keys:
            if key in owner:
                a, b = find(owner[key]), find(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[key] = index
    members: dict[int, list[int]] = defaultdict(list)
    for index in range(len(records)):
        members[find(index)].append(index)
    groups = []
    for root in sorted(members):
        indexes = members[root]
        keys: set[Key] = set()
        for i in indexes:
            keys |= keys_of[i]
        groups.append(Group([records[i] for i in indexes], keys))
    return groups


Lookup = Callable[[set[Key]], dict[Key, list[Any]]]


def match_groups(groups: list[Group], lookup: Lookup) -> None:
    """Set each group's ``target``: the person matching most of its keys (ties: by key, then id)."""
    wanted: set[Key] = set()
    for group in groups:
        wanted |= group.keys
    if not wanted:
        return
    found = lookup(wanted)
    for group in groups:
        hits: dict[Any, list[Key]] = defaultdict(list)
        for key in group.keys:
            for target in found.get(key, ()):
                if key not in hits[target]:
                    hits[target].append(key)
        if not hits:
            continue
        ranked = sorted(hits.items(), key=lambda item: (-len(item[1]), min(item[1]), str(item[0])))
        group.target = ranked[0][0]
        group.evidence = [key_evidence(key) for key in sorted(ranked[0][1])]
        group.others = [target for target, _ in ranked[1:]]


def key_evidence(key: Key) -> dict[str, str]:
    kind, value = key
    if kind == "address":
        value = value.split("\x00", 1)[0]
        return {"field": "address", "level": "exact", "value": value, "with": "family_name"}
    return {"field": kind, "level": "exact", "value": value}


def database_lookup(keys: set[Key]) -> dict[Key, list[Any]]:
    """Existing people holding each key, from the indexed ``ContactPoint.normalised`` column.

    One statement per kind of key per chunk, with the values passed as they are: through the
    ORM, preparing each of a chunk's thousands of ``IN`` values was most of the lookup's time.
    Person ids come back as ``UUID``s, as from the ORM.
    """
    found: dict[Key, list[Any]] = defaultdict(list)
    identifiers = {k for k in keys if k[0] != "address"}
    for kind, normalised, person_id in _select(_POINTS_SQL, sorted({value for _, value in identifiers})):
        key = (kind, normalised)
        if key in identifiers and person_id not in found[key]:
            found[key].append(person_id)
    addresses: dict[str, set[str]] = defaultdict(set)
    for kind, value in keys:
        if kind == "address":
            normalised, family = value.split("\x00", 1)
            addresses[normalised].add(family)
    for normalised, family, person_id in _select(_ADDRESSES_SQL, sorted(addresses)):
        if family in addresses[normalised]:
            key = ("address", f"{normalised}\x00{family}")
            if person_id not in found[key]:
                found[key].append(person_id)
    return found


def _sql(template: str) -> str:
    point, person = ContactPoint._meta, ContactPoint._meta.get_field("person").related_model._meta
    quote = connection.ops.quote_name
    return template.format(point=quote(point.db_table), person=quote(person.db_table), pk=quote(person.pk.column),
                           address=ContactPoint.Kind.ADDRESS.value)


# {values}: "IN (%s, …)" (SQLite), "= v.value" inside ``_EACH_VALUE`` (PostgreSQL); person_id last
_POINTS_SQL = "SELECT kind, normalised, person_id FROM {point} WHERE normalised {{values}}"
_ADDRESSES_SQL = ("SELECT p.normalised, o.family_key, p.person_id FROM {point} p JOIN {person} o ON o.{pk} = p.person_id "
                  "WHERE p.kind = '{address}' AND p.normalised {{values}}")
# PostgreSQL: the statement run once per value of one array literal (bulk.pg_array). As
# ``normalised = ANY(…)``, or as a join to ``unnest(…)``, the planner weighs a chunk's thousands
# of index probes (priced as random page reads) against one read of the whole table, and chose a
# (parallel) sequential scan or a hash of every point for each chunk up to about half a million
# points — 57 ms of server time at 750,000 points against 4 ms (decision 0040). ``OFFSET 0``
# keeps the lateral subquery from being flattened into such a join: each value is an index probe.
_EACH_VALUE = "SELECT found.* FROM unnest(%s::text[]) AS v(value) CROSS JOIN LATERAL ({query} OFFSET 0) AS found"


def _select(template: str, values: list[str]) -> Iterable[tuple]:
    if not values:
        return
    sql = _sql(template)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # values are distinct (the callers' sorted sets), so each point comes back once
            cursor.execute(_EACH_VALUE.format(query=sql.format(values="= v.value")), [pg_array(values)])
            yield from cursor.fetchall()
            return
        for batch in _batched(values, SQLITE_IN_BATCH):
            cursor.execute(sql.format(values=f"IN ({', '.join(['%s'] * len(batch))})"), batch)
            # ids as the ORM gives them (SQLite stores their hex): the same person must compare
            # equal whether found here or in a dry run's index
            yield from ((*row[:-1], uuid.UUID(row[-1])) for row in cursor.fetchall())


def _batched(values: Iterable[Any], size: int) -> Iterable[list[Any]]:
    iterator = iter(values)
    while batch := list(islice(iterator, size)):
        yield batch


class DryRunIndex:
    """Identifiers → would-be person, for a dry run's later chunks. Disk-backed, so flat memory."""

    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(prefix="rapport-dryrun-", suffix=".sqlite3")
        os.close(handle)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE idx (key TEXT PRIMARY KEY, target TEXT NOT NULL)")

    def lookup(self, keys: set[Key]) -> dict[Key, list[Any]]:
        found: dict[Key, list[Any]] = {}
        encoded = {f"{kind}\x01{value}": (kind, value) for kind, value in keys}
        for batch in _batched(sorted(encoded), IN_BATCH):
            marks = ",".join("?" * len(batch))
            for key, target in self.db.execute(f"SELECT key, target FROM idx WHERE key IN ({marks})", batch):  # noqa: S608 - placeholders only
                found[encoded[key]] = [target]
        return found

    def remember(self, keys: Iterable[Key], target: Any) -> None:
        self.db.executemany("INSERT OR IGNORE INTO idx (key, target) VALUES (?, ?)",
                            [(f"{kind}\x01{value}", str(target)) for kind, value in keys])

    def close(self) -> None:
        self.db.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
