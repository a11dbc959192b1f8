"""S2 — record visibility. ``restrict`` is the one place that decides who sees which record.

Every list, search, API, export, report and job acting for a user starts from
``Model.objects.visible_to(user, action)``, which lands here. The decision, in order:

1. inactive or anonymous users see nothing; Administrators (and superusers) see everything;
2. the role must allow the action on the object type at all (``has_permission``);
3. if the organisation-wide default for the type grants the needed access, every record;
4. otherwise the records owned by the user or anyone below them in the management
   hierarchy, shared by a sharing rule targeting one of their roles or teams (records owned
   by a team and/or matching criteria), or shared manually with them, their team or role.

Sharing only widens access from the default. The filter is one set-based ``WHERE`` (owner
ids, criteria, and manual shares as an indexed semi-join) — no per-record Python. It is built
once per access context, which requests reuse (``policy.py``), and rendered once per database;
on PostgreSQL the user's shared ids are read into it then (until a share changes, decision 0010).

``restrict_first`` gives the first records of an ordered query that ``restrict`` would give,
applying the same condition to the first candidates in order only (a search's prefix range
sorted and cut as for an unrestricted user) and to every candidate only when those do not
hold a full page (decision 0019).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import connections
from django.db.models import BooleanField, Expression, F, Model, Q, QuerySet

from rapport.access.permissions import canonical_action
from rapport.access.policy import AccessContext, access_context

READ, READ_WRITE, PRIVATE = "read", "read_write", "private"
READ_ACTIONS = frozenset({"read", "export"})


@dataclass(frozen=True)
class RecordType:
    label: str                       # "people.person" — the object type of roles and shares
    model_label: str                 # "people.Person"
    owner_field: str = "owner"
    default_access: str = PRIVATE    # when the organisation has not chosen one
    criteria_fields: frozenset[str] = frozenset()  # fields sharing rules may match on

    @property
    def model(self) -> type[Model]:
        return apps.get_model(self.model_label)


RECORD_TYPES: dict[str, RecordType] = {}


def register_record_type(model_label: str, *, owner_field: str = "owner", default_access: str = PRIVATE,
                         criteria_fields: tuple[str, ...] | list[str] = ()) -> RecordType:
    """Make a model shareable: deals, cases… call this in their ``AppConfig.ready()``."""
    label = model_label.lower()
    record_type = RecordType(label, model_label, owner_field, default_access, frozenset(criteria_fields))
    RECORD_TYPES.setdefault(label, record_type)
    return RECORD_TYPES[label]


register_record_type("people.Person", default_access=READ,
                     criteria_fields=("country", "language", "timezone", "tags__name"))
register_record_type("people.Organisation", default_access=READ,
                     criteria_fields=("domain", "tags__name", "parent_id"))


def record_type_for(model: type[Model]) -> RecordType:
    try:
        return RECORD_TYPES[model._meta.label_lower]
    except KeyError as err:
        raise ImproperlyConfigured(
            f"{model._meta.label} is not shareable: call rapport.access.sharing.register_record_type"
            f"({model._meta.label!r}) in its AppConfig.ready().") from err


def restrict(queryset: QuerySet, user: Any, action: str = "read") -> QuerySet:
    """``queryset`` narrowed to the records ``user`` may ``action`` (read, update, delete, export…)."""
    condition = _condition(queryset.model, user, action)
    if condition is NOTHING:
        return queryset.none()
    return queryset if condition is None else queryset.filter(condition)


FIRST_WINDOW = 4  # candidates looked at per record wanted before every candidate is filtered
# Where the window pays: SQLite tests the condition row by row on every match before its sort.
# PostgreSQL applies it inside the scan, and a LIMIT on the candidates changes its plan (an index
# walk of the name order for 32 rows instead of a bitmap scan and a top-N sort), decision 0019.
WINDOWED_VENDORS = frozenset({"sqlite"})


def restrict_first(queryset: QuerySet, user: Any, limit: int, action: str = "read", *,
                   window: int | None = None) -> list[Model]:
    """The first ``limit`` records of the ordered ``queryset`` that ``user`` may ``action``.

    The same records, in the same order, as ``list(restrict(queryset, user, action)[:limit])``
    (the order is made total with the primary key). A search's prefix range can match
    thousands of rows of which a page is shown: instead of testing the condition on each,
    the database picks the first ``window`` candidates in order (by default ``FIRST_WINDOW``
    per record wanted), exactly as for a user without a filter, and the condition is tested
    on those. If they hold ``limit`` visible records those are the answer: any visible
    record before the last of them is among the candidates. If not (a short match list, or
    a user who sees little), the condition is applied to every candidate, as ``restrict``
    does, so nothing visible is ever left out.

    The condition is ``restrict``'s own (``_condition``), its SQL rendered once per access
    context and placed around the candidates' SQL (a derived table under the model's table
    name), so no more query building than the unrestricted query's. Querysets this cannot
    wrap (joined columns, deferred fields, annotations, orderings other than the model's own
    fields), and databases outside ``WINDOWED_VENDORS``, take ``restrict`` itself.
    """
    model = queryset.model
    ordering = list(queryset.query.order_by) or list(model._meta.ordering)
    if not any(name.lstrip("-") in ("pk", model._meta.pk.name) for name in ordering):
        ordering.append("pk")  # a total order: the candidates and the answer agree on ties
    queryset = queryset.order_by(*ordering)
    condition = _condition(model, user, action)
    if condition is NOTHING or limit <= 0:
        return []
    if condition is None:
        return list(queryset[:limit])
    connection = connections[queryset.db]
    order_sql = _order_sql(model, ordering, connection)
    where = None
    if connection.vendor in WINDOWED_VENDORS and order_sql is not None and _wrappable(queryset):
        where = _condition_sql(condition, model, connection)
    if where is None:
        return list(restrict(queryset, user, action)[:limit])
    candidates_sql, candidates_params = queryset.query.get_compiler(using=queryset.db).as_sql()
    table = connection.ops.quote_name(model._meta.db_table)
    size = window if window is not None else FIRST_WINDOW * limit
    found: list[Model] = []
    for inner in (f"{candidates_sql} LIMIT {int(size)}", candidates_sql):  # the window, then every candidate
        sql = (f"SELECT * FROM ({inner}) AS {table} WHERE {where[0]} "  # noqa: S608 - compiled SQL, placeholders
               f"ORDER BY {order_sql} LIMIT {int(limit)}")
        found = list(model._default_manager.raw(sql, [*candidates_params, *where[1]], using=queryset.db)
                     .prefetch_related(*queryset._prefetch_related_lookups))
        if len(found) == limit:
            break
    return found


def _wrappable(queryset: QuerySet) -> bool:
    """Whether the candidates' SQL selects exactly the model's own columns (what ``raw`` maps)."""
    query = queryset.query
    return not (query.select_related or query.annotations or query.extra or query.deferred_loading[0]
                or query.distinct or query.combinator or query.is_sliced
                or any(query.alias_refcount[alias] for alias in list(query.alias_map)[1:]))


def _order_sql(model: type[Model], ordering: list[str], connection: Any) -> str | None:
    """``ordering`` (the model's own fields, ``-`` for descending) against its table name; None otherwise."""
    table, parts = connection.ops.quote_name(model._meta.db_table), []
    for name in ordering:
        if not isinstance(name, str):
            return None
        bare = name.lstrip("-")
        try:
            field = model._meta.pk if bare == "pk" else model._meta.get_field(bare)
        except FieldDoesNotExist:
            return None
        if (field.is_relation and not field.many_to_one) or not getattr(field, "column", None):
            return None
        parts.append(f"{table}.{connection.ops.quote_name(field.column)} {'DESC' if name.startswith('-') else 'ASC'}")
    return ", ".join(parts)


def _condition_sql(condition: Q, model: type[Model], connection: Any) -> tuple[str, list[Any]] | None:
    """``condition`` as SQL on the model's table, rendered once per condition and database.

    The conditions live as long as their access context (``visibility_q``), so the SQL is kept
    on the condition itself; None when it needs a join (it could not be placed around a
    derived table).
    """
    cache = condition.__dict__.setdefault("_rapport_sql", {})
    if connection.alias not in cache:
        query = model._default_manager.filter(condition).query
        compiler = query.get_compiler(connection=connection)
        sql, params = compiler.compile(query.where)
        joined = any(query.alias_refcount[alias] for alias in list(query.alias_map)[1:])
        cache[connection.alias] = None if joined else (sql, list(params))
    return cache[connection.alias]


NOTHING = Q(pk__in=[])  # marker: the user may see no record of the type


def _condition(model: type[Model], user: Any, action: str) -> Q | None:
    """The decision of ``restrict``: None (every record), ``NOTHING``, or the condition."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return NOTHING
    record_type = record_type_for(model)
    action = canonical_action(action)
    ctx = access_context(user)
    if ctx.is_administrator:
        return None
    if action not in ctx.permissions.get(record_type.label, frozenset()):
        return NOTHING
    return visibility_q(ctx, record_type, READ if action in READ_ACTIONS else READ_WRITE)


def can(user: Any, record: Model, action: str = "read") -> bool:
    """Whether ``user`` may ``action`` this one record (one query)."""
    return restrict(type(record)._default_manager.filter(pk=record.pk), user, action).exists()


def visibility_q(ctx: AccessContext, record_type: RecordType, need: str) -> Q | None:
    """The WHERE condition for records of ``record_type`` granting ``need``; None: all of them.

    Built once per access context (a request): a search asks several times.
    """
    key = (record_type.label, need)
    if key not in ctx._visibility:
        ctx._visibility[key] = _visibility_q(ctx, record_type, need)
    return ctx._visibility[key]


def _visibility_q(ctx: AccessContext, record_type: RecordType, need: str) -> Q | None:
    from rapport.access.models import RecordShare

    if covers(ctx.default_access(record_type.label, record_type.default_access), need):
        return None
    model = record_type.model
    owner_column = model._meta.get_field(record_type.owner_field).attname
    owner_ids = set(ctx.principal_ids)
    terms: dict[tuple[tuple[str, tuple[Any, ...]], ...], None] = {}  # AND of column IN (values), OR-ed
    by_field: dict[str, set[Any]] = {}  # single-field criteria without an owner team, merged per field
    other_rules: list[Q] = []
    for rule in ctx.rules():
        if rule.object_type != record_type.label or not covers(rule.access, need):
            continue
        if rule.criteria:
            parts = _criteria_columns(record_type, rule.criteria)
            if parts is None:
                matched = criteria_q(record_type, rule.criteria)
                if matched is None:
                    continue  # a rule naming a field it may not match on shares nothing
                if rule.owner_ids is not None:
                    matched &= Q(**{f"{owner_column}__in": sorted(rule.owner_ids, key=str)})
                other_rules.append(matched)
                continue
            if rule.owner_ids is not None:
                parts.append((owner_column, tuple(sorted(rule.owner_ids, key=str))))
            elif len(parts) == 1:
                by_field.setdefault(parts[0][0], set()).update(parts[0][1])
                continue
            if all(values for _, values in parts):  # an empty list matches nothing
                terms[tuple(sorted(parts))] = None
        elif rule.owner_ids is not None:
            owner_ids |= rule.owner_ids
    merged = [((owner_column, tuple(sorted(owner_ids, key=str))),)]
    merged += [((name, tuple(sorted(values, key=str))),) for name, values in sorted(by_field.items()) if values]
    share = None
    grantees = [(name, tuple(sorted(ids, key=str))) for name, ids in
                (("user", ctx.principal_ids), ("team", ctx.team_ids), ("role", ctx.role_ids)) if ids]
    if grantees:
        share = (RecordShare, record_type.label, tuple(_granting(need)), tuple(grantees))
    condition = Q(AnyOf(model, (*merged, *terms), share))
    for matched in other_rules:
        condition |= matched
    return condition


def _criteria_columns(record_type: RecordType, criteria: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]] | None:
    """Criteria on the model's own columns as ``[(attname, values)]``; None: use ``criteria_q``."""
    parts = []
    for key, value in criteria.items():
        if key not in record_type.criteria_fields or "__" in key:
            return None
        try:
            field = record_type.model._meta.get_field(key)
        except FieldDoesNotExist:
            return None
        values = tuple(value) if isinstance(value, list | tuple) else (value,)
        if field.is_relation or any(v is None or isinstance(v, list | tuple | dict) for v in values):
            return None  # None means IS NULL to the ORM; leave such rules to it
        parts.append((field.attname, values))
    return parts


class AnyOf(Expression):
    """The visibility condition compiled in one go (bench/visibility.py: the ORM's lookups cost
    more per request than the query's filtering): ``(a IN (…) AND …) OR … OR pk IN (SELECT
    object_id FROM <shares> WHERE user_id IN (…) AND object_type = … AND access IN (…) UNION ALL
    … team_id … UNION ALL … role_id …)``.

    ``terms``: OR-ed tuples of ``(attname, values)`` AND-ed; ``share``: the manual-share
    subquery's model, object type, granting access levels and ``(grantee field, ids)``.
    Plain SQL both databases take; values go through each field's ``get_db_prep_value``.
    The condition lives as long as the access context (requests reuse it, policy.py), so the
    rendered SQL is kept per database vendor and column names: a request only copies it.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, model: type[Model], terms: tuple[tuple[tuple[str, tuple[Any, ...]], ...], ...],
                 share: tuple[Any, str, tuple[str, ...], tuple[tuple[str, tuple[Any, ...]], ...]] | None) -> None:
        super().__init__(output_field=BooleanField())
        self.model, self.terms, self.share = model, terms, share
        self.names = sorted({name for term in terms for name, _ in term} | {model._meta.pk.attname})
        self.columns: list[Any] = [F(name) for name in self.names]
        self.rendered: dict[tuple[Any, ...], tuple[str, list[Any]]] = {}  # shared by copies

    def get_source_expressions(self) -> list[Any]:
        return self.columns

    def set_source_expressions(self, exprs: list[Any]) -> None:
        self.columns = list(exprs)

    def resolve_expression(self, query: Any = None, allow_joins: bool = True, reuse: Any = None,
                           summarize: bool = False, for_save: bool = False) -> AnyOf:
        # The columns are the model's own: point them at the query's base table directly
        # rather than resolving each F() through the ORM's join machinery.
        if query is None or query.model is not self.model:
            return super().resolve_expression(query, allow_joins, reuse, summarize, for_save)  # type: ignore[return-value]
        clone = self.copy()
        alias = query.get_initial_alias()
        meta = self.model._meta
        clone.columns = [meta.get_field(name).get_col(alias) for name in self.names]
        return clone

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        compiled = [compiler.compile(column) for column in self.columns]
        key = (connection.vendor, *(sql for sql, _ in compiled))
        if key not in self.rendered and not any(params for _, params in compiled):
            self.rendered[key] = self._render(dict(zip(self.names, compiled, strict=True)), connection)
        if key in self.rendered:
            sql, params = self.rendered[key]
            return sql, list(params)
        return self._render(dict(zip(self.names, compiled, strict=True)), connection)

    def _render(self, compiled: dict[str, tuple[str, list[Any]]], connection: Any) -> tuple[str, list[Any]]:
        meta = self.model._meta
        # SQLite: unary + keeps these terms from driving the plan (with statistics it still took
        # the OR of owner, criteria and share indexes for selective and sorted the ~half of the
        # table a sales rep sees, instead of walking the list-order or search index and
        # stopping at a page). PostgreSQL's planner weighs them itself and has no + for uuid.
        plus = "+" if connection.vendor == "sqlite" else ""
        columns = {name: (plus + sql, col_params) for name, (sql, col_params) in compiled.items()}
        params: list[Any] = []
        branches = []
        for term in self.terms:
            parts = []
            for name, values in term:
                sql, col_params = columns[name]
                field = meta.get_field(name)
                parts.append(f"{sql} IN ({', '.join(['%s'] * len(values))})")
                params += [*col_params, *(field.get_db_prep_value(v, connection) for v in values)]
            branches.append(" AND ".join(parts) if len(parts) == 1 else f"({' AND '.join(parts)})")
        if self.share is not None:
            share_sql, share_params = self._render_share(compiled[meta.pk.attname], connection)
            if share_sql:
                branches.append(share_sql)
                params += share_params
        return f"({' OR '.join(branches)})", params

    def _render_share(self, pk: tuple[str, list[Any]], connection: Any) -> tuple[str, list[Any]]:
        """The manual-shares branch, in the form each database runs cheapest ("": none shared).

        SQLite: a correlated ``EXISTS`` probing ``access_share_record`` (object type, record id)
        once per row that reaches it — a list stops after a page, a search meets a few hundred
        rows, most of them unshared. An ``IN (subquery)`` made SQLite build the user's whole
        shared-id list on every query (bench/visibility.py: the list's SQL +54 % → +10 %).
        PostgreSQL: the user's shared ids as one array, ``pk = ANY(ARRAY[…]::uuid[])``, read here once per
        access context and change of shares (the condition lives as long as both, policy.py):
        a constant it hashes, nothing to plan, where ``IN (SELECT … UNION ALL …)`` cost planning
        and a hashed SubPlan on every search. Above ``LISTED_SHARES`` ids it stays that
        subquery, so a huge share list does not make a huge statement.
        """
        share_model, object_type, access, grantees = self.share  # type: ignore[misc]
        smeta, quote = share_model._meta, connection.ops.quote_name
        column = {name: quote(smeta.get_field(name).column) for name in ("object_id", "object_type", "access")}
        pk_sql, pk_params = pk
        marks = ", ".join(["%s"] * len(access))
        if connection.vendor == "sqlite":
            alias = quote("visibility_share")
            who, who_params = [], []
            for name, ids in grantees:
                field = smeta.get_field(name)
                who.append(f"{alias}.{quote(field.column)} IN ({', '.join(['%s'] * len(ids))})")
                who_params += [field.get_db_prep_value(v, connection) for v in ids]
            sql = (f"EXISTS (SELECT 1 FROM {quote(smeta.db_table)} AS {alias} "  # noqa: S608 - metadata, placeholders
                   f"WHERE {alias}.{column['object_type']} = %s AND {alias}.{column['object_id']} = {pk_sql} "
                   f"AND {alias}.{column['access']} IN ({marks}) AND ({' OR '.join(who)}))")
            return sql, [object_type, *pk_params, *access, *who_params]
        table = quote(smeta.db_table)
        selects, params = [], []
        for name, ids in grantees:  # one index range each (access_share_user/team/role)
            field = smeta.get_field(name)
            selects.append(
                f"SELECT {table}.{column['object_id']} FROM {table} "  # noqa: S608 - metadata, placeholders
                f"WHERE {table}.{quote(field.column)} IN ({', '.join(['%s'] * len(ids))}) "
                f"AND {table}.{column['object_type']} = %s AND {table}.{column['access']} IN ({marks})")
            params += [*(field.get_db_prep_value(v, connection) for v in ids), object_type, *access]
        # Not one scan with the grantees OR-ed: cheaper to plan once statistics exist, but without
        # them PostgreSQL walks access_share_record over every share (decision 0019).
        union = " UNION ALL ".join(selects)
        with connection.cursor() as cursor:
            cursor.execute(f"{union} LIMIT {LISTED_SHARES + 1}", params)
            shared = sorted({row[0] for row in cursor.fetchall()}, key=str)
        if len(shared) > LISTED_SHARES:
            return f"{pk_sql} IN ({union})", [*pk_params, *params]
        if not shared:
            return "", []
        # Written into the SQL (uuids: hex and dashes only), not a parameter: the rendered SQL is
        # kept with the condition, so a search does not adapt a few hundred values each time.
        # ARRAY[…] rather than a '{…}' literal: callers may pass the SQL through str.format.
        listed = ", ".join(f"'{uuid.UUID(str(value))}'" for value in shared)
        return f"{pk_sql} = ANY(ARRAY[{listed}]::uuid[])", list(pk_params)


LISTED_SHARES = 1000  # PostgreSQL: up to this many shared ids are listed in the condition, beyond a subquery


def criteria_q(record_type: RecordType, criteria: dict[str, Any]) -> Q | None:
    """Sharing-rule criteria as a condition; None when a key is not an allowed field."""
    q = Q()
    for key, value in criteria.items():
        if key not in record_type.criteria_fields:
            return None
        lookup = f"{key}__in" if isinstance(value, list | tuple) else key
        if "__" in key and not key.endswith("_id"):
            # A to-many path would repeat rows in a join; match it in a subquery instead.
            q &= Q(pk__in=record_type.model._default_manager.filter(**{lookup: value}).values("pk"))
        else:
            q &= Q(**{lookup: value})
    return q


def covers(granted: str, need: str) -> bool:
    return granted == READ_WRITE or (granted == READ and need == READ)


def _granting(need: str) -> list[str]:
    return [READ_WRITE] if need == READ_WRITE else [READ, READ_WRITE]
