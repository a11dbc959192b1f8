"""S5 — ``record_people_access_bulk``: one chained entry per bulk read, one indexed row per person.

What the single path gives per person must still hold: "who exported person X" answers with
the entry (``person_entries``), and ``verify_chain`` names the entry when any of the rows
it covers is edited, deleted or added.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.access.audit import (
    person_entries,
    record_people_access_bulk,
    record_person_access,
    verify_chain,
)
from rapport.access.models import AuditEntry, AuditEntryPerson
from rapport.core.testing import make_person

COVERED = AuditEntryPerson._meta.db_table


def _raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _stored(pid: uuid.UUID) -> str:
    return pid.hex if connection.vendor == "sqlite" else str(pid)  # how a UUIDField is written raw


@pytest.fixture
def exported(staff_user):
    """Five people, each viewed once, then exported together in one bulk entry."""
    people = [make_person(actor=staff_user, given_name=f"P{i}") for i in range(5)]
    record_person_access(actor=staff_user, action="view", people=people[:1], channel="ui")
    record_people_access_bulk(actor=staff_user, action="export", people=people, channel="export",
                              detail={"format": "csv", "filters": {"name": 'Zoë "Ó Briain"\n\\'}})
    entry = AuditEntry.objects.order_by("-seq").first()
    return people, entry


def test_one_chained_entry_covers_the_people_and_answers_who_exported_whom(exported, staff_user):
    people, entry = exported
    # then: one entry, no person of its own, the people and their digest in its detail
    assert (entry.action, entry.channel, entry.actor_name, entry.person_id) == ("export", "export", "staff", None)
    detail = json.loads(entry.detail)
    assert detail["people"]["count"] == 5 and len(detail["people"]["sha256"]) == 64
    assert detail["filters"] == {"name": 'Zoë "Ó Briain"\n\\'}
    covered = AuditEntryPerson.objects.filter(entry_seq=entry.seq).order_by("id")
    assert [row.person_id for row in covered] == [p.pk for p in people]
    assert verify_chain().ok
    # and each person's own trail names the export, newest first, after their single entries
    for person in people:
        actions = [e.action for e in person_entries(person.pk)]
        assert actions[0] == "export" and actions[-1] == "create"
    assert [e.action for e in person_entries(people[0].pk)] == ["export", "view", "create"]
    outsider = make_person(actor=staff_user, given_name="Not exported")
    assert "export" not in [e.action for e in person_entries(outsider.pk)]


def test_every_form_of_id_counts_once_and_invalid_ones_are_dropped(staff_user):
    ada, bea, cy = (make_person(actor=staff_user, given_name=n) for n in ("Ada", "Bea", "Cy"))
    written = record_people_access_bulk(
        actor=staff_user, action="export", channel="export",
        people=[ada, ada.pk, ada.pk.hex, str(ada.pk), str(bea.pk).upper(), bea.pk.hex.upper(), cy.pk, "not-an-id", ""])
    assert written == 3
    entry = AuditEntry.objects.order_by("-seq").first()
    assert sorted(AuditEntryPerson.objects.filter(entry_seq=entry.seq).values_list("person_id", flat=True)) == \
        sorted([ada.pk, bea.pk, cy.pk])
    assert verify_chain().ok


def test_the_work_does_not_grow_with_the_number_of_people(staff_user):
    few = [make_person(actor=staff_user, given_name=f"F{i}").pk for i in range(3)]
    many = [uuid.uuid4() for _ in range(300)]
    counts = []
    for people in (few, many):
        with CaptureQueriesContext(connection) as queries:
            record_people_access_bulk(actor=staff_user, action="export", people=people, channel="export")
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]
    assert AuditEntryPerson.objects.count() == 303
    assert verify_chain().ok


@pytest.mark.parametrize("tamper", ["edit person", "delete row", "add row", "move row"])
def test_tampering_with_the_covered_rows_names_the_entry(exported, tamper):
    _, entry = exported
    victim = AuditEntryPerson.objects.filter(entry_seq=entry.seq).order_by("id")[2]
    # when: someone with database access rewrites who was exported
    if tamper == "edit person":
        _raw(f"UPDATE {COVERED} SET person_id = %s WHERE id = %s", [_stored(uuid.uuid4()), victim.pk])  # noqa: S608
    elif tamper == "delete row":
        _raw(f"DELETE FROM {COVERED} WHERE id = %s", [victim.pk])  # noqa: S608
    elif tamper == "add row":
        _raw(f"INSERT INTO {COVERED} (entry_seq, person_id) VALUES (%s, %s)", [entry.seq, _stored(uuid.uuid4())])  # noqa: S608
    else:  # the row said to belong to the view entry before the export
        _raw(f"UPDATE {COVERED} SET entry_seq = %s WHERE id = %s", [entry.seq - 1, victim.pk])  # noqa: S608
    # then
    report = verify_chain()
    assert not report.ok and report.seq == entry.seq
    assert f"#{entry.seq}" in report.problem and "digest" in report.problem


def test_deleting_all_the_covered_rows_or_adding_rows_past_the_chain_is_found(exported):
    _, entry = exported
    _raw(f"INSERT INTO {COVERED} (entry_seq, person_id) VALUES (%s, %s)", [entry.seq + 5, _stored(uuid.uuid4())])  # noqa: S608
    report = verify_chain()
    assert not report.ok and report.seq == entry.seq + 5 and "covers no such people" in report.problem
    _raw(f"DELETE FROM {COVERED}", [])  # noqa: S608
    report = verify_chain()
    assert not report.ok and report.seq == entry.seq and "digest" in report.problem


def test_editing_the_promised_digest_breaks_the_entry_hash(exported):
    _, entry = exported
    forged = entry.detail.replace('"count":5', '"count":4')
    assert forged != entry.detail
    _raw(f"UPDATE {AuditEntry._meta.db_table} SET detail = %s WHERE seq = %s", [forged, entry.seq])  # noqa: S608
    report = verify_chain()
    assert not report.ok and report.seq == entry.seq and "hash does not match" in report.problem


def test_bulk_without_people_writes_nothing(staff_user):
    before = AuditEntry.objects.count()
    assert record_people_access_bulk(actor=staff_user, action="export", people=[], channel="export") == 0
    assert record_people_access_bulk(actor=staff_user, action="export", people=["junk"], channel="export") == 0
    assert AuditEntry.objects.count() == before and not AuditEntryPerson.objects.exists()
    assert verify_chain().ok


def test_bulk_by_a_system_actor_verifies(staff_user):
    ada = make_person(actor=staff_user, given_name="Ada")
    record_people_access_bulk(actor=None, action="create", people=[ada.pk], channel="job")
    entry = AuditEntry.objects.filter(action="create", person_id__isnull=True).get()
    assert (entry.actor_id, entry.actor_name, entry.object_type) == (None, "system", "people.person")
    assert [e.pk for e in person_entries(ada.pk) if e.action == "create" and e.channel == "job"] == [entry.pk]
    assert verify_chain().ok


def test_every_reader_of_a_persons_trail_sees_the_bulk_entries(exported, admin_user):
    """The record's access panel / privacy export (person_access_log), the auditors' search by
    person and the privacy access export all name the export that covered the person."""
    from rapport.access.selectors import audit_search, person_access_log
    from rapport.privacy.selectors import access_log

    people, entry = exported
    person = people[3]
    assert [line.action for line in person_access_log(person.pk)] == ["export", "create"]
    assert entry.seq in {e.seq for e in audit_search(user=admin_user, person_id=person.pk)}
    assert [row["action"] for row in access_log(person=person)] == ["export", "create"]
