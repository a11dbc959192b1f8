"""S5 — the trail's queries still find an index after the entries lost some (decision 0026).

Each statement is captured as the selector runs it and explained on the database, so a change
to the query or to the indexes that leaves it scanning the whole trail fails here. PostgreSQL
is told to avoid sequential scans (a test's table is tiny, where a scan is the cheaper plan):
the question is whether an index *can* serve the query, e.g. whether a partial index's
condition is implied by it.
"""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.access.audit import record_change
from rapport.access.models import AuditEntry
from rapport.access.selectors import field_history
from rapport.core.testing import make_person

ENTRIES = AuditEntry._meta.db_table


def _plan_of(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def _entries_statement(run) -> str:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as captured:
        run()
    statements = [q["sql"] for q in captured.captured_queries if ENTRIES in q["sql"]]
    assert len(statements) == 1, statements
    return statements[0]


def test_field_history_reads_the_object_index_of_entries_with_changes(staff_user):
    # given: a person with field history and reads of them (entries without changes)
    ada = make_person(actor=staff_user, given_name="Ada", family_name="Lovelace")
    record_change(actor=staff_user, record=ada, changes={"notes": ["", "n"]})
    # when
    sql = _entries_statement(lambda: field_history(user=staff_user, record=ada))
    # then: the partial index serves it (its condition is implied by the query's)
    plan = _plan_of(sql)
    assert "access_audit_object_changes" in plan, plan
    assert len(field_history(user=staff_user, record=ada)) == 1
