"""S5 — SQLite's single entry goes straight to sqlite3 when nobody watches the queries (decision 0026).

When queries are logged (debug, ``CaptureQueriesContext``) or an execute wrapper is installed,
the append runs through Django's cursor as before; otherwise the same statement runs on the raw
connection. Either way: the same stored row, one chain, Django's exceptions, and no write into a
transaction Django has marked for rollback.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from rapport.access.audit import record_event, verify_chain
from rapport.access.models import AuditChainHead, AuditEntry

pytestmark = pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's one-statement append")
SAME = [f.attname for f in AuditEntry._meta.concrete_fields
        if f.attname not in ("seq", "prev_hash", "hash", "occurred_at")]


def _event(actor, person_id) -> None:  # type: ignore[no-untyped-def]
    record_event(actor=actor, action="view", object_type="people.person", object_id=person_id, person_id=person_id,
                 channel="api", reason="Zoë \"Ó\"", detail={"b": [1, None], "a": "ü"}, changes={"notes": ["", "n"]})


def _stored(row: AuditEntry) -> dict:
    return {name: getattr(row, name) for name in SAME} | {"changes": row.changes}


def test_watched_and_unwatched_appends_store_the_same_row_on_one_chain(staff_user):
    # given
    pid = uuid.uuid4()
    seen: list[str] = []

    def wrapper(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return execute(sql, params, many, context)

    # when: the same entry unwatched, under a query capture, under an execute wrapper, unwatched again
    _event(staff_user, pid)
    with CaptureQueriesContext(connection) as captured:
        _event(staff_user, pid)
    with connection.execute_wrapper(wrapper):
        _event(staff_user, pid)
    _event(staff_user, pid)
    # then: the watched appends were seen (one statement each), and all four rows are the same entry
    assert len(captured.captured_queries) == 1 and captured.captured_queries[0]["sql"].startswith("INSERT INTO")
    assert len(seen) == 1 and seen[0].startswith("INSERT INTO")
    rows = list(AuditEntry.objects.filter(person_id=pid).order_by("seq"))
    assert len(rows) == 4 and all(_stored(row) == _stored(rows[0]) for row in rows)
    assert [row.seq for row in rows] == list(range(rows[0].seq, rows[0].seq + 4))
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (rows[-1].seq, rows[-1].hash) and verify_chain().ok


def test_an_unwatched_append_raises_djangos_errors(staff_user):
    # given: a head moved back by hand, so the next seq is taken
    _event(staff_user, uuid.uuid4())
    AuditChainHead.objects.update(seq=AuditChainHead.objects.get().seq - 1)
    # when / then: the key refuses the entry, as Django's exception
    with pytest.raises(IntegrityError):
        _event(staff_user, uuid.uuid4())


def test_an_unwatched_append_refuses_a_transaction_marked_for_rollback(staff_user):
    # given: a chain with a head (else the reserving path, Django's cursor, runs), and a transaction
    # in which a step failed without a savepoint of its own
    _event(staff_user, uuid.uuid4())
    before = AuditEntry.objects.count()
    with pytest.raises(TransactionManagementError), transaction.atomic():
        try:
            with transaction.atomic(savepoint=False):
                raise ValueError("a failed step")
        except ValueError:
            pass
        # when / then: the append is refused, as any query through Django's cursor would be
        _event(staff_user, uuid.uuid4())
    assert AuditEntry.objects.count() == before
