"""A3 — imports/0007: SQLite's unused bulk-points mark goes, its triggers keep working (decision 0040)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

from rapport.people.models import ContactPoint, Person

migration = importlib.import_module("rapport.imports.migrations.0007_sqlite_drop_bulk_points_mark")
pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif("connection.vendor != 'sqlite'")]


def _schema() -> tuple[bool, list[str]]:
    """Whether the mark's table exists, and the insert triggers' text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'imports_bulkpoints'")
        table = bool(cursor.fetchone()[0])
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN "
                       "('imports_pointkindcount_added', 'privacy_contactdigest_added') ORDER BY rowid")
        return table, [row[0] for row in cursor.fetchall()]


def _derived_rows_of_a_new_point() -> tuple[int, int]:
    person = Person.objects.create(given_name="Ada", family_name="Lovelace")
    point = ContactPoint.objects.create(person=person, kind="email", value="ada@example.com",
                                        normalised="ada@example.com", search_key="adaexamplecom")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM privacy_contactdigest WHERE point_id = %s", [point.pk.hex])
        digests = cursor.fetchone()[0]
        cursor.execute("SELECT n FROM imports_pointkindcount WHERE person_id = %s AND kind = 'email'",
                       [person.pk.hex])
        count = cursor.fetchone()[0]
    return digests, count


def test_migrated_the_triggers_have_no_condition_and_the_table_is_gone() -> None:
    # given: the migrated schema
    table, triggers = _schema()

    # then
    assert not table
    assert len(triggers) == 2 and not [sql for sql in triggers if "WHEN" in sql or "bulkpoints" in sql]
    # and an ordinary insert still gets its digest row and count from the triggers
    assert _derived_rows_of_a_new_point() == (1, 1)


def test_backwards_restores_the_mark_and_forwards_removes_it_again() -> None:
    # given: the migrated schema
    _, migrated = _schema()
    try:
        # when: migrated back
        with connection.schema_editor() as editor:
            migration.restore_mark(apps, editor)

        # then: the table and the conditions of 0005/0008 are back, and the triggers still fire
        table, triggers = _schema()
        assert table
        assert len(triggers) == 2 and all(migration.WHEN.strip() in sql for sql in triggers)
        assert _derived_rows_of_a_new_point() == (1, 1)
    finally:
        # when: forwards again
        with connection.schema_editor() as editor:
            migration.drop_mark(apps, editor)

    # then: the same schema as first migrated
    assert _schema() == (False, migrated)
