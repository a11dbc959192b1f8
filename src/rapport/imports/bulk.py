"""A3 — set-based writes for the import's bulk path: COPY on PostgreSQL, executemany on SQLite.

``bulk_create`` on SQLite splits rows into statements of at most 999 parameters (about 50
people each) and builds every statement in Python; a chunk of 2,000 rows then costs dozens
of statements per table. ``TableWriter`` sends one ``executemany`` (SQLite, in C) or one
``COPY`` (PostgreSQL) per table per chunk instead.

Columns the caller does not pass get the value Django would give a fresh instance
(``pre_save`` + ``get_db_prep_save`` of a default instance, computed once): fields other
engineers add to a model with a default keep working without changes here. Only fields
whose default varies per row (a UUID primary key, timestamps) must be passed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connection, models, transaction


class TableWriter:
    """Insert rows of ``model`` given as tuples in the order of ``columns`` (attnames)."""

    def __init__(self, model: type[models.Model], columns: Sequence[str]) -> None:
        self.model = model
        self.columns = list(columns)
        fields = [f for f in model._meta.concrete_fields
                  if not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))]
        by_attname = {f.attname: f for f in fields}
        unknown = set(self.columns) - set(by_attname)
        if unknown:
            raise ValueError(f"{model.__name__} has no columns {sorted(unknown)}")
        template = model()
        self.constants: list[tuple[str, Any]] = []
        for field in fields:
            if field.attname in self.columns:
                continue
            value = field.pre_save(template, add=True)
            self.constants.append((field.column, field.get_db_prep_save(value, connection)))
        self.converters = [_converter(by_attname[name]) for name in self.columns]
        self.column_names = [by_attname[name].column for name in self.columns] + [c for c, _ in self.constants]
        self._prepare = _row_function(self.converters, tuple(value for _, value in self.constants))
        table = connection.ops.quote_name(model._meta.db_table)
        names = ", ".join(connection.ops.quote_name(c) for c in self.column_names)
        self.copy_sql = f"COPY {table} ({names}) FROM STDIN"
        self.insert_sql = (f"INSERT INTO {table} ({names}) "  # noqa: S608 - names are model metadata, values are parameters
                           f"VALUES ({', '.join(['%s'] * len(self.column_names))})")

    def insert(self, rows: Iterable[Sequence[Any]]) -> int:
        prepare = self._prepare
        return self._send([prepare(row) for row in rows])

    def insert_ready(self, rows: Sequence[Any], tail: Sequence[Any]) -> int:
        """Insert rows made by ``row_maker`` (values already in database form: ids from
        ``new_hex_ids``, text, booleans), each followed by the same ``tail`` values (the last
        columns, converted once here). For rows built ahead in the read-ahead process: nothing
        per row is left but joining them with the tail."""
        if not rows:
            return 0
        lead = len(self.columns) - len(tail)
        converted = tuple(conv(value) if conv else value
                          for conv, value in zip(self.converters[lead:], tail, strict=True))
        end = converted + tuple(value for _, value in self.constants)
        if connection.vendor != "postgresql":
            return self._send([row + end for row in rows])
        ending = (f"\t{copy_text(end)}" if end else "") + "\n"
        with connection.cursor() as cursor, cursor.cursor.copy(self.copy_sql) as copy:
            copy.write(ending.join(rows) + ending)
        return len(rows)

    def _send(self, prepared: list[tuple]) -> int:
        if not prepared:
            return 0
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                raw = cursor.cursor  # the psycopg cursor under Django's wrapper
                with raw.copy(self.copy_sql) as copy:
                    write = copy.write_row
                    for row in prepared:
                        write(row)
            else:
                cursor.executemany(self.insert_sql, prepared)
        return len(prepared)


# The mark that a statement's writer keeps the contact points' derived rows itself (decision
# 0028): PostgreSQL's digest and count trigger functions on inserts check it (migrations
# imports/0005, privacy/0008). On SQLite the writer drops the two triggers for its inserts instead
# (decision 0033), so SQLite has no mark (its table and the triggers' WHEN went in imports/0007).
BULK_POINTS_SETTING = "rapport.bulk_points"  # PostgreSQL: transaction-local setting
DIGESTS, KIND_COUNTS = "privacy_contactdigest", "imports_pointkindcount"
POINTS_TABLE = "people_contactpoint"
# "triggers" leaves the derived rows to the triggers (for comparing the two in tests and benchmarks)
POINTS_DERIVED_BY = os.environ.get("RAPPORT_IMPORT_POINTS_DERIVED_BY", "writer")


def insert_contact_points(inserts: Sequence[Callable[[], object]], points: Iterable[tuple[Any, Any, str]], *,
                          new_people: Iterable[Any] = ()) -> None:
    """Run ``inserts`` (the caller's bulk inserts of contact points) with the insert triggers'
    work done here instead: ``points`` is (point id, person id, kind) of every point they insert,
    ``new_people`` the people among them created in this same transaction.

    The triggers on ``people_contactpoint`` add a digest row per new point (decision 0018) and
    count points per person and kind (decision 0025). On SQLite they run once per row; on
    PostgreSQL as ``INSERT … SELECT … ON CONFLICT`` over the statement's transition table. Here the
    same rows are written in one statement per table: a digest row ``(point, version 0)`` per
    point and one count per (person, kind). SQLite keeps the triggers' conflict handling
    (``executemany`` of the same upserts). PostgreSQL copies the digest rows (a new point has
    none; one left over with the same random id would fail the chunk, not be reset) and the new
    people's counts (a person created in this transaction has none), and upserts only the counts
    of people who had points before. Runs inside the caller's transaction (the mark must not
    outlive it; an error rolls it back with the inserts).

    How the triggers are kept from doing the same work: on PostgreSQL the transaction-local mark
    their functions check; on SQLite the two insert triggers are dropped for the inserts and
    created again right after, in a savepoint (``_insert_points_sqlite``, decision 0033).
    """
    if POINTS_DERIVED_BY == "triggers":
        for insert in inserts:
            insert()
        return
    if not connection.in_atomic_block:
        raise RuntimeError("insert_contact_points runs inside the caller's transaction")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _insert_points_postgres(cursor, inserts, points, new_people)
        else:
            _insert_points_sqlite(cursor, inserts, points)


INSERT_TRIGGERS = (f"{DIGESTS}_added", f"{KIND_COUNTS}_added")  # the triggers whose rows the writer makes
_DIGESTS_UPSERT = "ON CONFLICT (point_id) DO UPDATE SET digest = NULL, canonical = NULL, version = version + 1"
_COUNTS_UPSERT = "ON CONFLICT (person_id, kind) DO UPDATE SET n = n + excluded.n"


def _insert_points_sqlite(cursor: Any, inserts: Sequence[Callable[[], object]],
                          points: Iterable[tuple[Any, Any, str]]) -> None:
    """SQLite: run ``inserts`` with the two insert triggers dropped, create them again, and
    derive the digest rows and counts from the rows just inserted — all in a savepoint of the
    caller's write transaction (decision 0033).

    Even skipped by their ``WHEN``, row triggers cost SQLite a sub-program call and a subquery per
    inserted row (measured: more than half of the import's contact point inserts). DDL is
    transactional in SQLite and a write transaction excludes every other writer, so no other
    connection ever inserts a point while the triggers are gone, and readers only ever see the
    committed schema, with them. The triggers are re-created from their own text in
    ``sqlite_master`` (whatever migration wrote them); an error rolls the savepoint back, triggers
    included, before it reaches the caller.

    The points inserted are the rows above the table's largest rowid before the inserts (SQLite
    gives a new row the largest rowid + 1, and no other writer runs meanwhile), so the derived
    rows are two ``INSERT … SELECT`` statements in the engine, with the triggers' own upserts; if
    the count of those rows is not the number the inserts changed (a rowid at its maximum makes
    SQLite pick random ones), the rows are written from ``points`` instead.
    """
    raw = connection.connection
    with transaction.atomic():
        cursor.execute(f"SELECT max(rowid) FROM {POINTS_TABLE}")  # noqa: S608 - a constant
        before = cursor.fetchone()[0] or 0
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s "
                       "AND name IN (%s, %s) ORDER BY rowid", [POINTS_TABLE, *INSERT_TRIGGERS])
        triggers = cursor.fetchall()
        for name, _ in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
        changes = raw.total_changes
        for insert in inserts:
            insert()
        inserted = raw.total_changes - changes
        for _, sql in triggers:
            cursor.execute(sql)
        if not inserted:
            return
        cursor.execute(f"SELECT COUNT(*) FROM {POINTS_TABLE} WHERE rowid > %s", [before])  # noqa: S608 - a constant
        if cursor.fetchone()[0] == inserted:
            cursor.execute(f"INSERT INTO {DIGESTS} (point_id, version) "  # noqa: S608 - constants
                           f"SELECT id, 0 FROM {POINTS_TABLE} WHERE rowid > %s {_DIGESTS_UPSERT}", [before])
            # one upsert per point, as the trigger's (a GROUP BY first costs its sort: measured slower)
            cursor.execute(f"INSERT INTO {KIND_COUNTS} (person_id, kind, n) "  # noqa: S608 - constants
                           f"SELECT person_id, kind, 1 FROM {POINTS_TABLE} WHERE rowid > %s {_COUNTS_UPSERT}",
                           [before])
            return
        ids, counts = _derived(points)
        cursor.executemany(f"INSERT INTO {DIGESTS} (point_id, version) VALUES (%s, 0) {_DIGESTS_UPSERT}",  # noqa: S608 - constants
                           [(i,) for i in ids])
        cursor.executemany(f"INSERT INTO {KIND_COUNTS} (person_id, kind, n) VALUES (%s, %s, %s) "  # noqa: S608 - constants
                           f"{_COUNTS_UPSERT}", [(person, kind, n) for (person, kind), n in counts.items()])


def _insert_points_postgres(cursor: Any, inserts: Sequence[Callable[[], object]],
                            points: Iterable[tuple[Any, Any, str]], new_people: Iterable[Any]) -> None:
    """PostgreSQL: run ``inserts`` with the transaction-local mark the trigger functions check
    set, in a savepoint (an error takes the mark back with it); then COPY the derived rows."""
    with transaction.atomic():
        cursor.execute("SELECT set_config(%s, 'on', true)", [BULK_POINTS_SETTING])
        for insert in inserts:
            insert()
        cursor.execute("SELECT set_config(%s, 'off', true)", [BULK_POINTS_SETTING])
    ids, counts = _derived(points)
    if ids:
        _derived_rows_postgres(cursor, ids, counts, {_uuid_hex(p) for p in new_people})


def _derived(points: Iterable[tuple[Any, Any, str]]) -> tuple[list[str], dict[tuple[str, str], int]]:
    """The digest rows' point ids and the counts per (person, kind) of ``points``, as 32 hex digits."""
    ids: list[str] = []
    counts: dict[tuple[str, str], int] = {}
    for point_id, person_id, kind in points:
        ids.append(_uuid_hex(point_id))
        key = (_uuid_hex(person_id), kind)
        counts[key] = counts.get(key, 0) + 1
    return ids, counts


def _derived_rows_postgres(cursor: Any, ids: list[str], counts: dict[tuple[str, str], int],
                           new_people: set[str]) -> None:
    """The digest rows and counts of new points on PostgreSQL (see ``insert_contact_points``)."""
    with cursor.cursor.copy(f"COPY {DIGESTS} (point_id, version) FROM STDIN") as copy:
        copy.write("\t0\n".join(ids) + "\t0\n")
    fresh = [f"{person}\t{kind}\t{n}\n" for (person, kind), n in counts.items() if person in new_people]
    if fresh:
        with cursor.cursor.copy(f"COPY {KIND_COUNTS} (person_id, kind, n) FROM STDIN") as copy:
            copy.write("".join(fresh))
    more = sorted((person, kind, n) for (person, kind), n in counts.items() if person not in new_people)
    if more:  # people who had points: add to their counts, as the trigger's upsert does
        cursor.execute(f"INSERT INTO {KIND_COUNTS} (person_id, kind, n) "  # noqa: S608 - a constant
                       "SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::integer[]) "
                       f"ON CONFLICT (person_id, kind) DO UPDATE SET n = {KIND_COUNTS}.n + EXCLUDED.n",
                       [pg_array([p for p, _, _ in more]), pg_array([k for _, k, _ in more]),
                        pg_array([n for _, _, n in more])])


SQLITE_CACHE_MB = int(os.environ.get("RAPPORT_IMPORT_SQLITE_CACHE_MB", "64"))


def tune_connection() -> None:
    """SQLite: give this connection a page cache of ``RAPPORT_IMPORT_SQLITE_CACHE_MB`` (64 MiB).

    SQLite's default is about 2 MiB, which at a million people holds almost none of the pages
    of the contact point indexes (``normalised``, ``search_key``) a chunk's inserts and lookups
    touch, so most of them were read again for every chunk. A per-connection setting, run
    once per chunk (the read-ahead fork closes and reopens connections); it bounds the extra
    memory, which does not grow with the file (decision 0020). Nothing on PostgreSQL.
    """
    if connection.vendor == "sqlite" and SQLITE_CACHE_MB > 0:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_MB * 1024}")


def row_maker() -> Any:
    """``make(texts, others=())``: a row for ``insert_ready`` from values already in database
    form — ``texts`` all ``str``, then ``others`` (booleans, None…). The tuple, or on
    PostgreSQL its line of ``COPY`` text: made in the read-ahead process, so the run only joins
    lines (psycopg's ``write_row`` per row was a fifth of the run's CPU there); text without a
    character to escape is joined in one step."""
    if connection.vendor != "postgresql":
        return lambda texts, others=(): texts + others if others else texts
    search = _COPY_SPECIAL.search

    def make(texts: tuple[str, ...], others: tuple = ()) -> str:
        line = "\t".join(texts) if search("".join(texts)) is None else copy_text(texts)
        return f"{line}\t{copy_text(others)}" if others else line

    return make


def copy_text(values: Iterable[Any]) -> str:
    """Values as one line of PostgreSQL ``COPY … FROM STDIN`` text format (without its newline)."""
    return "\t".join([_copy_value(value) for value in values])


def _copy_value(value: Any) -> str:
    if value.__class__ is str:
        return _COPY_SPECIAL.sub(_copy_escape, value) if _COPY_SPECIAL.search(value) else value
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, int | float | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"No COPY text form for {type(value).__name__}")


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _copy_escape(found: re.Match[str]) -> str:
    return _COPY_ESCAPES[found.group()]


def update_rows(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``UPDATE … SET columns WHERE pk = ?`` for each row (the pk is the last value of each row)."""
    fields = [model._meta.get_field(name) for name in columns]
    converters = [_converter(f) for f in fields] + [_converter(model._meta.pk)]
    prepared = [tuple(conv(v) if conv else v for conv, v in zip(converters, row, strict=True)) for row in rows]
    if not prepared:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(prepared) > 1:
            # one statement for the chunk: an UPDATE per row was one of the server's largest
            # costs after the inserts (parse, plan and executor start for every row)
            every = [*fields, model._meta.pk]
            names = [f"v{i}" for i in range(len(every))]
            sets = ", ".join(f"{quote(f.column)} = u.{name}" for f, name in zip(fields, names, strict=False))
            types = [_array_type(f) for f in every]
            columns = [pg_array(column) for column in zip(*prepared, strict=True)]  # one literal each (pg_array)
            arrays = ", ".join(f"%s::{kind}[]" for kind in types)
            cursor.execute(f"UPDATE {table} AS t SET {sets} FROM unnest({arrays}) AS u({', '.join(names)}) "  # noqa: S608 - model metadata
                           f"WHERE t.{pk} = u.{names[-1]}", columns)
            return
        sets = ", ".join(f"{quote(f.column)} = %s" for f in fields)
        cursor.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = %s", prepared)  # noqa: S608 - see above


def _array_type(field: models.Field) -> str:
    """The PostgreSQL element type of ``field``'s column (``varchar(100)`` → ``varchar``)."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    return target.db_type(connection).split("(", 1)[0]


def _row_function(converters: Sequence[Any], constants: tuple) -> Any:
    """``row -> database row``, written out for these columns: only the values that need a
    converter call one, and a row of the wrong length fails to unpack. The generic loop over
    (converter, value) pairs was a fifth of the writer's time."""
    names = [f"v{i}" for i in range(len(converters))]
    values = [f"c{i}({name})" if conv else name for i, (conv, name) in enumerate(zip(converters, names, strict=True))]
    source = (f"def prepare(row):\n    {', '.join(names)}, = row\n"
              f"    return ({', '.join(values)},) + constants\n")
    scope: dict[str, Any] = {f"c{i}": conv for i, conv in enumerate(converters) if conv}
    scope["constants"] = constants
    exec(source, scope)  # noqa: S102 - source built from column positions only, no data
    return scope["prepare"]


def _converter(field: models.Field) -> Any:
    """A fast value → database converter for the types that need one, else None."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.UUIDField):
        if connection.features.has_native_uuid_field:
            return None
        return _uuid_hex
    if isinstance(target, models.DateTimeField):
        return _LastValue(connection.ops.adapt_datetimefield_value, dt.datetime)
    if isinstance(target, models.DateField):
        return lambda v: connection.ops.adapt_datefield_value(v) if isinstance(v, dt.date) else v
    if isinstance(target, models.JSONField):
        return lambda v: target.get_db_prep_save(v, connection)
    return None


def new_hex_ids(count: int) -> list[str]:
    """``count`` new version 4 UUIDs as 32 hex digits that share one random 48-bit prefix.

    Both databases take this form for a UUID column (SQLite stores it, PostgreSQL parses it),
    so rows built ahead need no converter. The shared prefix keeps a chunk's new keys together
    in every index on an id (the primary keys, ``person_id``): a chunk's inserts then touch a
    few adjacent index pages instead of one random page per row, which at a million rows no
    cache holds (decision 0020). Each id still has 74 random bits of its own (not guessable
    from a neighbour's), and the prefixes spread the chunks over the whole key space.
    """
    digits = os.urandom(6 + 10 * count).hex()
    prefix = digits[:12]
    variant = _VARIANT
    return [f"{prefix}4{digits[i:i + 3]}{variant[digits[i + 3]]}{digits[i + 4:i + 19]}"
            for i in range(12, 12 + 20 * count, 20)]


def dashed(hex_id: str) -> str:
    """The canonical text of a UUID given as 32 hex digits."""
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


def db_uuid(value: uuid.UUID) -> Any:
    """A UUID as the database's driver gives it back in a raw query (for keying raw rows)."""
    return value if connection.features.has_native_uuid_field else value.hex


def select_in(template: str, values: list[Any], *, before: Sequence[Any] = ()) -> list[tuple]:
    """Rows of ``template`` (its ``{values}`` becomes ``= ANY(%s::uuid[])`` or ``::text[]`` with
    one array literal on PostgreSQL, ``IN (…)`` in batches elsewhere); ``before`` are the
    parameters ahead of the values."""
    if not values:
        return []
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            kind = "uuid" if isinstance(values[0], uuid.UUID) else "text"
            cursor.execute(template.format(values=f"= ANY(%s::{kind}[])"), [*before, pg_array(values)])
            return cursor.fetchall()
        for start in range(0, len(values), IN_BATCH):
            batch = values[start:start + IN_BATCH]
            cursor.execute(template.format(values=f"IN ({', '.join(['%s'] * len(batch))})"), [*before, *batch])
            rows.extend(cursor.fetchall())
    return rows


IN_BATCH = 5000  # parameters per statement on SQLite: well under its 32,766


def pg_array(values: Iterable[Any]) -> str:
    """``values`` as the text of a PostgreSQL array, for one ``%s::type[]`` parameter.

    Django's psycopg cursor binds parameters on the client: a Python list is quoted element by
    element, 3-6 µs each, and the server then parses thousands of quoted constants (measured,
    4,000 emails: 13.0 → 2.9 ms of client CPU and 31.7 → 8.8 ms wall per statement; decision
    0038). As one string the list is escaped once. Every text element is double-quoted (so an
    empty string, ``NULL`` or a comma stay text), with ``\\`` and ``"`` backslash-escaped, as
    PostgreSQL's array input reads them; ``None`` is ``NULL``.
    """
    items = list(values)
    if items and all(value.__class__ is str for value in items):
        joined = '","'.join(items)
        if "\\" in joined or '"' in joined:
            joined = '","'.join([_array_escape(value) for value in items])
        return '{"' + joined + '"}'
    return "{" + ",".join([_array_element(value) for value in items]) + "}"


def _array_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    if value.__class__ is str:
        return f'"{_array_escape(value)}"'
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, int | float | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return f'"{value.isoformat()}"'
    raise TypeError(f"No array element form for {type(value).__name__}")


def new_id() -> str:
    """A random (version 4) UUID as its canonical text: what ``str(uuid.uuid4())`` gives, without
    building a ``UUID`` — a million-row import makes a few million ids."""
    digits = os.urandom(16).hex()
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # RFC 4122 variant bits 10xx


def _uuid_hex(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("-", "")
    return value.hex if isinstance(value, uuid.UUID) else value


class _LastValue:
    """Converts like ``adapt``, remembering the last conversion: a chunk stamps every row with
    the same ``now``, and adapting it anew for each of thousands of rows was measurable."""

    def __init__(self, adapt: Any, kind: type) -> None:
        self.adapt, self.kind = adapt, kind
        self.last_in: Any = object()
        self.last_out: Any = None

    def __call__(self, value: Any) -> Any:
        if value is self.last_in:
            return self.last_out
        if not isinstance(value, self.kind):
            return value
        self.last_in, self.last_out = value, self.adapt(value)
        return self.last_out
