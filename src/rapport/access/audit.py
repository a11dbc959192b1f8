"""S5 — the access audit: who viewed, searched, exported or changed whose data, and field history.

Services and adapters call ``record_person_access`` (one entry per person revealed) or
``record_change`` / ``record_event`` (organisations, settings, permission changes) inside
their own transaction, passing the channel (ui, api, cli, export, job).

The trail is a hash chain: each entry stores the HMAC (keyed with the keyring's audit key,
kept outside the database) of its own fields and of the previous entry's hash. Appends take
their seqs from the chain head row with one ``UPDATE … RETURNING``, which locks it until the
transaction ends (on PostgreSQL; SQLite's IMMEDIATE transactions already serialise writers),
so several processes never fork the chain; on PostgreSQL a single entry is first tried in
one statement after the head the connection moved last (``_append_after``; a stale guess
gives back the current head in the same statement, so it costs one more statement, not the
reserving path), on SQLite in one statement after the head the database holds (``_append_here``). ``verify_chain`` walks the
chain and names the first entry that was edited or deleted.

Field history: pass ``changes={"field": [old, new]}``; the values are sealed (they are
personal data), and the chain covers their digest, so erasure can drop the values
(``forget_person_changes``) without breaking the chain.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from rapport.access.encryption import DecryptionError, EncryptedTextField, decrypt_text, keyring
from rapport.access.models import AuditChainHead, AuditEntry, AuditEntryPerson
from rapport.access.network import client_ip
from rapport.core.api.prepared import Fragment, preparing_cursor
from rapport.core.middleware import current_request_id

logger = logging.getLogger("rapport.audit")
PERSON = "people.person"
CHANNELS = frozenset(AuditEntry.Channel.values)


def record_person_access(*, actor: Any, action: str, people: Iterable[Any], channel: str,
                         request: Any = None, reason: str = "", detail: dict | None = None,
                         changes: Mapping[str, Any] | None = None) -> None:
    """Record that ``actor`` performed ``action`` (view, search, export, create, change…) on ``people``.

    ``people`` are Person objects or ids; each gets its own entry, so a person's access log
    is one indexed query. ``changes`` is ``{"field": [old, new]}`` for field history.
    """
    ids = _unique_ids(people)
    if not ids:
        return
    base = _base_row(actor=actor, action=action, channel=channel, request=request, reason=reason,
                     detail=detail, changes=changes)
    _append([{**base, "object_type": PERSON, "object_id": str(pid), "person_id": pid} for pid in ids])


def record_change(*, actor: Any, record: Any, changes: Mapping[str, Any], channel: str = "ui",
                  request: Any = None, action: str = "change", reason: str = "",
                  detail: dict | None = None) -> None:
    """Field history of any record (organisations, deals…): who changed what from what to what."""
    if not changes and action == "change":
        return
    label = record._meta.label_lower
    base = _base_row(actor=actor, action=action, channel=channel, request=request, reason=reason,
                     detail=detail, changes=changes)
    person_id = record.pk if label == PERSON else None
    _append([{**base, "object_type": label, "object_id": str(record.pk), "person_id": person_id}])


def record_field_changes(*, actor: Any, object_type: str, changes_by_id: Mapping[Any, Mapping[str, Any]],
                         channel: str, request: Any = None, detail: dict | None = None) -> None:
    """Bulk field history (imports, merges, mass updates): one entry per record, one append."""
    rows = []
    label = object_type.lower()
    for object_id, changes in changes_by_id.items():
        if not changes:
            continue
        row = _base_row(actor=actor, action="change", channel=channel, request=request, reason="",
                        detail=detail, changes=changes)
        row.update(object_type=label, object_id=str(object_id),
                   person_id=_as_uuid(object_id) if label == PERSON else None)
        rows.append(row)
    _append(rows)


def record_event(*, actor: Any, action: str, object_type: str = "", object_id: Any = "",
                 channel: str = "ui", request: Any = None, reason: str = "", detail: dict | None = None,
                 changes: Mapping[str, Any] | None = None, person_id: Any = None) -> None:
    """Anything else worth a trail: permission and settings changes, sign-ins refused, exports."""
    row = _base_row(actor=actor, action=action, channel=channel, request=request, reason=reason,
                    detail=detail, changes=changes)
    row.update(object_type=object_type.lower(), object_id=str(object_id or ""), person_id=person_id)
    _append([row])


def record_person_access_with(*, actor: Any, action: str, person_id: Any, channel: str,
                              writes: Callable[[Fragment], list[tuple[Any, ...]]], request: Any = None) -> bool:
    """``record_person_access`` of one person in the same statement as the caller's own writes
    (PostgreSQL): True when both are in, False when nothing was written (SQLite, no head row yet,
    or the head moved under every one of ``AFTER_ATTEMPTS`` tries) and the caller writes and
    records the usual way.

    ``writes(fragment)`` runs one statement that starts its ``WITH`` with ``fragment.ctes``, writes
    only where ``fragment.condition`` holds and ends with ``fragment.outcome``, and returns its
    rows (``core.api.prepared.TogetherInsert.run_after``). It is ``_append_after``'s statement with
    the caller's inserts inside: the head moves only if it is still as guessed, the entry and the
    caller's rows go in only if it moved, so everything is written or nothing is; the hash is
    computed here, and the key is in neither the SQL nor its parameters. In autocommit that is the
    whole transaction: no BEGIN, no COMMIT.
    """
    wrapper = _wrapper()
    plan = _plan(wrapper)
    if not plan.after_ctes:
        return False
    base = _base_row(actor=actor, action=action, channel=channel, request=request, reason="",
                     detail=None, changes=None)
    row = {**base, "object_type": PERSON, "object_id": str(person_id), "person_id": person_id}
    key = keyring().audit_key
    head: tuple[int, str] | tuple[()] | None = _last_head.get(wrapper) or (0, "")
    with contextlib.ExitStack() as retrying:
        for _ in range(AFTER_ATTEMPTS):
            locking = wrapper.in_atomic_block
            params = _after_params(plan, row, head, key)
            fragment = Fragment(plan.after_ctes_locking if locking else plan.after_ctes, params,
                                "EXISTS (SELECT FROM moved)", plan.after_outcome)
            head = _after_outcome(wrapper, row, writes(fragment))
            if head is None:
                return True
            if not head:  # no head row yet: the reserving path creates it
                return False
            if not wrapper.in_atomic_block:
                # A miss in autocommit read the head unlocked, and with several server processes
                # appending all the time the next try missed again (bench/api.py: 16 of 800
                # creates missed three times): the tries after a miss go in a transaction, where a
                # miss reads the head FOR UPDATE and the next try cannot miss.
                retrying.enter_context(transaction.atomic(savepoint=False))
    return False


def head_guess_sql() -> str:
    """PostgreSQL: a SELECT of the chain head's (seq, hash) that a caller reads inside a statement
    it runs anyway (the create's duplicate check), then hands to ``note_head_guess``; "" on SQLite.

    The head this connection moved last is stale whenever another server process appended since,
    which with two workers is most creates (decision 0039): the one-statement create then missed,
    and a miss is a statement and a transaction more. A head read a moment before the append is
    stale only when another append fell into that moment. Still only a guess: the append checks it.
    """
    plan = _plan(_wrapper())
    if not plan.after_ctes:
        return ""
    return plan.head_guess


def note_head_guess(seq: Any, hash_: str) -> None:
    """The head ``head_guess_sql`` read: the next single append of this connection guesses it."""
    _last_head[_wrapper()] = (int(seq), hash_)


def forget_person_changes(person_id: Any) -> int:
    """Erasure (C5): drop the old/new values of a person's field history; the chain stays valid."""
    return AuditEntry.objects.filter(person_id=person_id, changes__isnull=False).update(changes=None)


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{"field": [old, new]}`` for the keys whose value differs."""
    return {key: [before.get(key), after.get(key)] for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)}


# ----------------------------------------------------------------------------- the chain


def _append(rows: list[dict[str, Any]]) -> int:
    """Chain and insert ``rows``; the seq of the last one.

    Three statements in one transaction: reserve the seqs on the chain head (which locks it,
    and gives the previous hash), insert the entries, move the head's hash (on SQLite the
    trigger of migration ``access/0010`` moves it as the last entry is inserted). On PostgreSQL
    a single entry's insert and the head's move are one statement (a data-modifying ``WITH``),
    and a single entry is first tried in one statement alone (``_append_after``, at most
    ``AFTER_ATTEMPTS`` times, each miss reading the current head for the next); on SQLite a
    single entry is one statement (``_append_here``).
    """
    if not rows:
        return 0
    wrapper = _wrapper()
    plan = _plan(wrapper)
    if plan.append_here and len(rows) == 1:
        seq = _append_here(wrapper, plan, rows[0])
        if seq:
            return seq
    key = keyring().audit_key
    if plan.append_after and len(rows) == 1:
        # The head this connection moved last, else the empty chain's: a guess the statement checks.
        head: tuple[int, str] | tuple[()] | None = _last_head.get(wrapper) or (0, "")
        with preparing_cursor(connection) as cursor:
            for _ in range(AFTER_ATTEMPTS):
                head = _append_after(cursor, plan, rows[0], head, key)
                if head is None:
                    return rows[0]["seq"]
                if not head:  # no head row yet: the reserving path creates it
                    break
    # No savepoint of its own inside a caller's transaction: a failed append fails the caller.
    with transaction.atomic(savepoint=False), preparing_cursor(connection) as cursor:
        end, prev = _reserve(cursor, plan, len(rows))
        seq = end - len(rows)
        for row in rows:
            seq += 1
            row["seq"], row["prev_hash"] = seq, prev
            row["hash"] = prev = _row_hash(row, key)
        params = plan.values(rows)
        if len(params) == 1 and plan.insert_and_move:
            cursor.execute(plan.insert_and_move, [*params[0], prev])
        else:
            if len(params) == 1:
                cursor.execute(plan.insert, params[0])
            else:
                cursor.executemany(plan.insert, params)
            if plan.move:
                cursor.execute(plan.move, [prev])
    if plan.append_after:
        _last_head[wrapper] = (end, prev)
    return end


# The head this connection last moved the chain to (PostgreSQL): a guess, checked by the
# database; wrong when another connection appended since or the transaction rolled back.
_last_head: weakref.WeakKeyDictionary[Any, tuple[int, str]] = weakref.WeakKeyDictionary()


def _wrapper() -> Any:
    return connections[DEFAULT_DB_ALIAS]  # the thread's own connection (``connection`` is a proxy)


AFTER_ATTEMPTS = 3  # one-statement tries of a single entry before the reserving path (autocommit, contended)


def _append_after(cursor: Any, plan: _Plan, row: dict[str, Any], last: tuple[int, str],
                  key: bytes) -> tuple[int, str] | tuple[()] | None:
    """Append ``row`` after the head ``last``, in one statement: None if it did, else the head
    the chain holds now (``()`` if it has no head row yet), to try again after.

    The statement moves the head only if it is still (seq, hash) as guessed, and inserts the
    entry only if the head moved: one round trip, no transaction of its own (in autocommit it
    is one; inside a caller's it holds the head's row lock until that commits, as the reserving
    path does). A concurrent appender waits on the row lock, then finds the head changed and
    touches nothing. When the guess was stale the same statement reads the current head, so
    the next try needs no statement of its own. Inside a caller's transaction it reads it
    ``FOR UPDATE``: the head is then this transaction's until it commits and the next try is
    sure to append; in autocommit that lock would end with the statement (and make it a
    writing transaction), so it reads the committed head, and a try can miss again when
    another process appends in between.
    """
    wrapper = _wrapper()
    sql = plan.append_after_locking if wrapper.in_atomic_block else plan.append_after
    cursor.execute(sql, _after_params(plan, row, last, key))
    return _after_outcome(wrapper, row, cursor.fetchall())


def _after_params(plan: _Plan, row: dict[str, Any], last: tuple[int, str], key: bytes) -> list[Any]:
    """The parameters of the append after ``last`` (the head's new seq and hash, the guess, the
    entry's columns); the entry's link to ``last`` and its HMAC are set on ``row``."""
    seq, prev = last
    row["seq"], row["prev_hash"] = seq + 1, prev
    row["hash"] = _row_hash(row, key)
    return [seq + 1, row["hash"], seq, prev, *plan.values([row])[0]]


def _after_outcome(wrapper: Any, row: dict[str, Any],
                   found: list[tuple[Any, ...]]) -> tuple[int, str] | tuple[()] | None:
    """What the append after a guess gave back: None if ``row`` went in, else the head to try after."""
    if found and found[0][1] is None:  # moved: the entry is in
        _last_head[wrapper] = (row["seq"], row["hash"])
        return None
    _last_head.pop(wrapper, None)
    return (int(found[0][0]), found[0][1]) if found else ()


def _append_here(wrapper: Any, plan: _Plan, row: dict[str, Any]) -> int:
    """SQLite: append ``row`` after the head the database holds, in one statement; its seq (0 if
    there is no head row yet).

    ``INSERT … SELECT head.seq + 1, …, head.hash, <link hash> FROM head``: a writing statement
    takes SQLite's write lock before it reads the head, and the trigger of migration
    ``access/0010`` moves the head to the entry in the same statement, so no process can append
    in between and nothing is remembered that could be stale. In autocommit the statement is
    its own transaction (committed before the caller goes on, as the reserving path's was);
    inside a caller's transaction it commits or rolls back with it. The entry's HMAC is
    computed by ``_link_hash``, which the statement calls as an SQL function of this connection:
    the key stays in this process and is in neither the SQL nor its parameters.
    """
    wrapper.ensure_connection()
    raw = wrapper.connection
    if _linked.get(wrapper) is not raw:
        raw.create_function(LINK_FUNCTION, 3, _link_hash_of_keyring)
        _linked[wrapper] = raw
    # Named parameters: Django turns the statement's "%(name)s" into SQLite's ":name" with one
    # "%", where "%s" placeholders cost a regular-expression pass over the statement per call.
    params = {}
    for name, attname, convert, default in plan.here_columns:
        value = row.get(attname, default)
        params[name] = value if convert is None or value is None else convert(value)
    params[plan.link_param] = _CHAIN_JSON.encode(_link_fields(row))[1:-1]
    if wrapper.queries_logged or wrapper.execute_wrappers:
        # Someone is watching (debug logging, CaptureQueriesContext, an execute wrapper): Django's cursor.
        with wrapper.cursor() as cursor:
            cursor.execute(plan.append_here, params)
            found = cursor.fetchall()  # to the end: the statement (and its transaction) is then done
    else:
        # Nobody is: the same statement, its placeholders converted once, straight on sqlite3. Django's
        # cursor, wrappers and per-call conversion were ~40 µs of an append (231 -> 190 µs CPU, one
        # process, alternating); errors are still Django's, and a transaction marked for rollback refuses it.
        wrapper.validate_no_broken_transaction()
        with wrapper.wrap_database_errors:
            found = raw.execute(plan.here_sql, params).fetchall()
    if not found:
        return 0
    row["seq"], row["prev_hash"], row["hash"] = found[0]
    return int(found[0][0])


LINK_FUNCTION = "rapport_audit_link"
# Connections this process has registered the link function on: the raw sqlite3 connection
# per Django connection (sqlite3 connections take no weak references; a reconnect replaces it).
_linked: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _link_hash_of_keyring(seq: int, middle: str, prev_hash: str) -> str:
    return _link_hash(seq, middle, prev_hash, keyring().audit_key)


def _link_hash(seq: int, middle: str, prev_hash: str, key: bytes) -> str:
    """``_row_hash`` from the entry's own fields encoded apart (``middle``, the JSON list's
    inside) and the seq and previous hash, which the database gives in the statement."""
    text = f"[{int(seq)},{middle},{_CHAIN_JSON.encode(prev_hash)}]"
    return hmac.digest(key, text.encode(), "sha256").hex()


def _reserve(cursor: Any, plan: _Plan, count: int) -> tuple[int, str]:
    """Take ``count`` seqs from the chain head: (the last one taken, the hash before them).

    The ``UPDATE`` locks the head row until the transaction ends (on PostgreSQL a waiting
    appender then reads the committed head, seq and hash both; SQLite's IMMEDIATE transaction
    already holds the write lock), so appends never fork the chain.
    """
    cursor.execute(plan.reserve, [count])
    found = cursor.fetchall()
    if not found:  # a fresh database: the head row is created by the first append
        AuditChainHead.objects.get_or_create(pk=1)
        cursor.execute(plan.reserve, [count])
        found = cursor.fetchall()
    end, prev = found[0]
    return int(end), prev


@dataclass(frozen=True)
class _Plan:
    """The append's statements and its column preparation, built once per database vendor.

    Preparing all 17 fields of an entry through ``get_db_prep_save`` and compiling the head's
    ``SELECT … FOR UPDATE`` and ``UPDATE`` through the ORM were most of what one audited read
    paid for its entry; the statements are fixed, only their parameters change.
    """

    insert: str
    insert_and_move: str  # "" where a single statement cannot do both
    append_after: str  # move a guessed head and insert after it, or read the head, in one statement ("" on SQLite)
    append_after_locking: str  # the same, reading the head FOR UPDATE (inside a caller's transaction)
    head_guess: str  # SELECT seq, hash of the head, for a caller's statement (``head_guess_sql``; "" on SQLite)
    after_ctes: str  # ``append_after``'s WITH items, for a caller's statement (``Fragment``; "" on SQLite)
    after_ctes_locking: str  # those of ``append_after_locking``
    after_outcome: str  # ``append_after``'s closing SELECT
    append_here: str  # insert after the head the database holds, in one statement (SQLite; else "")
    here_columns: tuple[tuple[str, str, Any, Any], ...]  # its parameters: (name, attname, converter, default)
    link_param: str  # its parameter for the link function: the entry's own fields, encoded
    here_sql: str  # ``append_here`` with sqlite3's own placeholders (":p3"), for the raw connection
    reserve: str
    move: str  # "" where the trigger moves the head (SQLite)
    columns: tuple[tuple[str, Any, Any], ...]  # (attname, converter or None, default)
    sealed: str  # the attname whose value is sealed per row (never shared between rows)

    def values(self, rows: list[dict[str, Any]]) -> list[list[Any]]:
        memo: dict[tuple[str, Any], Any] = {}  # a page's rows share actor, time, request…
        params = []
        for row in rows:
            values = []
            for attname, convert, default in self.columns:
                value = row.get(attname, default)
                if convert is None or value is None:
                    values.append(value)
                elif attname == self.sealed:
                    values.append(convert(value))
                else:
                    memo_key = (attname, value)
                    if memo_key not in memo:
                        memo[memo_key] = convert(value)
                    values.append(memo[memo_key])
            params.append(values)
        return params


_plans: dict[str, _Plan] = {}


def _plan(wrapper: Any = None) -> _Plan:
    vendor = (wrapper or connection).vendor
    plan = _plans.get(vendor)
    if plan is None:
        plan = _plans[vendor] = _build_plan()
    return plan


def _build_plan() -> _Plan:
    quote = connection.ops.quote_name
    fields = list(AuditEntry._meta.concrete_fields)  # every column: the key is the seq the chain gives
    entries, head = quote(AuditEntry._meta.db_table), quote(AuditChainHead._meta.db_table)
    insert = (f"INSERT INTO {entries} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608 - model metadata
              f"VALUES ({', '.join(['%s'] * len(fields))})")
    move = f"UPDATE {head} SET {quote('hash')} = %s WHERE {quote('id')} = 1"  # noqa: S608 - model metadata
    reserve = (f"UPDATE {head} SET {quote('seq')} = {quote('seq')} + %s WHERE {quote('id')} = 1 "  # noqa: S608
               f"RETURNING {quote('seq')}, {quote('hash')}")
    insert_and_move = append_after = append_after_locking = append_here = ""
    after_ctes = after_ctes_locking = after_outcome = head_guess = ""
    here_columns: tuple[tuple[str, str, Any, Any], ...] = ()
    link_param = "link"
    here_sql = ""
    columns = tuple((f.attname, _converter(f), f.get_default()) for f in fields)
    if connection.vendor == "sqlite":
        # seq and prev_hash from the head row, the hash by the link function (``_append_here``);
        # the head moves by trigger, so the reserving path does not move it either
        here_columns = tuple((f"p{i}", *column) for i, column in enumerate(columns)
                             if column[0] not in ("seq", "prev_hash", "hash"))
        named = {name: f"%({name})s" for name, *_ in here_columns}
        computed = {"seq": "h.seq + 1", "prev_hash": "h.hash",
                    "hash": f"{LINK_FUNCTION}(h.seq + 1, %({link_param})s, h.hash)"}
        select = [computed.get(attname) or named[f"p{i}"] for i, (attname, *_) in enumerate(columns)]
        append_here = (f"INSERT INTO {entries} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
                       f"SELECT {', '.join(select)} FROM {head} AS h WHERE h.{quote('id')} = 1 "
                       f"RETURNING {quote('seq')}, {quote('prev_hash')}, {quote('hash')}")
        here_sql = append_here % {name: f":{name}" for name in [*named, link_param]}  # as Django converts it
        move = ""
    if connection.vendor == "postgresql":
        insert_and_move = f"WITH entry AS ({insert}) {move}"
        typed = ", ".join(f"%s::{f.db_type(connection)}" for f in fields)  # a SELECT list's parameters need types
        # One row back: (new seq, NULL) when the guessed head moved and the entry went in, else
        # (seq, hash) of the head the chain holds now (what the next try appends after); none
        # when there is no head row at all.
        ctes = (f"moved AS (UPDATE {head} SET {quote('seq')} = %s, {quote('hash')} = %s "  # noqa: S608
                f"WHERE {quote('id')} = 1 AND {quote('seq')} = %s AND {quote('hash')} = %s "
                f"RETURNING {quote('seq')}), "
                f"entry AS (INSERT INTO {entries} ({', '.join(quote(f.column) for f in fields)}) "
                f"SELECT {typed} FROM moved), "
                f"current_head AS (SELECT {quote('seq')}, {quote('hash')} FROM {head} "
                f"WHERE {quote('id')} = 1 AND NOT EXISTS (SELECT FROM moved){{lock}})")
        after_outcome = (f"SELECT {quote('seq')}, NULL FROM moved "  # noqa: S608 - model metadata
                         f"UNION ALL SELECT {quote('seq')}, {quote('hash')} FROM current_head")
        after_ctes, after_ctes_locking = ctes.format(lock=""), ctes.format(lock=" FOR UPDATE")
        append_after = f"WITH {after_ctes} {after_outcome}"
        append_after_locking = f"WITH {after_ctes_locking} {after_outcome}"
        head_guess = f"SELECT {quote('seq')}, {quote('hash')} FROM {head} WHERE {quote('id')} = 1"  # noqa: S608
    sealed = next(f.attname for f in fields if isinstance(f, EncryptedTextField))
    return _Plan(insert=insert, insert_and_move=insert_and_move, append_after=append_after,
                 append_after_locking=append_after_locking, head_guess=head_guess, after_ctes=after_ctes,
                 after_ctes_locking=after_ctes_locking, after_outcome=after_outcome,
                 append_here=append_here, here_columns=here_columns, link_param=link_param, here_sql=here_sql,
                 reserve=reserve,
                 move=move, columns=columns, sealed=sealed)


_PLAIN_FIELDS = (models.CharField, models.TextField, models.BigIntegerField)


def _converter(field: models.Field) -> Any:
    """What turns an entry's value into the column's parameter; None where it is the value itself.

    The rows are built here (``_base_row``) with values of the column's own Python type, so
    text and integer fields need no preparation; everything else goes through the field's
    own ``get_db_prep_save`` except the two types every entry has.
    """
    if type(field) in _PLAIN_FIELDS:
        return None
    if type(field) is models.DateTimeField and connection.vendor == "sqlite" and connection.timezone is UTC:
        return _sqlite_utc_datetime
    if type(field) is models.DateTimeField:
        return connection.ops.adapt_datetimefield_value  # what get_db_prep_save ends in
    if type(field) is models.UUIDField and connection.features.has_native_uuid_field:
        return lambda value: value if value.__class__ is uuid.UUID else field.get_db_prep_save(value, connection)
    if type(field) is models.UUIDField:
        return lambda value: value.hex if value.__class__ is uuid.UUID else field.get_db_prep_save(value, connection)
    return lambda value: field.get_db_prep_save(value, connection)


def _sqlite_utc_datetime(value: datetime) -> Any:
    """``adapt_datetimefield_value`` on SQLite in UTC, for the UTC datetimes entries hold: the
    naive text, without its ``is_aware`` and ``make_naive`` calls."""
    if value.tzinfo is UTC:
        return str(value.replace(tzinfo=None))
    return connection.ops.adapt_datetimefield_value(value)


def entry_hash(entry: AuditEntry, key: bytes) -> str:
    return _hash_of([
        entry.seq, _timestamp(entry.occurred_at), str(entry.actor_id or ""), entry.actor_name, entry.action,
        entry.object_type, entry.object_id, str(entry.person_id or ""), entry.channel, entry.ip,
        entry.reason, entry.request_id, entry.detail, entry.changes_digest, entry.prev_hash,
    ], key)


def _row_hash(row: Mapping[str, Any], key: bytes) -> str:
    """``entry_hash`` of the entry ``row`` (attribute values by name) will be, without the instance."""
    return _hash_of([row["seq"], *_link_fields(row), row["prev_hash"]], key)


def _link_fields(row: Mapping[str, Any]) -> list[Any]:
    """What ``entry_hash`` covers between the seq and the previous hash, in its order."""
    return [
        _timestamp(row["occurred_at"]), str(row["actor_id"] or ""), row["actor_name"], row["action"],
        row["object_type"], row["object_id"], str(row["person_id"] or ""), row["channel"], row["ip"],
        row["reason"], row["request_id"], row["detail"], row["changes_digest"],
    ]


_CHAIN_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)  # json.dumps's, built once


def _hash_of(fields: list[Any], key: bytes) -> str:
    return hmac.digest(key, _CHAIN_JSON.encode(fields).encode(), "sha256").hex()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None


def verify_chain(*, batch_size: int = 2000) -> ChainReport:
    """Walk the whole chain; report the first entry edited, deleted or out of place."""
    key = keyring().audit_key
    expected_seq, prev_hash, checked = 1, "", 0
    covered = _covered_sets(batch_size)
    group = next(covered, None)
    for entry, raw_changes in _entries_in_order(batch_size):
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                missing = (f"#{expected_seq}" if entry.seq == expected_seq + 1
                           else f"#{expected_seq}–#{entry.seq - 1}")
                return ChainReport(False, checked, f"Audit entry {missing} was deleted "
                                                   f"(the chain jumps to #{entry.seq}).", expected_seq)
            return ChainReport(False, checked, f"Audit entry #{entry.seq} is out of place.", entry.seq)
        if entry.prev_hash != prev_hash:
            return ChainReport(False, checked, f"Audit entry #{entry.seq} does not link to #{entry.seq - 1}: "
                                               "one of them was edited.", entry.seq)
        if not hmac.compare_digest(entry_hash(entry, key), entry.hash):
            return ChainReport(False, checked, f"Audit entry #{entry.seq} was edited: "
                                               "its hash does not match its contents.", entry.seq)
        if raw_changes is not None:
            problem = _changes_problem(entry, raw_changes)
            if problem:
                return ChainReport(False, checked, problem, entry.seq)
        if group is not None and group[0] < entry.seq:
            return ChainReport(False, checked, _stray_rows(group[0]), group[0])
        promised = _covered_by(entry)
        if promised is not None:
            if group is None or group[0] != entry.seq or group[1:] != promised:
                return ChainReport(False, checked, f"Audit entry #{entry.seq} was edited: the "
                                                   f"people it covers ({AuditEntryPerson._meta.db_table}) do not "
                                                   "match its digest (a row edited, deleted or added).", entry.seq)
            group = next(covered, None)
        prev_hash, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
    if group is not None:  # rows naming an entry past the end of the chain
        return ChainReport(False, checked, _stray_rows(group[0]), group[0])
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, "")
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        if head_seq > expected_seq - 1:
            return ChainReport(False, checked, f"Audit entries #{expected_seq}–#{head_seq} were deleted "
                                               "(the chain head is further on).", expected_seq)
        return ChainReport(False, checked, "The audit chain head does not match the last entry "
                                           f"(#{expected_seq - 1}).", expected_seq - 1)
    return ChainReport(True, checked)


def _stray_rows(seq: int) -> str:
    return (f"Rows of {AuditEntryPerson._meta.db_table} name audit entry #{seq}, which covers no such people "
            "(rows were added or moved).")


def _entries_in_order(batch_size: int) -> Iterator[tuple[AuditEntry, str | None]]:
    """Entries by seq with their sealed changes as stored (decrypted later, inside the check)."""
    last = None
    while True:
        query = (AuditEntry.objects.defer("changes")
                 .annotate(raw_changes=Cast("changes", output_field=models.TextField()))
                 .order_by("seq"))
        if last is not None:
            query = query.filter(seq__gt=last)
        batch = list(query[:batch_size])
        if not batch:
            return
        for entry in batch:
            yield entry, entry.raw_changes  # type: ignore[attr-defined]
        last = batch[-1].seq


def _changes_problem(entry: AuditEntry, raw: str) -> str:
    try:
        plain = decrypt_text(raw, "access.AuditEntry.changes")
    except DecryptionError:
        return f"Audit entry #{entry.seq} was edited: its changes fail authentication."
    if hashlib.sha256(plain.encode()).hexdigest() != entry.changes_digest:
        return f"Audit entry #{entry.seq} was edited: its changes do not match their digest."
    return ""


# ------------------------------------------------------------------------------- helpers


def _base_row(*, actor: Any, action: str, channel: str, request: Any, reason: str,
              detail: dict | None, changes: Mapping[str, Any] | None) -> dict[str, Any]:
    if channel not in CHANNELS:
        logger.warning("audit channel %r is not one of %s", channel, ", ".join(sorted(CHANNELS)))
    changes_text = _canonical(changes) if changes else None
    return {
        "occurred_at": _now(),
        "actor_id": getattr(actor, "pk", None) if _is_user(actor) else None,
        "actor_name": _clean(actor.get_username() if _is_user(actor) else str(actor or "system"))[:150],
        "action": _clean(action)[:32],
        "channel": str(channel)[:16],
        "ip": client_ip(request),
        "reason": _clean(reason or ""),
        "request_id": (getattr(request, "request_id", "") or current_request_id.get())[:64],
        "detail": _canonical(detail) if detail else "",
        "changes": changes_text,
        "changes_digest": hashlib.sha256(changes_text.encode()).hexdigest() if changes_text else "",
    }


def _now() -> datetime:
    # Whole microseconds in UTC, exactly what both databases store and give back.
    return timezone.now().astimezone(UTC)


def _timestamp(value: datetime) -> str:
    """``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC (what the chain has always hashed), by ``isoformat``: faster."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _canonical(value: Any) -> str:
    return _clean(json.dumps(value, sort_keys=True, separators=(",", ":"), default=_jsonable,
                             ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | timedelta) or hasattr(value, "isoformat"):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    if isinstance(value, models.Model):
        return str(value.pk)
    return str(value)


def _clean(text: str) -> str:
    return text.replace("\x00", "")  # PostgreSQL text cannot hold NUL


def _is_user(actor: Any) -> bool:
    return bool(getattr(actor, "is_authenticated", False)) and hasattr(actor, "get_username")


def _unique_ids(people: Iterable[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    for item in people:
        pid = _as_uuid(getattr(item, "pk", item))
        if pid is not None:
            seen.setdefault(pid, None)
    return list(seen)


def _as_uuid(value: Any) -> Any:
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# ------------------------------------------------------------------- bulk reads (exports)

COVERED = "people"  # the detail key of a bulk entry: {"count": n, "sha256": digest of the ids}
_HEX32 = re.compile(r"[0-9a-f]{32}").fullmatch
_HEX32_LINES = re.compile(r"[0-9a-f]{32}(?:\n[0-9a-f]{32})*").fullmatch


def record_people_access_bulk(*, actor: Any, action: str, people: Iterable[Any], channel: str,
                              request: Any = None, reason: str = "", detail: dict | None = None) -> int:
    """``record_person_access`` for many people at once (export pages, import chunks).

    One chained entry for the whole set (person empty, ``detail["people"]`` the number of
    people and the SHA-256 of their ids in order) and one ``AuditEntryPerson`` row per person,
    written in the same transaction under the chain head's lock: "who exported person X" is
    one indexed lookup (``person_entries``), and ``verify_chain`` recomputes the digest, so a
    covered row edited, deleted or added is found like an edited entry. ``people`` are Person
    objects, UUIDs or id strings (32 hex digits as SQLite stores them, or the dashed form);
    repeats count once. Returns the number of people recorded.
    """
    ids = _unique_hex_ids(people)
    if not ids:
        return 0
    covered = {COVERED: {"count": len(ids), "sha256": _ids_digest(ids)}}
    row = _base_row(actor=actor, action=action, channel=channel, request=request, reason=reason,
                    detail={**(detail or {}), **covered}, changes=None)
    row.update(object_type=PERSON, object_id="", person_id=None)
    with transaction.atomic(savepoint=False):
        seq = _append([row])
        _insert_covered(seq, ids)  # still under the head's lock: rows of one entry are contiguous
    return len(ids)


def person_entries(person_id: Any) -> QuerySet[AuditEntry]:
    """Every entry about the person: their own entries and the bulk ones covering them, newest first.

    What "who viewed, exported or changed person X" reads (the record's access panel, the
    privacy access export, the audit search by person).
    """
    return AuditEntry.objects.filter(about_person(person_id)).order_by("-seq")


def about_person(person_id: Any) -> Q:
    """The entries condition behind ``person_entries``: the person's own and the covering bulk ones."""
    covering = AuditEntryPerson.objects.filter(person_id=person_id).values("entry_seq")
    return Q(person_id=person_id) | Q(seq__in=covering)


def _unique_hex_ids(people: Iterable[Any]) -> list[str]:
    """The people's ids as 32 lower-case hex digits, first occurrence order; invalid ones dropped."""
    people = list(people)
    if all(item.__class__ is str for item in people):  # an export page: checked in one regex pass
        texts = [item if len(item) == 32 else item.replace("-", "") for item in people]
        if texts and _HEX32_LINES("\n".join(texts)):
            return list(dict.fromkeys(texts))
    seen: dict[str, None] = {}
    for item in people:
        if item.__class__ is str:
            text = item if len(item) == 32 else item.replace("-", "")
            if not _HEX32(text):
                pid = _as_uuid(item)
                if pid is None:
                    continue
                text = pid.hex
        else:
            pid = _as_uuid(getattr(item, "pk", item))
            if pid is None:
                continue
            text = pid.hex
        seen[text] = None
    return list(seen)


def _ids_digest(ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def _insert_covered(seq: int, ids: list[str]) -> None:
    table = connection.ops.quote_name(AuditEntryPerson._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # COPY: a third of the time of an INSERT per row
            with cursor.cursor.copy(f"COPY {table} (entry_seq, person_id) FROM STDIN") as copy:
                copy.write("".join([f"{seq}\t{pid}\n" for pid in ids]))
        else:  # SQLite stores a UUIDField as its 32 hex digits, exactly these strings
            # One statement over a JSON array instead of executemany: 3.5-4.6 -> 1.6-1.8 µs a row
            # (docs/performance/exports.md, seventh session); ORDER BY key keeps the rows in the order given.
            cursor.execute(f"INSERT INTO {table} (entry_seq, person_id) "  # noqa: S608 - model metadata
                           "SELECT %s, value FROM json_each(%s) ORDER BY key", [seq, json.dumps(ids)])


def _covered_sets(batch_size: int) -> Iterator[tuple[int, int, str]]:
    """(entry seq, count, digest) of the covered rows, group by group, in the order written."""
    table = connection.ops.quote_name(AuditEntryPerson._meta.db_table)
    person = "replace(person_id::text, '-', '')" if connection.vendor == "postgresql" else "person_id"
    sql = (f"SELECT id, entry_seq, {person} FROM {table} WHERE id > %s "  # noqa: S608 - model metadata
           f"ORDER BY id LIMIT {int(batch_size)}")
    last, current, ids = 0, None, []
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [last])
            rows = cursor.fetchall()
        if not rows:
            break
        for _, seq, pid in rows:
            if seq != current:
                if current is not None:
                    yield current, len(ids), _ids_digest(ids)
                current, ids = seq, []
            ids.append(pid)
        last = rows[-1][0]
    if current is not None:
        yield current, len(ids), _ids_digest(ids)


def _covered_by(entry: AuditEntry) -> tuple[int, str] | None:
    """The (count, digest) a bulk entry's detail promises, or None for an ordinary entry."""
    if entry.person_id is not None or entry.object_type != PERSON or f'"{COVERED}":{{' not in entry.detail:
        return None
    try:
        promised = json.loads(entry.detail)[COVERED]
        return int(promised["count"]), str(promised["sha256"])
    except (ValueError, KeyError, TypeError):
        return None
