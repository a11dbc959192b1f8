"""A3 — the CSV export's workers only read: the exporting process writes the audit, in groups of
pages, and each SQLite worker reads its pages in one snapshot (decision 0029)."""

from __future__ import annotations

import csv
import io
import os
import uuid

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

from rapport.access.audit import verify_chain
from rapport.access.models import AuditEntry, AuditEntryPerson
from rapport.imports import export_csv, exports
from rapport.imports.tests.workers import (
    skip_unless_workers_can_read,
)
from rapport.people.models import Person

pytestmark = pytest.mark.django_db(transaction=True)  # committed: the workers read on their own connections


def _people(make_person, count: int) -> None:
    for n in range(count):
        make_person(given_name=f"Person {n}", family_name="Writer", country="GB" if n % 2 else "FR",
                    emails=[f"p{n}@example.com"])


def test_the_exporting_process_writes_the_audit_a_group_of_pages_per_transaction(make_person, staff_user,
                                                                               monkeypatch, tmp_path):
    # given 11 people, pages of two (six pages), groups of four pages and two workers
    skip_unless_workers_can_read()
    _people(make_person, 11)
    monkeypatch.setenv("RAPPORT_EXPORT_WORKERS", "2")
    monkeypatch.setattr(exports, "PAGE", 2)
    monkeypatch.setattr(export_csv, "AUDIT_PAGES", 4)
    calls = tmp_path / "audits"
    real = exports.record_people_access_bulk

    def recorded(**kwargs):
        with open(calls, "a") as out:  # the process and the transaction each page is recorded in
            out.write(f"{os.getpid()} {connection.in_atomic_block} {len(kwargs['people'])}\n")
        return real(**kwargs)

    monkeypatch.setattr(exports, "record_people_access_bulk", recorded)
    before = AuditEntry.objects.count()
    # when the first page is taken, then the rest
    chunks = iter(exports.export_people(user=staff_user, fmt="csv").chunks)
    header, first = next(chunks), next(chunks)
    recorded_by_then = calls.read_text().splitlines()
    text = (header + first + b"".join(chunks)).decode("utf-8-sig")
    # then every page was recorded here (the workers only read), inside a transaction, and the
    # first group's four pages before the first page left
    audits = [line.split() for line in calls.read_text().splitlines()]
    assert {pid for pid, _, _ in audits} == {str(os.getpid())}
    assert all(atomic == "True" for _, atomic, _ in audits)
    assert [int(n) for _, _, n in audits] == [2, 2, 2, 2, 2, 1]
    assert len(recorded_by_then) == 4
    # and the entries follow the pages: in seq order they cover the CSV's rows in order
    rows = [r[0] for r in csv.reader(io.StringIO(text))][1:]
    entries = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)[before:])
    covered = [str(uuid.UUID(str(pid))) for seq in entries
               for pid in AuditEntryPerson.objects.filter(entry_seq=seq).order_by("id").values_list("person_id", flat=True)]
    assert len(entries) == 6 and covered == rows and len(rows) == 11
    assert verify_chain().ok


def test_a_filtered_export_survives_a_commit_by_someone_else_between_pages(make_person, staff_user, monkeypatch):
    # given 24 people, 12 in GB, pages of one, groups of two pages and two workers: the exporting
    # process reads the chosen ids from one open query while it writes the audit
    skip_unless_workers_can_read()
    _people(make_person, 24)
    monkeypatch.setenv("RAPPORT_EXPORT_WORKERS", "2")
    monkeypatch.setattr(exports, "PAGE", 1)
    monkeypatch.setattr(export_csv, "AUDIT_PAGES", 2)
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        chunks = iter(exports.export_people(user=staff_user, fmt="csv", filters={"country": "GB"}).chunks)
        parts = [next(chunks), next(chunks)]
        # when another connection commits a change while the export is under way
        with other.cursor() as cursor:
            cursor.execute("UPDATE people_person SET notes = %s", ["changed elsewhere"])
        parts += list(chunks)
    finally:
        other.close()
    # then the export still records the rest of its pages (no stale snapshot under the audit's write)
    rows = list(csv.reader(io.StringIO(b"".join(parts).decode("utf-8-sig"))))[1:]
    gb = set(Person.objects.filter(country="GB").values_list("pk", flat=True))
    assert {uuid.UUID(r[0]) for r in rows} == gb
    assert set(AuditEntryPerson.objects.values_list("person_id", flat=True)) == gb


def test_a_sqlite_worker_reads_its_pages_in_one_snapshot_and_takes_a_newer_one_after_snapshot_pages(
        make_person, monkeypatch):
    # given a SQLite database file, one person and snapshots of two pages
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        pytest.skip("SQLite database files only (set RAPPORT_TEST_SQLITE_NAME to run it on SQLite)")
    _people(make_person, 1)
    monkeypatch.setattr(export_csv, "SNAPSHOT_PAGES", 2)
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    other.settings_dict = {**other.settings_dict, "OPTIONS": {**other.settings_dict["OPTIONS"], "timeout": 1}}
    snapshot = export_csv._Snapshot()

    def notes_seen() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT notes FROM people_person")
            return cursor.fetchone()[0]

    try:
        # when a page is read, someone else commits a change (not held up: the snapshot takes no
        # write lock), and the next two pages are read
        snapshot.before_page()
        seen = [notes_seen()]
        with other.cursor() as cursor:
            cursor.execute("UPDATE people_person SET notes = 'changed elsewhere'")
        snapshot.before_page()
        seen.append(notes_seen())
        snapshot.before_page()  # the third page: a newer snapshot
        seen.append(notes_seen())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("COMMIT")
        other.close()
    # then the second page saw the database as the first did, the third saw the change
    assert seen == ["", "", "changed elsewhere"]
