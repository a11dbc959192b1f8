"""A3 — the CSV export's worker processes: how they open the database (decision 0025)."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from rapport.imports import export_csv, exports
from rapport.imports.tests.workers import (
    skip_unless_workers_can_read,
)


@pytest.mark.django_db
def test_read_mapped_maps_a_sqlite_database_file():
    # given a connection to a SQLite database file
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        pytest.skip("SQLite database files only (set RAPPORT_TEST_SQLITE_NAME to run it on SQLite)")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA mmap_size")
        assert cursor.fetchone()[0] == 0  # SQLite's default: read by system calls into its page cache
        # when
        export_csv.read_mapped()
        # then it reads through a memory map as large as SQLite allows
        cursor.execute("PRAGMA mmap_size")
        mapped = cursor.fetchone()[0]
        cursor.execute("PRAGMA mmap_size = 0")  # the test database's connection outlives this test
    assert mapped >= 2**30


@pytest.mark.django_db(transaction=True)  # committed: the worker processes read it on their own connections
def test_every_worker_opens_its_connection_through_read_mapped(make_person, staff_user, monkeypatch, tmp_path):
    # given ten people, pages of two and two workers, with read_mapped recording the process it ran in
    skip_unless_workers_can_read()
    for n in range(10):
        make_person(given_name=f"Person {n}", family_name="Mapped", emails=[f"p{n}@example.com"])
    monkeypatch.setenv("RAPPORT_EXPORT_WORKERS", "2")
    monkeypatch.setattr(exports, "PAGE", 2)
    calls = tmp_path / "calls"
    real = export_csv.read_mapped

    def recorded() -> None:
        with open(calls, "a") as out:
            out.write(f"{os.getpid()}\n")
        real()

    monkeypatch.setattr(export_csv, "read_mapped", recorded)
    # when
    text = b"".join(exports.export_people(user=staff_user, fmt="csv").chunks).decode("utf-8-sig")
    # then both workers (not the exporting process) opened their connection through it
    pids = set(calls.read_text().split())
    assert len(pids) == 2 and str(os.getpid()) not in pids
    assert len(text.splitlines()) == 11
