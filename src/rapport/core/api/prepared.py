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

import functools
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]  # where the ids go in ``params``
    prep: Callable[[Any], Any]  # an id as the database takes it
    converters: list[tuple[int, list[Callable[..., Any]], Any]]
    connection: Any
    compiler: Any  # kept for ``objects``: how the selected columns map onto models


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
        compiler = compiled.compiler
        klass_info, select = compiler.klass_info, compiler.select
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        names = [column[0].target.attname for column in select[start:end]]
        model = klass_info["model"]
        populators = get_related_populators(klass_info, select, using)
        found = []
        for row in rows:  # as django.db.models.query.ModelIterable does
            instance = model.from_db(using, names, row[start:end])
            for populator in populators:
                populator.populate(row, instance)
            for name, position in compiler.annotation_col_map.items():
                setattr(instance, name, row[position])
            found.append(instance)
        return found

    def _run(self, ids: Sequence[Any], using: str) -> tuple[_Compiled, list[tuple[Any, ...]]]:
        connection = connections[using]
        compiled = self._compiled.setdefault(connection, {}).get(len(ids))
        if compiled is None:
            compiled = self._compiled[connection][len(ids)] = self._compile(connection, len(ids))
        params = list(compiled.params)
        for slot, value in zip(compiled.slots, ids, strict=True):
            params[slot] = compiled.prep(value)
        with _cursor(connection) as cursor:
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


def _cursor(connection: Any) -> Any:
    """Django's cursor; on PostgreSQL with prepared statements on, a server-binding one."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        if connection.connection.prepare_threshold is not None:
            with connection.wrap_database_errors:
                return connection._prepare_cursor(_preparing_cursor_class()(connection.connection))
    return connection.cursor()


@functools.cache
def _preparing_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):  # type: ignore[misc, valid-type]
        """Prepares on first use: these statements are known to repeat."""

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = True,
                    binary: bool | None = None) -> Any:
            return super().execute(query, params, prepare=prepare, binary=binary)

    return PreparingCursor
