"""A3 — new people's rows built ahead (``_Context._fresh``) write what the run's own planning
writes: the same people, points, undo ledger, ImportedPerson rows and audit coverage.

Chunks past the reported first rows are built ahead; the reference run turns that off (every
chunk "reported"), so the two runs take different paths through the same file."""

from __future__ import annotations

import pytest

from rapport.access.models import AuditEntryPerson
from rapport.imports import services
from rapport.imports.models import Import, ImportChunk, ImportedPerson
from rapport.imports.tests.conftest import csv_bytes
from rapport.imports.tests.test_services import snapshot
from rapport.people import services as people
from rapport.people.models import ContactPoint, Person

pytestmark = pytest.mark.django_db

ROWS = 600
CHUNK = 100  # chunks from row 200 on are built ahead


def _file() -> bytes:
    rows = [["First Name", "Last Name", "E-mail", "Mobile phone", "Company", "Categories", "Notes"]]
    for i in range(ROWS):
        email = f"p{i}@example.com"
        phone = f"07911 1{i:05d}"
        company = tags = ""
        if i % 7 == 3:   # the same person as the row before, written otherwise, with a second email
            email, phone = f"P{i - 1}@Example.com;alt{i}@example.com", ""
        if i % 50 == 11:  # a job and a tag: planned by the run, not built ahead
            company, tags = "Analytical Engines Ltd", "vip"
        if i == 450:      # someone already in Rapport, bringing a phone
            email = "known@example.com"
        # what COPY's text format must escape (built-ahead rows are COPY text on PostgreSQL)
        notes = "met at\tthe fair\nback\\slash \\N\r\nend" if i % 5 == 0 else ""
        rows.append([f"Given\\{i}", f"Family{i % 9}", email, phone, company, tags, notes])
    return csv_bytes(rows)


def _people_of(imp: Import) -> tuple:
    ids = list(ImportedPerson.objects.filter(import_run=imp, created=True).values_list("person_id", flat=True))
    chunks = list(ImportChunk.objects.filter(import_run=imp))
    covered = set(AuditEntryPerson.objects.filter(person_id__in=ids).values_list("person_id", flat=True))
    return (len(ids), sum(len(c.created_versions) for c in chunks), covered == set(ids),
            sorted(len(c.changes) for c in chunks))


def test_rows_built_ahead_write_what_the_planned_rows_write(upload, run_import, staff_user, monkeypatch):
    # given someone already in Rapport, and a file with merges, jobs, tags and that person
    known = people.person_create(actor=staff_user, given_name="Known", family_name="Person",
                                 contact_points=[people.ContactPointInput("email", "known@example.com")])
    before = snapshot()
    # when the file is imported with new people built ahead
    built = run_import(upload(_file(), chunk_size=CHUNK))
    assert built.status == Import.Status.COMPLETED, built.error
    after_built, ledger_built = snapshot(), _people_of(built)
    points_built = sorted(ContactPoint.objects.values_list("kind", "normalised", "source", "primary"))
    assert Person.objects.get(pk=known.pk).version == 2  # updated once (a phone)
    assert Person.objects.filter(given_name="Given\\400", notes="met at\tthe fair\nback\\slash \\N\nend").exists()
    # and undone, then imported again with every chunk planned by the run (nothing built ahead)
    services.import_undo(actor=staff_user, import_run=built)
    assert snapshot() == before
    monkeypatch.setattr(services, "_reporting", lambda first_row: True)
    planned = run_import(upload(_file(), chunk_size=CHUNK))
    # then both runs wrote the same
    assert planned.counts == built.counts
    assert built.counts["created"] + built.counts["merged"] + built.counts["updated"] == ROWS
    assert built.counts["updated"] == 1 and built.counts["merged"] > 50
    assert snapshot() == after_built
    assert _people_of(planned) == ledger_built
    assert ledger_built[0] == built.counts["created"] and ledger_built[2]  # every new person in the audit
    assert sorted(ContactPoint.objects.values_list("kind", "normalised", "source", "primary")) == points_built
    assert Person.objects.get(pk=known.pk).version == 4  # undone (3), updated again (4)
    # and the built-ahead run undoes as cleanly as the planned one
    services.import_undo(actor=staff_user, import_run=planned)
    assert snapshot() == before
