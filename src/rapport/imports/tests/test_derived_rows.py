"""A3 — the import writes its contact points' digest rows (decision 0018) and per-kind counts
(decision 0025) itself, with the insert triggers skipped for its own statements (decision 0028):
what it writes must be exactly what the triggers write, on each database — for new people, for
points added to existing people, across chunks, and after an undo. (The kill test compares a
killed and resumed import with an uninterrupted one that leaves them to the triggers.)"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from rapport.imports import bulk, services
from rapport.imports.tests.conftest import csv_bytes
from rapport.people import services as people
from rapport.people.models import ContactPoint

pytestmark = pytest.mark.django_db

ROWS = 330  # past the first 200 rows, which are planned in the run: the rest are built ahead (_fresh)
CHUNK = 40


def derived_by_content() -> dict[str, list[tuple]]:
    """The digest rows and counts by the content they belong to (ids differ between runs), with
    any row left without its point or person."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pe.given_name, pe.family_name, p.kind, p.normalised, d.version, d.digest, d.canonical "
                       "FROM people_contactpoint p JOIN people_person pe ON pe.id = p.person_id "
                       "LEFT JOIN privacy_contactdigest d ON d.point_id = p.id")
        digests = sorted(cursor.fetchall(), key=repr)
        cursor.execute("SELECT COUNT(*) FROM privacy_contactdigest d "
                       "WHERE NOT EXISTS (SELECT 1 FROM people_contactpoint p WHERE p.id = d.point_id)")
        orphan_digests = cursor.fetchone()[0]
        cursor.execute("SELECT pe.given_name, pe.family_name, c.kind, c.n FROM imports_pointkindcount c "
                       "LEFT JOIN people_person pe ON pe.id = c.person_id")
        counts = sorted(cursor.fetchall(), key=repr)
        cursor.execute("SELECT pe.given_name, pe.family_name, p.kind, COUNT(*) FROM people_contactpoint p "
                       "JOIN people_person pe ON pe.id = p.person_id "
                       "GROUP BY p.person_id, pe.given_name, pe.family_name, p.kind")
        counted = sorted(cursor.fetchall(), key=repr)
    return {"digests": digests, "orphan_digests": [orphan_digests], "counts": counts, "counted": counted}


def marks_left() -> int:
    """PostgreSQL's mark still on (SQLite has none: its writer drops the triggers, decision 0033)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [bulk.BULK_POINTS_SETTING])
        return int(cursor.fetchone()[0] == "on")


def insert_triggers() -> list[tuple]:
    """The contact point insert triggers as the database holds them (SQLite: the writer drops and
    re-creates them inside its transaction, decision 0033; they must come back exactly)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                           "WHERE tgrelid = 'people_contactpoint'::regclass AND NOT tgisinternal ORDER BY tgname")
        else:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                           "AND tbl_name = 'people_contactpoint' ORDER BY name")
        return cursor.fetchall()


def the_file() -> bytes:
    """New people, people repeated later in the file (merged), and existing people written
    otherwise, some bringing a phone or a second email they did not have."""
    rows = [["First name", "Last name", "Email", "Mobile"]]
    for i in range(ROWS):
        if i % 7 == 3:  # an existing person: a new phone for some, a second email for others
            n = i // 7
            rows.append([f"Known{n}", "Person", f"KNOWN{n}@example.com" if n % 2 else f"known{n}.b@example.com",
                         f"+44 20 7946 {1000 + n}"])
        elif i % 11 == 5 and i > 20 and (i - 12) % 7 != 3:  # someone earlier in the file, another phone
            rows.append([f"New{i - 12}", "Person", f"NEW{i - 12}@example.com", f"07{600_000_000 + i:09d}"])
        else:
            rows.append([f"New{i}", "Person", f"new{i}@example.com", f"07{500_000_000 + i:09d}"])
    return csv_bytes(rows)


@pytest.fixture
def known_people(make_person):
    """Existing people (their points' rows made by the triggers), some digests already filled."""
    for n in range(ROWS // 7 + 1):
        make_person(given_name=f"Known{n}", family_name="Person", emails=[f"known{n}@example.com"],
                    phones=[f"+44 20 7946 {1000 + n}"] if n % 3 == 0 else [])
    with connection.cursor() as cursor:  # as after a gate batch: the compare must see them kept
        cursor.execute("UPDATE privacy_contactdigest SET digest = 'd' || version, version = version + 2")


def test_the_import_writes_the_rows_the_triggers_would_and_undo_removes_them(upload, run_import, staff_user,
                                                                           known_people, monkeypatch):
    # given existing people and the rows the triggers made for their points
    before = derived_by_content()
    triggers = insert_triggers()
    assert len(triggers) >= 6 if connection.vendor == "sqlite" else triggers
    # when the file is imported with the rows written by the import…
    by_writer = run_import(upload(the_file(), chunk_size=CHUNK))
    assert by_writer.counts["created"] > 200, by_writer.counts
    assert by_writer.counts["merged"] and by_writer.counts["updated"]
    written = derived_by_content()
    assert marks_left() == 0
    assert insert_triggers() == triggers
    # …and undone
    services.import_undo(actor=staff_user, import_run=by_writer)
    # then the undo leaves exactly the rows there were
    assert derived_by_content() == before
    # and the same import with the rows left to the triggers gives exactly the same rows
    monkeypatch.setattr(bulk, "POINTS_DERIVED_BY", "triggers")
    by_triggers = run_import(upload(the_file(), chunk_size=CHUNK))
    assert by_triggers.counts == by_writer.counts
    assert derived_by_content() == written
    # (and both are complete: a digest row for every point, counts equal to counting the points)
    assert all(row[4] is not None for row in written["digests"]) and written["orphan_digests"] == [0]
    assert [tuple(row) for row in written["counts"]] == [tuple(row) for row in written["counted"]]


def test_points_written_after_a_bulk_insert_still_fire_the_triggers(make_person, staff_user):
    # given a person; in one transaction, a bulk insert of one point through the writer
    ada = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    point_id = bulk.new_hex_ids(1)[0]
    writer = bulk.TableWriter(ContactPoint, ["id", "person_id", "kind", "value", "normalised", "search_key"])
    with transaction.atomic():
        bulk.insert_contact_points([lambda: writer.insert([(point_id, ada.pk, "email", "b@example.com",
                                                            "b@example.com", "b@example.com")])],
                                   [(point_id, ada.pk, "email")])
        assert marks_left() == 0
        # when a service adds a point after it, in the same transaction
        people.contact_point_add(actor=staff_user, person=ada, data=people.ContactPointInput(
            kind="email", value="c@example.com"))
    # then the trigger made that point's rows: three emails counted, a digest row for each
    rows = derived_by_content()
    assert ("Ada", "Lovelace", "email", 3) in [tuple(r) for r in rows["counts"]]
    assert len(rows["digests"]) == 3 and all(r[4] == 0 for r in rows["digests"])


def test_a_failed_bulk_insert_takes_its_mark_with_it(make_person, staff_user):
    # given a bulk insert that fails after the triggers were told to skip its statements
    ada = make_person(given_name="Ada", family_name="Lovelace")
    triggers = insert_triggers()

    def failing() -> None:
        raise RuntimeError("the insert failed")

    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            bulk.insert_contact_points([failing], [])
        # when the transaction goes on and a service adds a point
        people.contact_point_add(actor=staff_user, person=ada, data=people.ContactPointInput(
            kind="email", value="ada@example.com"))
        assert marks_left() == 0
        assert insert_triggers() == triggers
    # then the triggers made its rows
    rows = derived_by_content()
    assert [tuple(r) for r in rows["counts"]] == [("Ada", "Lovelace", "email", 1)]
    assert [r[4] for r in rows["digests"]] == [0]


def test_a_failed_insert_puts_the_triggers_back_without_the_callers_savepoint(make_person, staff_user):
    # given a bulk insert whose second insert fails, the caller catching the error in its transaction
    ada = make_person(given_name="Ada", family_name="Lovelace")
    triggers = insert_triggers()
    point_id = bulk.new_hex_ids(1)[0]
    writer = bulk.TableWriter(ContactPoint, ["id", "person_id", "kind", "value", "normalised", "search_key"])

    def first() -> None:
        writer.insert([(point_id, ada.pk, "email", "b@example.com", "b@example.com", "b@example.com")])

    def failing() -> None:
        raise RuntimeError("the insert failed")

    with transaction.atomic():
        with pytest.raises(RuntimeError):
            bulk.insert_contact_points([first, failing], [(point_id, ada.pk, "email")])
        # then the triggers are back (SQLite) or no longer skipped (PostgreSQL), the first insert gone
        assert insert_triggers() == triggers
        assert marks_left() == 0
        assert not ContactPoint.objects.filter(pk=point_id).exists()
        # and a point a service adds afterwards in the same transaction gets its rows from them
        people.contact_point_add(actor=staff_user, person=ada, data=people.ContactPointInput(
            kind="email", value="ada@example.com"))
    rows = derived_by_content()
    assert [tuple(r) for r in rows["counts"]] == [("Ada", "Lovelace", "email", 1)]
    assert [r[4] for r in rows["digests"]] == [0]


@pytest.mark.django_db(transaction=True)
def test_the_writer_refuses_to_run_outside_a_transaction():
    # (outside a transaction the mark would outlive the inserts)
    with pytest.raises(RuntimeError):
        bulk.insert_contact_points([], [])
    assert marks_left() == 0


def test_sqlite_rows_from_the_points_when_rowids_are_not_above_the_largest(make_person, staff_user, monkeypatch):
    # given (SQLite) a point at the largest rowid there is, so new rows get random rowids
    if connection.vendor != "sqlite":
        pytest.skip("SQLite reads the inserted points back by rowid")
    ada = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE people_contactpoint SET rowid = 9223372036854775807 WHERE person_id = %s",
                       [ada.pk.hex])
    ids = bulk.new_hex_ids(3)
    writer = bulk.TableWriter(ContactPoint, ["id", "person_id", "kind", "value", "normalised", "search_key"])
    rows = [(i, ada.pk, kind, f"{n}@example.com", f"{n}@example.com", f"{n}@example.com")
            for n, (i, kind) in enumerate(zip(ids, ["email", "email", "phone"], strict=True))]
    original, from_points = bulk._derived, []

    def recording(points: object) -> object:
        from_points.append(True)
        return original(points)

    monkeypatch.setattr(bulk, "_derived", recording)
    # when the writer inserts points through the bulk path
    with transaction.atomic():
        bulk.insert_contact_points([lambda: writer.insert(rows)], ((r[0], r[1], r[2]) for r in rows))
    assert from_points  # (the rows came from the points given, not from a rowid range)
    # then every point has its digest row and the counts are the points'
    found = derived_by_content()
    assert len(found["digests"]) == 4 and all(r[4] is not None for r in found["digests"])
    assert [tuple(r) for r in found["counts"]] == [tuple(r) for r in found["counted"]]
    assert ("Ada", "Lovelace", "email", 3) in [tuple(r) for r in found["counts"]]
