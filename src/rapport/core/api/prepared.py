"""Fixed queries of the API's hot paths, compiled to SQL once and run with new ids (A1).

Django compiles a queryset to SQL on every evaluation (``as_sql``, ``get_order_by``,
``add_q``): for the few queries every request runs with only a list of ids changing, that
was about a third of a detail read's CPU. A ``PreparedQuery`` is defined as an ordinary
queryset of ids, compiled on first use per connection and number of ids, and afterwards
only its parameters change. On PostgreSQL it also runs as a server-side prepared
statement (parsed and planned once per connection) when ``prepare_threshold`` is set in the
database ``OPTIONS`` (settings: ``RAPPORT_PG_PREPARE``); every other query keeps Django's
client-side binding.

Rows come back as tuples with Django's own converters applied, so values are what the ORM
would give. The queries still go through Django's cursor wrapper: they are logged, counted
by ``CaptureQueriesContext`` and wrapped in the database error handling like any other.
"""

from __future__ import annotations

import contextlib
import functools
import re
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import NOT_PROVIDED, QuerySet, signals
from django.db.models.query import get_related_populators
from django.utils import timezone


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]  # where the ids go in ``params``
    prep: Callable[[Any], Any]  # an id as the database takes it
    converters: list[tuple[int, list[Callable[..., Any]], Any]]
    connection: Any
    compiler: Any  # kept for ``objects``: how the selected columns map onto models

    def instances(self, using: str) -> tuple[Any, int, int, list[str], list[Any], tuple[tuple[str, int], ...]]:
        """How ``objects`` makes instances of a row: (model, first and end column of its own
        fields, their attribute names, the ``select_related`` populators, annotation positions).
        Worked out once per compiled query, as Django's iterable does once per evaluation: the
        populators hold only the columns' layout (the token's sign-in ran them every request)."""
        found = self.__dict__.get("_instances")
        if found is None or found[0] != using:
            compiler = self.compiler
            klass_info, select = compiler.klass_info, compiler.select
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            names = [column[0].target.attname for column in select[start:end]]
            found = (using, (klass_info["model"], start, end, names, get_related_populators(klass_info, select, using),
                             tuple(compiler.annotation_col_map.items())))
            self.__dict__["_instances"] = found  # frozen: set as a cache, beside the fields
        return found[1]


class PreparedQuery:
    """``build(ids)`` returns a ``values_list`` queryset whose only varying values are ``ids``.

    ``prep_field`` is the model field the ids are compared with (it turns a UUID into what the
    database stores: hex text on SQLite, a uuid on PostgreSQL). ``sample`` makes a fresh value of
    that kind, used to find where the ids go in the compiled SQL (default: a random UUID).
    """

    def __init__(self, build: Callable[[list[Any]], QuerySet[Any]], *, prep_field: Any,
                 sample: Callable[[], Any] = uuid.uuid4) -> None:
        self.build = build
        self.prep_field = prep_field
        self.sample = sample
        # Per connection (Django keeps one per thread), so nothing is shared between threads.
        self._compiled: weakref.WeakKeyDictionary[Any, dict[int, _Compiled]] = weakref.WeakKeyDictionary()

    def rows(self, ids: Sequence[Any], *, using: str = "default") -> list[tuple[Any, ...]]:
        if not ids:
            return []
        return self._run(ids, using)[1]

    def objects(self, ids: Sequence[Any], *, using: str = "default") -> list[Any]:
        """Model instances, as iterating the queryset would give them: the ``select_related``
        rows attached (cached, as Django does) and annotations set as attributes. For a queryset
        of instances, not of ``values_list`` rows."""
        if not ids:
            return []
        compiled, rows = self._run(ids, using)
        model, start, end, names, populators, annotations = compiled.instances(using)
        found = []
        for row in rows:  # as django.db.models.query.ModelIterable does
            instance = model.from_db(using, names, row[start:end])
            for populator in populators:
                populator.populate(row, instance)
            for name, position in annotations:
                setattr(instance, name, row[position])
            found.append(instance)
        return found

    def sql(self, ids: Sequence[Any], *, using: str = "default") -> tuple[str, list[Any]]:
        """The compiled statement and its parameters for ``ids`` (``%s`` placeholders), for a
        caller that runs it inside a statement of its own: the query is still stated once."""
        compiled, params = self._bound(connections[using], ids)
        return compiled.sql, params

    def _bound(self, connection: Any, ids: Sequence[Any]) -> tuple[_Compiled, list[Any]]:
        compiled = self._compiled.setdefault(connection, {}).get(len(ids))
        if compiled is None:
            compiled = self._compiled[connection][len(ids)] = self._compile(connection, len(ids))
        params = list(compiled.params)
        for slot, value in zip(compiled.slots, ids, strict=True):
            params[slot] = compiled.prep(value)
        return compiled, params

    def _run(self, ids: Sequence[Any], using: str) -> tuple[_Compiled, list[tuple[Any, ...]]]:
        connection = connections[using]
        compiled, params = self._bound(connection, ids)
        with preparing_cursor(connection) as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if not compiled.converters:
            return compiled, [tuple(row) for row in rows]
        return compiled, [_convert(row, compiled.converters, connection) for row in rows]

    def _compile(self, connection: Any, count: int) -> _Compiled:
        # Compiled twice with different ids: the parameters that differ are the id slots.
        first, second = ([self.sample() for _ in range(count)] for _ in range(2))
        sql, params = self._sql(first, connection)
        again, params_again = self._sql(second, connection)
        slots = tuple(i for i, (a, b) in enumerate(zip(params, params_again, strict=True)) if a != b)

        def prep(value: Any) -> Any:
            return self.prep_field.get_db_prep_value(value, connection, prepared=False)

        if sql != again or [params[i] for i in slots] != [prep(v) for v in first]:
            raise ValueError("A PreparedQuery may vary only in its ids.")
        compiler = self.build(first).query.get_compiler(connection=connection)
        compiler.setup_query()  # select, klass_info and annotation_col_map, as as_sql sets them
        converters = compiler.get_converters([col for col, _, _ in compiler.select])
        return _Compiled(sql, tuple(params), slots, prep,
                         [(i, funcs, expression) for i, (funcs, expression) in converters.items()], connection,
                         compiler)

    def _sql(self, ids: list[Any], connection: Any) -> tuple[str, tuple[Any, ...]]:
        return self.build(ids).query.get_compiler(connection=connection).as_sql()


def _convert(row: Sequence[Any], converters: list[tuple[int, list[Callable[..., Any]], Any]],
             connection: Any) -> tuple[Any, ...]:
    values = list(row)
    for index, funcs, expression in converters:
        value = values[index]
        for func in funcs:
            value = func(value, expression, connection)
        values[index] = value
    return tuple(values)


def preparing_cursor(connection: Any) -> Any:
    """Django's cursor; on PostgreSQL with prepared statements on, a server-binding one that
    prepares every statement it runs (for statements known to repeat: the API's hot reads,
    the audit's append). Still Django's wrapper: logged with text, counted, errors wrapped."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        if connection.connection.prepare_threshold is not None:
            with connection.wrap_database_errors:
                return connection._prepare_cursor(_preparing_cursor_class()(connection.connection))
    return connection.cursor()


@contextlib.contextmanager
def statements_prepared(using: str = "default") -> Iterator[None]:
    """Inside the block, this thread's connection runs its statements as ``preparing_cursor``
    does: parsed and planned once per connection (PostgreSQL, prepared statements on; elsewhere
    nothing changes). For a block whose few statements repeat and are built by code that opens
    its own cursors: the duplicate check's query, planned on every create (0.5 ms of backend CPU).

    Only unnamed cursors are affected (server-side, named ones are not); psycopg keeps at most
    ``prepared_max`` statements per connection and drops the least used. The connection's
    prepared statements run their generic plan (``_generic_plans``).
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None or "create_cursor" in connection.__dict__:
        yield  # not preparing, or already inside such a block
        return
    _generic_plans(connection)
    default = connection.create_cursor

    def create_cursor(name: str | None = None) -> Any:
        return default(name) if name else _preparing_cursor_class()(connection.connection)

    connection.create_cursor = create_cursor  # this connection object only: it is this thread's
    try:
        yield
    finally:
        del connection.create_cursor


# psycopg connections (database sessions) whose prepared statements run their generic plan.
_generic_sessions: weakref.WeakSet[Any] = weakref.WeakSet()


def _generic_plans(connection: Any) -> None:
    """Make this session run its prepared statements on their generic plan, planned once.

    PostgreSQL plans a prepared statement's first five runs for their values, then keeps doing
    so whenever those plans look cheaper than the generic one: it did for the duplicate check
    on every create (0 generic plans in 50 runs, 0.6 ms of planning each — its arms' LIMITs
    and IN lists make the value-specific estimates look cheaper), although its plan is the
    same index scans either way. Only prepared statements are affected (the preparing cursors'
    few fixed statements, which already ran their generic plan from the sixth run on; every
    other query is bound on the client and has nothing to plan generically). One ``SET`` per
    session; inside a transaction a rollback would undo it, so it is then sent again next time.
    """
    from psycopg.pq import TransactionStatus

    raw = connection.connection
    if raw in _generic_sessions:
        return
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
    if raw.info.transaction_status == TransactionStatus.IDLE:  # not in a transaction: it stays
        _generic_sessions.add(raw)


@functools.cache
def _preparing_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):  # type: ignore[misc, valid-type]
        """Prepares on first use: these statements are known to repeat."""

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = True,
                    binary: bool | None = None) -> Any:
            result = super().execute(query, params, prepare=prepare, binary=binary)
            # Django's query log reads the text from ``_query.query``, which only psycopg's
            # client-binding cursor fills (psycopg itself never reads it back).
            self._query = _LoggedText(self.connection, query, params)
            return result

    return PreparingCursor


class _LoggedText:
    """A prepared statement's text with its values, made only if the query log reads it."""

    __slots__ = ("connection", "params", "sql")

    def __init__(self, connection: Any, sql: Any, params: Any) -> None:
        self.connection, self.sql, self.params = connection, sql, params

    @property
    def query(self) -> bytes:
        from psycopg import ClientCursor

        return ClientCursor(self.connection).mogrify(self.sql, self.params).encode()


# --------------------------------------------------------------------------------- inserts


def insert_together(*groups: tuple[type[Any], Sequence[Any]], using: str = "default") -> None:
    """Insert new model instances, as ``save()`` / ``bulk_create`` would, in one round trip on
    PostgreSQL (one statement: ``WITH a AS (INSERT …) INSERT …``) and one statement per model
    elsewhere. The SQL is built once per connection and row counts; on PostgreSQL it runs as a
    prepared statement. For the API's create (a person and their contact points): Django
    compiling the two INSERTs was about a tenth of the request's CPU.

    Each value is what Django would write (``pre_save(add=True)`` — timestamps, sealed fields,
    blind indexes — then ``get_db_prep_save``); ``pre_save`` / ``post_save`` signals are sent
    when anyone listens. The instances are marked saved. Models whose primary key or any field
    the database fills (``db_returning``, ``db_default``) are refused: nothing is read back.
    Foreign keys between the groups are fine where the constraints are checked at commit
    (Django's are ``DEFERRABLE INITIALLY DEFERRED`` on PostgreSQL; SQLite checks each statement,
    so list parents first).
    """
    insert = TogetherInsert(*groups, using=using)
    insert.run()
    insert.done()


@dataclass(frozen=True)
class Fragment:
    """The start and end of a statement another module writes in (PostgreSQL): ``ctes`` open its
    ``WITH`` (with ``params``, first), the statement's own writes happen only where ``condition``
    holds, and ``outcome`` is its closing ``SELECT``, whose rows that module reads (the audit's
    single append, ``access.audit.record_person_access_with``)."""

    ctes: str
    params: list[Any]
    condition: str
    outcome: str


class TogetherInsert:
    """``insert_together`` in its steps: the values prepared once (``pre_save`` signals sent),
    ``run()`` or ``run_after(fragment)`` to write them, ``done()`` once they are in (instances
    marked saved, ``post_save`` sent)."""

    def __init__(self, *groups: tuple[type[Any], Sequence[Any]], using: str = "default") -> None:
        self.groups = tuple((model, list(objs)) for model, objs in groups if objs)
        self.using = using
        self.connection = connections[using]
        for model, objs in self.groups:
            if signals.pre_save.has_listeners(model):
                for obj in objs:
                    signals.pre_save.send(sender=model, instance=obj, raw=False, using=using, update_fields=None)
        self.values = [[_db_values(model, obj, self.connection) for obj in objs] for model, objs in self.groups]

    @property
    def one_statement(self) -> bool:
        """Whether ``run_after`` can write it: PostgreSQL, and within its limit on parameters."""
        return (self.connection.vendor == "postgresql"
                and sum(map(len, (r for g in self.values for r in g))) <= PG_MAX_PARAMS)

    def run(self) -> None:
        if not self.groups:
            return
        connection, values = self.connection, self.values
        if self.one_statement:
            sql = _insert_sql(connection, tuple((model, len(objs)) for model, objs in self.groups))
            with preparing_cursor(connection) as cursor:
                cursor.execute(sql, [v for group in values for row in group for v in row])
            return
        # one statement per model, in batches within the database's limit on parameters
        limit = connection.features.max_query_params or PG_MAX_PARAMS
        with connection.cursor() as cursor:
            for (model, _), group in zip(self.groups, values, strict=True):
                size = max(1, limit // len(_insert_fields(model)))
                for first in range(0, len(group), size):
                    batch = group[first:first + size]
                    cursor.execute(_insert_sql(connection, ((model, len(batch)),)), [v for row in batch for v in row])

    def run_after(self, fragment: Fragment) -> list[tuple[Any, ...]]:
        """Write the rows in ``fragment``'s statement, only where its condition holds: one round
        trip for the fragment's writes and these; its outcome's rows. The rows are typed (``%s::uuid``,
        without length or precision, so a too long value still fails as an insert's would): a
        ``SELECT``'s parameters get no type from the columns they go into."""
        if not self.one_statement:
            raise ValueError("run_after writes in one PostgreSQL statement: use run().")
        shape = tuple((model, len(objs)) for model, objs in self.groups)
        sql = _conditional_sql(self.connection, shape, fragment.ctes, fragment.condition, fragment.outcome)
        with preparing_cursor(self.connection) as cursor:
            cursor.execute(sql, [*fragment.params, *(v for group in self.values for row in group for v in row)])
            return cursor.fetchall()

    def done(self) -> None:
        using = self.using
        for model, objs in self.groups:
            for obj in objs:
                obj._state.adding, obj._state.db = False, using
            if signals.post_save.has_listeners(model):
                for obj in objs:
                    signals.post_save.send(sender=model, instance=obj, created=True, update_fields=None, raw=False,
                                           using=using)


PG_MAX_PARAMS = 65535  # PostgreSQL's limit on one statement's parameters
_inserts: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], str]] = weakref.WeakKeyDictionary()


@functools.cache
def _insert_fields(model: type[Any]) -> list[Any]:
    if model._meta.parents:
        raise ValueError(f"{model.__name__} inherits from a concrete model: use save().")
    fields = list(model._meta.local_concrete_fields)
    for field in fields:
        if getattr(field, "db_returning", False) or getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
            raise ValueError(f"{model.__name__}.{field.name} is filled in by the database: use save().")
    return fields


def _insert_sql(connection: Any, key: tuple[tuple[type[Any], int], ...]) -> str:
    """One INSERT per (model, row count); several are chained as one statement (PostgreSQL)."""
    cached = _inserts.setdefault(connection, {}).get(key)
    if cached is not None:
        return cached
    quote = connection.ops.quote_name
    inserts = []
    for model, count in key:
        fields = _insert_fields(model)
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        inserts.append(f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608 - model metadata only
                       f"VALUES {', '.join([row] * count)}")
    heads = ", ".join(f"inserted_{i} AS ({sql})" for i, sql in enumerate(inserts[:-1]))
    sql = _inserts[connection][key] = f"WITH {heads} {inserts[-1]}" if heads else inserts[0]
    return sql


_conditionals: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], str]] = weakref.WeakKeyDictionary()


def _conditional_sql(connection: Any, key: tuple[tuple[type[Any], int], ...], ctes: str, condition: str,
                     outcome: str) -> str:
    """``WITH <ctes>, inserted_0 AS (INSERT … SELECT … WHERE <condition>), … <outcome>``."""
    cache_key = (key, ctes, condition, outcome)
    cached = _conditionals.setdefault(connection, {}).get(cache_key)
    if cached is not None:
        return cached
    quote = connection.ops.quote_name
    inserts = []
    for i, (model, count) in enumerate(key):
        fields = _insert_fields(model)
        row = "(" + ", ".join(f"%s::{_cast_type(f, connection)}" for f in fields) + ")"
        inserts.append(f"inserted_{i} AS (INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608 - model metadata only
                       f"({', '.join(quote(f.column) for f in fields)}) "
                       f"SELECT * FROM (VALUES {', '.join([row] * count)}) AS v WHERE {condition})")
    sql = _conditionals[connection][cache_key] = f"WITH {ctes}, {', '.join(inserts)} {outcome}"
    return sql


def _cast_type(field: Any, connection: Any) -> str:
    """The column's type without its length or precision (``varchar(200)`` -> ``varchar``): the
    insert's assignment to the column still checks them, where a cast would cut the value."""
    return re.sub(r"\([^)]*\)", "", field.db_type(connection))


def _db_values(model: type[Any], obj: Any, connection: Any) -> list[Any]:
    native_uuid = connection.features.has_native_uuid_field
    values = []
    for (field, plain), quick in zip(_insert_plan(model), _quick_plan(model), strict=True):
        if plain is not None:
            value = getattr(obj, field.attname)
            if value is None or type(value) in plain:  # what the field's preparation returns
                values.append(value)
                continue
        elif quick is _UUID:
            value = getattr(obj, field.attname)
            if value is None or value.__class__ is uuid.UUID:  # UUIDField.get_db_prep_value's two answers
                values.append(value if value is None or native_uuid else value.hex)
                continue
        elif quick is _NOW:  # DateTimeField.pre_save on add, then the backend's adaptation
            value = timezone.now()
            setattr(obj, field.attname, value)
            values.append(connection.ops.adapt_datetimefield_value(value))
            continue
        values.append(field.get_db_prep_save(field.pre_save(obj, True), connection))
    return values


_UUID, _NOW = "uuid", "now"


@functools.cache
def _quick_plan(model: type[Any]) -> tuple[str | None, ...]:
    """Per field of ``_insert_fields``, a shortcut ``_db_values`` takes for it, or None.

    ``_UUID``: a plain ``UUIDField``, or a ``ForeignKey`` to one, read as it is (both prepare a
    ``uuid.UUID`` to itself or its hex, by the backend, and None to None). ``_NOW``: a plain
    ``DateTimeField`` with ``auto_now`` or ``auto_now_add``, which on an insert always takes
    ``timezone.now()`` (an aware or naive datetime, as the settings say: its preparation only
    adapts it). A create's ids, timestamps and foreign keys went through two to five calls
    each; they were a third of its insert's Python.
    """
    from django.db.models import DateTimeField, ForeignKey, UUIDField

    quick: list[str | None] = []
    for field in _insert_fields(model):
        kind = type(field)
        if kind is UUIDField or (kind is ForeignKey and type(field.target_field) is UUIDField):
            quick.append(_UUID)
        elif kind is DateTimeField and (field.auto_now or field.auto_now_add):
            quick.append(_NOW)
        else:
            quick.append(None)
    return tuple(quick)


@functools.cache
def _insert_plan(model: type[Any]) -> list[tuple[Any, tuple[type, ...] | None]]:
    """Each field with the value types it writes unchanged (``None``: always prepared).

    Django's plain ``CharField`` and ``TextField`` (not subclasses: sealed fields are) read the
    attribute in ``pre_save`` and hand a ``str`` or ``None`` back as it is, as ``BooleanField``
    does a ``bool``; the two calls per value were a tenth of a create's insert."""
    from django.db.models import BooleanField, CharField, Field, TextField

    passes: dict[type, tuple[type, ...]] = {CharField: (str,), TextField: (str,), BooleanField: (bool,)}
    plan = []
    for field in _insert_fields(model):
        kind = type(field)
        plain = passes.get(kind) if type(field).pre_save is Field.pre_save else None
        plan.append((field, plain))
    return plan
