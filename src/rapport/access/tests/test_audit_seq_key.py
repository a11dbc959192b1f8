"""S5 — migration 0012: an audit entry's seq is its primary key, the id column goes (decision 0026).

Entries written before the migration keep their seqs and hashes and still verify, SQLite's
rebuild keeps the head trigger of 0010, and on SQLite the key is the rowid (no second b-tree
for it). Going back gives the id column again with the chain intact.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from rapport.access import audit
from rapport.access.audit import verify_chain
from rapport.access.models import AuditChainHead, AuditEntry

BEFORE = [("access", "0011_audit_no_actor_index")]
AFTER = [("access", "0012_audit_seq_is_the_key")]
ENTRIES = AuditEntry._meta.db_table


def _migrate(targets: list[tuple[str, str]]) -> None:
    MigrationExecutor(connection).migrate(targets)


def _to_the_end() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _trail() -> list[tuple[int, str, str]]:
    return list(AuditEntry.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))


def _columns() -> list[str]:
    with connection.cursor() as cursor:
        return [column.name for column in connection.introspection.get_table_description(cursor, ENTRIES)]


def _primary_key() -> list[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, ENTRIES)
    return next(c["columns"] for c in constraints.values() if c["primary_key"])


def _sqlite_details() -> tuple[list[str], list[str]]:
    """SQLite: the table's automatic indexes (a non-rowid key or a UNIQUE has one) and its triggers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NULL",
                       [ENTRIES])
        automatic = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [ENTRIES])
        triggers = [row[0] for row in cursor.fetchall()]
    return automatic, triggers


def _write_some(actor) -> None:  # type: ignore[no-untyped-def]
    people = [uuid.uuid4() for _ in range(4)]
    audit.record_person_access(actor=actor, action="view", people=people[:1], channel="api")
    audit.record_person_access(actor=actor, action="view", people=people, channel="ui")  # a page: the reserving path
    audit.record_people_access_bulk(actor=actor, action="export", people=people, channel="export")
    audit.record_event(actor=actor, action="change", object_type="people.person", object_id=people[0],
                 person_id=people[0], changes={"notes": ["", "sealed"]})


def _appends_after_the_head(actor) -> None:  # type: ignore[no-untyped-def]
    seq = AuditChainHead.objects.get().seq
    audit.record_person_access(actor=actor, action="view", people=[uuid.uuid4()], channel="api")
    head = AuditChainHead.objects.get()
    last = AuditEntry.objects.order_by("-seq").first()
    assert (head.seq, head.hash) == (last.seq, last.hash) == (seq + 1, last.hash)


@pytest.mark.django_db(transaction=True)
def test_entries_written_before_keep_their_chain_and_seq_becomes_the_key(staff_user):
    # given: a trail written under the old schema (id key, unique seq)
    _migrate(BEFORE)
    try:
        assert "id" in _columns() and _primary_key() == ["id"]
        _write_some(staff_user)
        before = _trail()
        assert verify_chain().ok
        # when
        _migrate(AFTER)
        # then: the same entries, the chain verifies, seq is the key and the id is gone
        assert _trail() == before
        report = verify_chain()
        assert report.ok and report.checked == len(before)
        assert "id" not in _columns() and _primary_key() == ["seq"]
        if connection.vendor == "sqlite":  # the rowid: no automatic index; the rebuild kept the head trigger
            assert _sqlite_details() == ([], ["access_auditentry_moves_head"])
        # and appends go on after the head, and an edited row is still named
        _appends_after_the_head(staff_user)
        assert verify_chain().ok
        victim = before[2][0]
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {ENTRIES} SET actor_name = 'someone' WHERE seq = %s", [victim])  # noqa: S608
        report = verify_chain()
        assert not report.ok and report.seq == victim and f"#{victim} was edited" in report.problem
    finally:
        _to_the_end()


@pytest.mark.django_db(transaction=True)
def test_going_back_gives_the_id_again_with_the_chain_intact(staff_user):
    # given: a trail under the new schema
    _to_the_end()
    _write_some(staff_user)
    before = _trail()
    try:
        # when
        _migrate(BEFORE)
        # then
        assert _trail() == before and verify_chain().ok
        assert "id" in _columns() and _primary_key() == ["id"]
        if connection.vendor == "sqlite":  # the unique seq's index is back, and the trigger still there
            automatic, triggers = _sqlite_details()
            assert len(automatic) == 1 and triggers == ["access_auditentry_moves_head"]
        _appends_after_the_head(staff_user)
        assert verify_chain().ok
    finally:
        _to_the_end()
