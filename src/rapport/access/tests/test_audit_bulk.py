"""S5 — ``record_people_access_bulk``: the same entries as ``record_person_access``, cheaper."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.access.audit import record_people_access_bulk, record_person_access, verify_chain
from rapport.access.models import AuditEntry
from rapport.access.selectors import person_access_log
from rapport.core.testing import make_person

COMPARED = ("actor_id", "actor_name", "action", "object_type", "object_id", "person_id", "channel", "ip",
            "reason", "request_id", "detail", "changes", "changes_digest")


def test_bulk_entries_equal_the_single_path_and_verify(staff_user):
    # given: people, and a detail and reason JSON has to escape (quotes, non-ASCII, controls)
    people = [make_person(actor=staff_user, given_name=f"P{i}") for i in range(25)]
    detail = {"format": "csv", "filters": {"name": 'Zoë "Ó Briain"\n\\'}}
    # when: the same access recorded both ways (ids, objects and a repeated id for the bulk path)
    record_person_access(actor=staff_user, action="export", people=people, channel="export",
                         reason="audit ✓ \"x\"", detail=detail)
    start = AuditEntry.objects.order_by("-seq").first().seq
    with CaptureQueriesContext(connection) as queries:
        written = record_people_access_bulk(actor=staff_user, action="export",
                                            people=[p.pk for p in people] + people[:3], channel="export",
                                            reason="audit ✓ \"x\"", detail=detail)
    # then: one INSERT, a chain that verifies, and entries equal but for seq, time and hashes
    assert written == len(people)
    assert len([q for q in queries.captured_queries if "INSERT INTO" in q["sql"].upper()]) == 1
    assert verify_chain().ok
    single = list(AuditEntry.objects.filter(seq__lte=start).order_by("seq"))[-len(people):]
    bulk = list(AuditEntry.objects.filter(seq__gt=start).order_by("seq"))
    assert [e.seq for e in bulk] == list(range(start + 1, start + 1 + len(people)))
    assert [[getattr(e, f) for f in COMPARED] for e in bulk] == [[getattr(e, f) for f in COMPARED] for e in single]
    assert len({e.occurred_at for e in bulk}) == 1
    for person in people:
        assert [e.action for e in person_access_log(person_id=person.pk)].count("export") == 2


def test_bulk_without_people_writes_nothing(staff_user):
    before = AuditEntry.objects.count()
    assert record_people_access_bulk(actor=staff_user, action="export", people=[], channel="export") == 0
    assert AuditEntry.objects.count() == before
    assert verify_chain().ok


def test_bulk_by_a_system_actor_verifies(staff_user):
    ada = make_person(actor=staff_user, given_name="Ada")
    record_people_access_bulk(actor=None, action="export", people=[ada.pk], channel="job")
    entry = AuditEntry.objects.filter(action="export").get()
    assert (entry.actor_id, entry.actor_name, entry.person_id, entry.object_id) == (None, "system", ada.pk, str(ada.pk))
    assert verify_chain().ok
