"""A3 — the indexes the import writes are the ones the reads use (decision 0040).

people/0003 drops PostgreSQL's ``varchar_pattern_ops`` twins of the people's indexed
CharFields, people/0004 the contact points' indexes on their timestamps and on ``search_key``. These tests hold that the reads the benchmarks measure (bench/search.py,
bench/identity_realtime.py) and the import's own lookup still find an index for their
conditions on both databases: on PostgreSQL with sequential scans priced out of reach
(``enable_seqscan = off`` leaves a sequential scan only where no index can answer), on
SQLite from ``EXPLAIN QUERY PLAN``. The matcher's lookup is also checked as the planner
chooses it, on a table large enough that the old ``= ANY`` form was a sequential scan.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection

from rapport.identity.services import _arms, _blocked_sql
from rapport.imports import bulk, matching
from rapport.people.models import ContactPoint, Person
from rapport.people.selectors import _name_q, _phone_matches, prefix_email_q

pytestmark = pytest.mark.django_db

TWINS = ("given_key", "family_key", "preferred_key", "country", "birth_date_index", "gender_index",
         "income_band_index", "normalised", "search_key")


def _plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def _scans_without_index(plan: str) -> list[str]:
    """Lines of ``plan`` that read people or contact points without an index."""
    if connection.vendor == "postgresql":
        return re.findall(r"Seq Scan on (?:people_person|people_contactpoint)\b.*", plan)
    return [line for line in plan.splitlines()
            if re.search(r"\bSCAN (?:people_person|people_contactpoint)\b", line) and "INDEX" not in line]


def _queryset_plan(queryset) -> str:  # type: ignore[no-untyped-def]
    sql, params = queryset.query.sql_with_params()
    return _plan(sql, list(params))


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_the_pattern_ops_twins_are_gone_and_the_plain_indexes_stay() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename IN ('people_person', 'people_contactpoint')")
        definitions = [row[0] for row in cursor.fetchall()]
    assert not [d for d in definitions if "pattern_ops" in d]
    for column in TWINS:
        if column != "search_key":  # its own index went too (people/0004)
            assert [d for d in definitions if d.endswith(f"USING btree ({column})")], column


def test_contact_points_keep_only_the_indexes_reads_use() -> None:
    # people/0004: no index on the timestamps or on search_key alone ((kind, search_key) serves it)
    with connection.cursor() as cursor:
        indexes = {index for index, info in connection.introspection.get_constraints(cursor, "people_contactpoint").items()
                   if info["index"]}
        columns = {tuple(info["columns"]) for info in
                   connection.introspection.get_constraints(cursor, "people_contactpoint").values() if info["index"]}
    assert not {("created_at",), ("updated_at",), ("search_key",)} & columns, indexes
    assert {("normalised",), ("person_id",), ("kind", "search_key")} <= columns, indexes


@pytest.mark.parametrize("query", ["smi", "ada lov"])
def test_name_search_keeps_its_indexes(query: str) -> None:
    plan = _queryset_plan(Person.objects.filter(_name_q(query)).order_by())
    assert not _scans_without_index(plan), plan


def test_email_and_phone_search_keep_their_indexes() -> None:
    for queryset in (ContactPoint.objects.filter(prefix_email_q("ada@exa")),
                     _phone_matches("07911 12"), _phone_matches("07911 123456", exact=True)):
        plan = _queryset_plan(queryset.order_by())
        assert not _scans_without_index(plan), plan


def test_identity_realtime_blocking_keeps_its_indexes() -> None:
    # the one statement of a real-time check (bench/identity_realtime.py): emails by
    # (kind, search_key), phones by normalised, names by (family_key, given_key)
    sql, params = _blocked_sql(_arms(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"],
                                     phones=["07911 123456"]), None)
    plan = _plan(sql, params)
    assert not _scans_without_index(plan), plan


def test_the_import_lookup_keeps_its_index() -> None:
    sql = matching._sql(matching._POINTS_SQL)
    if connection.vendor == "postgresql":
        plan = _plan(matching._EACH_VALUE.format(query=sql.format(values="= v.value")),
                     [bulk.pg_array(["ada@example.com", "+447911123456"])])
    else:
        plan = _plan(sql.format(values="IN (%s, %s)"), ["ada@example.com", "+447911123456"])
    assert not _scans_without_index(plan), plan


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_the_import_lookup_probes_the_index_as_the_planner_chooses() -> None:
    # given: 30,000 contact points and their statistics, and a chunk's 4,000 values (none held)
    person = Person.objects.create(given_name="Ada", family_name="Lovelace")
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO people_contactpoint (id, created_at, updated_at, person_id, kind, label, value, "
                       "normalised, search_key, source, verified, \"primary\") "
                       "SELECT gen_random_uuid(), now(), now(), %s, 'email', '', 'x', 'p' || i || '@example.com', "
                       "'p' || i, '', false, false FROM generate_series(1, 30000) AS i", [person.pk])
        cursor.execute("ANALYZE people_contactpoint")
        values = bulk.pg_array(sorted(f"q{i}@example.com" for i in range(4000)))
        sql = matching._sql(matching._POINTS_SQL)

        # when: the plan as the planner picks it (sequential scans allowed)
        cursor.execute(f"EXPLAIN {matching._EACH_VALUE.format(query=sql.format(values='= v.value'))}", [values])
        joined = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN {sql.format(values='= ANY(%s::text[])')}", [values])
        listed = "\n".join(row[0] for row in cursor.fetchall())

    # then: each value probes the index; the old form read the whole table
    assert "Seq Scan on people_contactpoint" not in joined, joined
    assert "people_contactpoint_normalised" in joined, joined
    assert "Seq Scan on people_contactpoint" in listed, listed
