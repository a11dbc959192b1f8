"""S5 — the action index leaves views out (decision 0037): every other action filter of the
audit search still reads it, views are still found, and migration 0014 swaps the indexes
without rebuilding the table (SQLite's head trigger stays) and back."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from rapport.access.audit import record_event, record_person_access, verify_chain
from rapport.access.models import AuditEntry
from rapport.access.selectors import audit_search
from rapport.access.tests.test_audit_indexes import _plan_of
from rapport.core.testing import make_person

ENTRIES = AuditEntry._meta.db_table
INDEX = "access_audit_action_not_view"
BEFORE = [("access", "0013_audit_object_index_changes_only")]


def _searched(user, action: str) -> tuple[list[AuditEntry], str]:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as captured:
        found = list(audit_search(user=user, action=action))
    statements = [q["sql"] for q in captured.captured_queries if ENTRIES in q["sql"]]
    assert len(statements) == 1, statements
    return found, statements[0]


def _action_indexes() -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, ENTRIES)
    return {name for name, info in constraints.items() if info["index"] and info["columns"] == ["action"]}


def _to_the_end() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_an_action_other_than_view_is_searched_through_the_index(staff_user, user_in):
    # given: views and a rarer action
    auditor = user_in("auditor")
    ada = make_person(actor=staff_user, given_name="Ada", family_name="Lovelace")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    record_event(actor=staff_user, action="erase", object_type="people.person", object_id=ada.pk, person_id=ada.pk)
    # when
    found, sql = _searched(auditor, "erase")
    # then: only the erase entry, found through the index without views
    assert [entry.action for entry in found] == ["erase"]
    assert INDEX in _plan_of(sql)


def test_views_are_still_found_newest_first(staff_user, user_in):
    # given
    auditor = user_in("auditor")
    people = [make_person(actor=staff_user, given_name=f"P{n}", family_name="Viewed") for n in range(3)]
    for person in people:
        record_person_access(actor=staff_user, action="view", people=[person], channel="api")
    record_event(actor=staff_user, action="erase", object_type="people.person", object_id=people[0].pk)
    # when
    found, _ = _searched(auditor, "view")
    # then
    assert [entry.person_id for entry in found] == [p.pk for p in reversed(people)]
    assert all(entry.action == "view" for entry in found)


def test_the_only_action_index_is_the_one_without_views(db):
    # the field's own index (and PostgreSQL's pattern-ops twin) is gone: a view writes none of them
    assert _action_indexes() == {INDEX}


@pytest.mark.django_db(transaction=True)
def test_going_back_restores_the_field_index_and_keeps_the_chain(staff_user):
    # given: entries under the new index
    _to_the_end()
    ada = make_person(actor=staff_user, given_name="Ada", family_name="Lovelace")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    try:
        # when
        MigrationExecutor(connection).migrate(BEFORE)
        # then: Django's own index(es) of the field again, none of 0014's
        names = _action_indexes()
        assert INDEX not in names
        assert len(names) == (2 if connection.vendor == "postgresql" else 1), names
        record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
        assert verify_chain().ok
    finally:
        _to_the_end()
    # and forwards again: the swap, with the chain (and SQLite's head trigger) intact
    assert _action_indexes() == {INDEX}
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    report = verify_chain()
    assert report.ok and report.checked == AuditEntry.objects.count()
