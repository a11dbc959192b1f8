"""S5 — PostgreSQL's single append after a guessed head (``audit._append_after``, decision 0030).

A single entry is one statement after the head this connection moved last. When another
connection moved the head since, the same statement gives back the head the chain holds now,
and the next try appends after it: two statements, never the reserving path's BEGIN, reserve,
insert and COMMIT. Inside a caller's transaction the head is read ``FOR UPDATE``, so the second
try cannot miss; in autocommit a try can miss again when someone appends in between, and after
``AFTER_ATTEMPTS`` tries the reserving path (which locks the head first) takes over.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from rapport.access import audit
from rapport.access.audit import record_person_access, verify_chain
from rapport.access.models import AuditChainHead, AuditEntry
from rapport.core.testing import make_person

pytestmark = pytest.mark.skipif("connection.vendor != 'postgresql'")


def _stale_guess() -> AuditChainHead:
    """Make this connection remember a head the chain has moved past (as another process would)."""
    head = AuditChainHead.objects.get()
    audit._last_head[connections["default"]] = (head.seq - 1, "0" * 64)
    return head


def _statements(queries) -> list[str]:  # type: ignore[no-untyped-def]
    return [q["sql"] for q in queries.captured_queries]


def _one_line() -> None:
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    head = AuditChainHead.objects.get()
    last = AuditEntry.objects.order_by("-seq").first()
    assert seqs == list(range(1, len(seqs) + 1)) and (head.seq, head.hash) == (last.seq, last.hash)
    assert verify_chain().ok


def test_a_stale_guess_in_autocommit_is_two_statements_and_no_transaction(transactional_db, staff_user):
    # given: autocommit (a test in a transaction would be inside the caller's one)
    ada = make_person(actor=staff_user, given_name="Ada")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    head = _stale_guess()
    # when
    with CaptureQueriesContext(connection) as queries:
        record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    # then: the missed try read the head, the second appended after it; no BEGIN, reserve or COMMIT
    statements = _statements(queries)
    assert len(statements) == 2 and all(sql.startswith("WITH moved AS (UPDATE") for sql in statements), statements
    assert "FOR UPDATE" not in statements[0]  # in autocommit a lock would end with the statement anyway
    assert AuditChainHead.objects.get().seq == head.seq + 1
    _one_line()
    # and the connection now remembers the right head: the next append is one statement
    with CaptureQueriesContext(connection) as queries:
        record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    assert len(_statements(queries)) == 1


def test_a_stale_guess_inside_a_transaction_locks_the_head_it_reads(staff_user):
    # given
    ada = make_person(actor=staff_user, given_name="Ada")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    head = _stale_guess()
    # when
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    # then: two statements, the first read the head FOR UPDATE (the second could not miss)
    statements = [sql for sql in _statements(queries) if sql.startswith("WITH")]
    assert len(statements) == 2 and "FOR UPDATE" in statements[0], _statements(queries)
    assert AuditChainHead.objects.get().seq == head.seq + 1
    _one_line()


def test_a_connection_that_never_appended_guesses_the_empty_chain(transactional_db, staff_user):
    # given: entries in the chain, and a connection that remembers nothing
    ada = make_person(actor=staff_user, given_name="Ada")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    audit._last_head.pop(connections["default"], None)
    # when
    with CaptureQueriesContext(connection) as queries:
        record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    # then: the guess (0, "") missed and gave the head; two statements instead of four
    assert len(_statements(queries)) == 2
    _one_line()


def test_a_head_that_keeps_moving_falls_back_to_the_reserving_path(staff_user, monkeypatch):
    # given: every try finds the head moved again (as under heavy contention in autocommit)
    ada = make_person(actor=staff_user, given_name="Ada")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    real = audit._append_after
    tries = []

    def always_stale(cursor, plan, row, last, key):  # type: ignore[no-untyped-def]
        tries.append(last)
        found = real(cursor, plan, row, (last[0] - 1, "0" * 64), key)  # never the head: reads it
        assert found
        return found

    monkeypatch.setattr(audit, "_append_after", always_stale)
    # when
    with CaptureQueriesContext(connection) as queries:
        record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    # then: AFTER_ATTEMPTS tries, then the reserving path appended it
    assert len(tries) == audit.AFTER_ATTEMPTS
    assert any(sql.startswith("UPDATE") and "RETURNING" in sql for sql in _statements(queries))
    _one_line()


@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "in-transaction"])
def test_threads_appending_at_once_with_stale_guesses_never_fork_the_chain(transactional_db, staff_user,
                                                                          in_transaction):
    """Six connections take turns on one head, so nearly every guess is stale; single entries
    and pages of three mixed, in autocommit or inside transactions (the FOR UPDATE read)."""
    ada = make_person(actor=staff_user, given_name="Ada")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(25):
                people = [ada] if n % 2 or i % 5 else [ada, make_person(actor=None, given_name=f"P{n}{i}")]
                if in_transaction:
                    with transaction.atomic():
                        record_person_access(actor=staff_user, action="view", people=people, channel="job")
                else:
                    record_person_access(actor=staff_user, action="view", people=people, channel="job")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert AuditEntry.objects.filter(action="view").count() == 6 * 25 + 3 * 5
    _one_line()
