"""S5 — a single audit entry appended in one statement (decision 0022).

On SQLite ``_append_here`` chains the entry to the head the database holds, inside one
``INSERT … SELECT``, and a trigger moves the head; on PostgreSQL ``_append_after`` chains it to
the head this connection moved last. Whatever the path: one line of entries that verifies,
the head on the last entry, an entry committed before the caller goes on, nothing left of a
rolled-back one, and several processes appending at once never fork the chain.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import rapport
from rapport.access import audit
from rapport.access.audit import record_event, record_person_access, verify_chain
from rapport.access.encryption import keyring
from rapport.access.models import AuditChainHead, AuditEntry

ENTRIES, HEAD = AuditEntry._meta.db_table, AuditChainHead._meta.db_table
SRC = str(Path(rapport.__file__).resolve().parents[1])


def _head() -> tuple[int, str]:
    head = AuditChainHead.objects.get()
    return head.seq, head.hash


def _last() -> tuple[int, str]:
    last = AuditEntry.objects.order_by("-seq").first()
    return last.seq, last.hash


def test_the_link_hash_is_the_entry_hash(staff_user):
    # given: an entry with every kind of value the chain covers
    record_event(actor=staff_user, action="x", object_type="people.person", object_id="7", reason="Zoë \"Ó\"\n\\",
                 detail={"b": [1, None], "a": "ü"}, changes={"notes": ["", "n"]}, person_id=uuid.uuid4())
    entry = AuditEntry.objects.get(action="x")
    row = {field.attname: getattr(entry, field.attname) for field in AuditEntry._meta.concrete_fields}
    middle = audit._CHAIN_JSON.encode(audit._link_fields(row))[1:-1]
    # then: the hash from the fields encoded apart is the hash verify recomputes
    key = keyring().audit_key
    assert audit._link_hash(entry.seq, middle, entry.prev_hash, key) == audit.entry_hash(entry, key) == entry.hash
    assert audit._link_hash(1, middle, "", key) == audit._row_hash({**row, "seq": 1, "prev_hash": ""}, key)


def test_the_head_trigger_exists_after_every_migration(db):
    """SQLite drops a table's triggers when a migration rebuilds it: the fast path needs this one."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [ENTRIES])
        else:  # PostgreSQL moves the head in its own statements, by no trigger
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                           [ENTRIES])
        found = [row[0] for row in cursor.fetchall()]
    if connection.vendor == "sqlite":
        assert len(found) == 1 and "UPDATE access_auditchainhead SET seq = NEW.seq, hash = NEW.hash" in found[0]
    else:
        assert found == []


def test_single_and_page_appends_keep_one_line_with_the_head_on_the_last(staff_user):
    # when: single entries around a page of entries (the reserving path) and a bulk read
    people = [uuid.uuid4() for _ in range(5)]
    record_person_access(actor=staff_user, action="view", people=people[:1], channel="api")
    with CaptureQueriesContext(connection) as page:
        record_person_access(actor=staff_user, action="view", people=people, channel="api")
    record_person_access(actor=staff_user, action="view", people=people[1:2], channel="api")
    audit.record_people_access_bulk(actor=staff_user, action="export", people=people, channel="export")
    record_person_access(actor=staff_user, action="view", people=people[2:3], channel="api")
    # then
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)) and _head() == _last()
    assert verify_chain().ok
    if connection.vendor == "sqlite":  # reserve and insert, no move of the head's hash (the trigger's)
        statements = [q["sql"] for q in page.captured_queries]
        reserve, move = 'UPDATE "access_auditchainhead" SET "seq"', 'UPDATE "access_auditchainhead" SET "hash"'
        assert len(statements) == 2 and statements[0].startswith(reserve), statements
        assert "INSERT INTO" in statements[1] and move not in " ".join(statements)


def test_an_entry_rolled_back_with_its_transaction_leaves_nothing(staff_user):
    # given
    record_person_access(actor=staff_user, action="view", people=[uuid.uuid4()], channel="api")
    before = (_head(), AuditEntry.objects.count())

    # when: an entry appended inside a transaction that fails
    class Failed(Exception):
        pass

    with pytest.raises(Failed), transaction.atomic():
        record_person_access(actor=staff_user, action="change", people=[uuid.uuid4()], channel="api")
        raise Failed
    # then: neither the entry nor the head's move is left, and the next entry follows the head
    assert (_head(), AuditEntry.objects.count()) == before
    record_person_access(actor=staff_user, action="view", people=[uuid.uuid4()], channel="api")
    assert _head()[0] == before[0][0] + 1 and _head() == _last() and verify_chain().ok
    assert not AuditEntry.objects.filter(action="change").exists()


def test_an_entry_is_committed_before_the_caller_goes_on(transactional_db, staff_user, on_another_connection):
    """A request that fails after its read (rendering, a later step) keeps the read's entry."""
    # when: a read is recorded outside any transaction (as a GET's is)
    pid = uuid.uuid4()
    record_person_access(actor=staff_user, action="view", people=[pid], channel="api")
    # then: another connection sees the entry at once, before anything else of the request ran
    seen = []
    on_another_connection(lambda: seen.append(AuditEntry.objects.filter(person_id=pid, action="view").count()))
    assert seen == [1]


def test_a_forged_insert_moves_the_head_and_verify_names_it(staff_user):
    # given
    record_person_access(actor=staff_user, action="view", people=[uuid.uuid4()], channel="api")
    seq, prev = _head()
    # when: someone with database access inserts an entry after the head
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {ENTRIES} (seq, occurred_at, actor_name, action, object_type, object_id, "  # noqa: S608
                       "channel, ip, reason, request_id, detail, changes_digest, prev_hash, hash) "
                       "VALUES (%s, %s, 'x', 'view', '', '', 'ui', '', '', '', '', '', %s, %s)",
                       [seq + 1, AuditEntry.objects.get(seq=seq).occurred_at, prev, "f" * 64])
    # then: its own hash gives it away (on SQLite the trigger moved the head to it too)
    report = verify_chain()
    assert not report.ok and report.seq == seq + 1 and "was edited" in report.problem


WORKER = """
import os, sys, time, uuid
import django; django.setup()
from rapport.access.audit import record_person_access
worker, ready, workers, appends = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
open(os.path.join(ready, worker), "w").close()
while len(os.listdir(ready)) < workers:  # start together
    time.sleep(0.002)
for i in range(appends):
    # odd workers append a page of three now and then: the reserving path among the single ones
    people = [uuid.uuid4() for _ in range(3 if int(worker) % 2 and i % 5 == 0 else 1)]
    record_person_access(actor=None, action="view", people=people, channel="job", detail={"worker": worker})
"""


def test_several_processes_appending_at_once_never_fork_the_chain(transactional_db, tmp_path):
    """SQLite's one-statement path in four processes at once on one database file."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's path; on PostgreSQL test_audit's threads (own connections) append at once")
    # given: a file copy of the test database (migrated, the trigger in it), in WAL mode as served
    path = tmp_path / "shared.sqlite3"
    connection.ensure_connection()
    with sqlite3.connect(path) as copy:
        connection.connection.backup(copy)
    with sqlite3.connect(path) as copy:
        copy.execute("PRAGMA journal_mode=WAL")
        copy.execute("DELETE FROM access_auditentry")
        copy.execute("DELETE FROM access_auditchainhead")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "RAPPORT_VAR_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "rapport.settings", "PYTHONPATH": SRC, "RAPPORT_LOG_LEVEL": "ERROR",
           "RAPPORT_ENCRYPTION_KEYS": json.dumps(keyring().to_json())}
    ready = tmp_path / "ready"
    ready.mkdir()
    workers, appends = 4, 150
    # when
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, str(n), str(ready), str(workers), str(appends)],
                                  env=env, stderr=subprocess.PIPE, text=True) for n in range(workers)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in processes]
    # then: every entry on one line of seqs, the head on the last, and the chain verifies
    assert all(code == 0 for code, _ in results), results
    with sqlite3.connect(path) as db:
        rows = db.execute(f"SELECT seq, detail FROM {ENTRIES} ORDER BY seq").fetchall()  # noqa: S608
        head = db.execute(f"SELECT seq, hash FROM {HEAD}").fetchall()  # noqa: S608
        last = db.execute(f"SELECT seq, hash FROM {ENTRIES} ORDER BY seq DESC LIMIT 1").fetchall()  # noqa: S608
    pages = sum(appends // 5 for n in range(workers) if n % 2)
    assert len(rows) == workers * appends + 2 * pages
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)) and head == last
    order = [json.loads(detail)["worker"] for _, detail in rows]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches > workers - 1, "the processes did not append at the same time"  # or the test proves nothing
    verified = subprocess.run([sys.executable, "-m", "rapport", "audit", "verify"], env=env, capture_output=True,
                              text=True, timeout=300)
    assert verified.returncode == 0 and f"{len(rows)} entries verified" in verified.stdout, verified


@pytest.mark.parametrize("value", [
    dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 1, 12, 0, 0, 7, tzinfo=dt.UTC),
    dt.datetime(2030, 6, 30, 1, 2, 3, 450000, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
])
def test_an_entry_time_is_stored_as_django_stores_it(db, value):
    """The entry's time goes in as Django's own field preparation would give it (SQLite's text)."""
    field = AuditEntry._meta.get_field("occurred_at")
    assert audit._converter(field)(value) == field.get_db_prep_save(value, connection)
