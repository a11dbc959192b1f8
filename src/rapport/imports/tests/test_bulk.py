"""A3 — the bulk writer's ids and connection setting (decision 0020)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from rapport.imports import bulk


def test_chunk_ids_are_distinct_version_4_uuids_sharing_one_prefix_per_call() -> None:
    # given / when
    first, second = bulk.new_hex_ids(5000), bulk.new_hex_ids(5000)

    # then: valid v4 UUIDs in the 32-hex-digit form both databases take, all distinct
    for text in first + second:
        value = uuid.UUID(text)
        assert len(text) == 32 and value.hex == text
        assert value.version == 4 and value.variant == uuid.RFC_4122
    assert len(set(first) | set(second)) == 10000
    # one random 48-bit prefix per call keeps a chunk's keys together in the id indexes…
    assert {text[:12] for text in first} == {first[0][:12]}
    assert first[0][:12] != second[0][:12]
    # …and the rest of each id is random (not a counter a neighbour's id would give away)
    tails = sorted(text[13:] for text in first)
    assert tails != [text[13:] for text in first]
    assert len({text[13:16] for text in first}) > 1000


def test_prefixes_spread_over_the_key_space() -> None:
    # the export splits people by the first hex digit of their ids (decision 0016)
    firsts = {bulk.new_hex_ids(1)[0][0] for _ in range(400)}
    assert len(firsts) == 16


@pytest.mark.django_db
def test_tune_connection_sets_the_sqlite_page_cache() -> None:
    bulk.tune_connection()
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        assert cursor.fetchone()[0] == -bulk.SQLITE_CACHE_MB * 1024


@pytest.mark.django_db
def test_update_rows_sets_each_row_its_own_values() -> None:
    # given three people and the rows of a chunk's update (one statement on PostgreSQL)
    from django.utils import timezone

    from rapport.people.models import Person

    people = [Person.objects.create(given_name=f"Old{i}", family_name="Name", notes="") for i in range(3)]
    stamp = timezone.now()
    rows = [("Ada", "O'Brien\tTab", 5, stamp, people[0].pk),
            ("", "Nul\\l", 7, stamp, str(people[1].pk))]  # ids as UUIDs or their text; odd characters

    # when
    bulk.update_rows(Person, ["given_name", "family_name", "version", "updated_at"], rows)

    # then the two rows got exactly their values, the third person is untouched
    got = {p.pk: (p.given_name, p.family_name, p.version) for p in Person.objects.all()}
    assert got[people[0].pk] == ("Ada", "O'Brien\tTab", 5)
    assert got[people[1].pk] == ("", "Nul\\l", 7)
    assert got[people[2].pk] == ("Old2", "Name", people[2].version)
    assert Person.objects.get(pk=people[0].pk).updated_at == stamp


ODD_TEXTS = ["", "NULL", "a,b", "{x}", 'quote"d', "back\\slash", '\\"', "tab\tnew\nline", " spaced ", "é中", "x" * 300]


@pytest.mark.django_db
def test_pg_array_literal_reads_back_as_the_same_values() -> None:
    # the one-string array parameter (decision 0038) must give PostgreSQL exactly the values
    if connection.vendor != "postgresql":
        pytest.skip("an array literal is PostgreSQL's")
    import datetime as dt

    ids = [uuid.uuid4(), uuid.uuid4()]
    stamp = dt.datetime(2026, 12, 2, 5, 30, 1, 123456, tzinfo=dt.UTC)
    with connection.cursor() as cursor:
        # when / then: text, including every character the literal escapes or quotes
        cursor.execute("SELECT unnest(%s::text[])", [bulk.pg_array(ODD_TEXTS)])
        assert [row[0] for row in cursor.fetchall()] == ODD_TEXTS
        cursor.execute("SELECT unnest(%s::text[])", [bulk.pg_array([*ODD_TEXTS, None])])
        assert [row[0] for row in cursor.fetchall()] == [*ODD_TEXTS, None]
        # other element types: UUIDs (objects or text), numbers, booleans, timestamps, NULL
        cursor.execute("SELECT unnest(%s::uuid[])", [bulk.pg_array([ids[0], str(ids[1]), None])])
        assert [row[0] for row in cursor.fetchall()] == [ids[0], ids[1], None]
        cursor.execute("SELECT unnest(%s::integer[]), unnest(%s::boolean[]), unnest(%s::timestamptz[])",
                       [bulk.pg_array([3, -7]), bulk.pg_array([True, False]), bulk.pg_array([stamp, None])])
        assert cursor.fetchall() == [(3, True, stamp), (-7, False, None)]
        cursor.execute("SELECT cardinality(%s::text[])", [bulk.pg_array([])])
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_lookups_by_array_find_values_with_quotes_commas_and_backslashes() -> None:
    # given contact points whose normalised values hold the array literal's special characters
    from rapport.imports.matching import database_lookup
    from rapport.people.models import ContactPoint, Person

    person = Person.objects.create(given_name="Odd", family_name="Values")
    for text in ODD_TEXTS[1:]:
        ContactPoint.objects.create(person=person, kind="social", value=text, normalised=text, search_key=text[:200])
    keys = {("social", text) for text in ODD_TEXTS[1:]} | {("social", "not there"), ("social", "NULL,")}

    # when: the chunk matcher's lookup (one array on PostgreSQL) and a raw select_in (the run's reads)
    found = database_lookup(keys)
    rows = bulk.select_in("SELECT normalised FROM people_contactpoint WHERE normalised {values}",
                          [*ODD_TEXTS[1:], "not there"])

    # then every odd value is found, and nothing else
    assert found == {("social", text): [person.pk] for text in ODD_TEXTS[1:]}
    assert sorted(value for (value,) in rows) == sorted(ODD_TEXTS[1:])
