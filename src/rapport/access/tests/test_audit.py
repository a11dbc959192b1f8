"""S5 — the access audit: entries from views and searches, the hash chain, field history."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from rapport.access.audit import (
    forget_person_changes,
    record_event,
    record_field_changes,
    record_person_access,
    verify_chain,
)
from rapport.access.models import AuditChainHead, AuditEntry
from rapport.access.selectors import field_history, person_access_log
from rapport.core.testing import PASSWORD, make_organisation, make_person
from rapport.people import services as people


def _raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_entries_form_a_chain_and_verify_passes(staff_user):
    # given
    ada = make_person(actor=staff_user, given_name="Ada")
    # when
    record_person_access(actor=staff_user, action="view", people=[ada, ada.pk], channel="api")
    record_event(actor=staff_user, action="permission_change", object_type="access.role", object_id="x")
    # then
    entries = list(AuditEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert entries[0].prev_hash == ""
    views = [e for e in entries if e.action == "view"]
    assert len(views) == 1 and views[0].person_id == ada.pk and views[0].channel == "api"
    assert AuditChainHead.objects.get().seq == entries[-1].seq
    assert verify_chain().ok


def test_ui_view_and_search_record_who_what_when_where(client, staff_user):
    # given
    ada = make_person(actor=staff_user, given_name="Ada", family_name="Lovelace")
    assert client.login(username=staff_user.username, password=PASSWORD)
    # when
    client.get(reverse("people:person-detail", kwargs={"pk": ada.pk}), REMOTE_ADDR="203.0.113.9",
               HTTP_X_REQUEST_ID="req-42")
    client.get(reverse("people:search"), {"q": "Lovelace"}, REMOTE_ADDR="2001:db8::7")
    # then
    view = AuditEntry.objects.get(action="view", person_id=ada.pk)
    assert (view.actor_name, view.channel, view.ip, view.request_id) == ("staff", "ui", "203.0.113.9", "req-42")
    search = AuditEntry.objects.get(action="search", person_id=ada.pk)
    assert search.ip == "2001:db8::7"
    assert [line.action for line in person_access_log(ada.pk)][:2] == ["search", "view"]


def test_editing_any_row_is_found_and_named(staff_user):
    # given
    ada = make_person(actor=staff_user, given_name="Ada")
    for _ in range(3):
        record_person_access(actor=staff_user, action="view", people=[ada], channel="ui")
    target = AuditEntry.objects.order_by("seq")[2]
    # when: someone with database access rewrites who looked
    _raw("UPDATE access_auditentry SET actor_name = %s WHERE seq = %s", ["somebody-else", target.seq])
    # then
    report = verify_chain()
    assert not report.ok and report.seq == target.seq
    assert f"#{target.seq}" in report.problem and "edited" in report.problem


def test_deleting_a_middle_row_is_found_and_named(staff_user):
    ada = make_person(actor=staff_user, given_name="Ada")
    for _ in range(4):
        record_person_access(actor=staff_user, action="view", people=[ada], channel="ui")
    victim = AuditEntry.objects.order_by("seq")[1]
    _raw("DELETE FROM access_auditentry WHERE seq = %s", [victim.seq])
    report = verify_chain()
    assert not report.ok and report.seq == victim.seq and "deleted" in report.problem


def test_deleting_the_last_rows_is_found(staff_user):
    ada = make_person(actor=staff_user, given_name="Ada")
    for _ in range(3):
        record_person_access(actor=staff_user, action="view", people=[ada], channel="ui")
    last = AuditEntry.objects.order_by("-seq")[0]
    _raw("DELETE FROM access_auditentry WHERE seq = %s", [last.seq])
    report = verify_chain()
    assert not report.ok and report.seq == last.seq and "deleted" in report.problem


def test_editing_every_column_breaks_the_chain(staff_user):
    """Each hashed column, changed alone, is detected (no column escapes the hash)."""
    ada = make_person(actor=staff_user, given_name="Ada")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="ui", reason="because",
                         detail={"k": 1})
    entry = AuditEntry.objects.get(action="view")
    changes = {"actor_name": "x", "action": "x", "object_type": "x", "object_id": "x", "channel": "x", "ip": "1.2.3.4",
               "reason": "x", "request_id": "x", "detail": '{"k":2}', "changes_digest": "0" * 64,
               "prev_hash": "0" * 64, "hash": "0" * 64, "person_id": None, "actor_id": None}
    for column, value in changes.items():
        original = AuditEntry.objects.filter(pk=entry.pk).values_list(column, flat=True).get()
        _raw(f"UPDATE access_auditentry SET {column} = %s WHERE seq = %s",  # noqa: S608 - fixed names
             [value if column not in ("person_id", "actor_id") else None, entry.seq])
        assert not verify_chain().ok, column
        AuditEntry.objects.filter(pk=entry.pk).update(**{column: original})
        assert verify_chain().ok, column


def test_cli_verify_exit_codes(staff_user, capsys):
    # given
    ada = make_person(actor=staff_user, given_name="Ada")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="ui")
    # when / then: intact
    call_command("audit", "verify")
    assert "intact" in capsys.readouterr().out
    # when / then: broken
    entry = AuditEntry.objects.order_by("seq").first()
    _raw("UPDATE access_auditentry SET reason = %s WHERE seq = %s", ["forged", entry.seq])
    with pytest.raises(CommandError, match=f"#{entry.seq}"):
        call_command("audit", "verify")


def test_person_update_keeps_old_and_new_values_sealed(staff_user):
    # given
    ada = make_person(actor=staff_user, given_name="Ada", family_name="Byron")
    # when
    people.person_update(actor=staff_user, person=ada, changes={"family_name": "Lovelace",
                                                                 "income_band": "over_100k"})
    # then
    [change] = field_history(user=staff_user, record=ada)
    assert ("family_name", "Byron", "Lovelace") in change.changes
    assert ("income_band", None, "over_100k") in change.changes
    with connection.cursor() as cursor:
        cursor.execute("SELECT changes FROM access_auditentry WHERE changes IS NOT NULL")
        [(raw,)] = cursor.fetchall()
    assert "Lovelace" not in raw and "over_100k" not in raw


def test_organisation_changes_keep_field_history(staff_user):
    acme = make_organisation(actor=staff_user, name="Acme")
    people.organisation_update(actor=staff_user, organisation=acme, changes={"name": "Acme Ltd"},
                               tags=["key"])
    history = field_history(user=staff_user, record=acme)
    assert ("name", "Acme", "Acme Ltd") in history[0].changes
    assert ("tags", [], ["key"]) in history[0].changes
    assert history[-1].action == "create"


def test_bulk_changes_get_one_entry_per_record(staff_user):
    a, b = make_person(actor=staff_user, given_name="A"), make_person(actor=staff_user, given_name="B")
    record_field_changes(actor=staff_user, object_type="people.Person", channel="import",
                         changes_by_id={a.pk: {"country": ["", "GB"]}, b.pk: {"country": ["", "FR"]}})
    assert field_history(user=staff_user, record=b)[0].changes == [("country", "", "FR")]
    assert verify_chain().ok


def test_erasing_field_history_values_keeps_the_chain_valid(staff_user):
    ada = make_person(actor=staff_user, given_name="Ada")
    people.person_update(actor=staff_user, person=ada, changes={"notes": "secret"})
    assert forget_person_changes(ada.pk) == 1
    assert field_history(user=staff_user, record=ada) == []
    assert verify_chain().ok


def test_tampered_sealed_changes_are_found(staff_user):
    ada = make_person(actor=staff_user, given_name="Ada")
    people.person_update(actor=staff_user, person=ada, changes={"notes": "secret"})
    entry = AuditEntry.objects.get(changes__isnull=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT changes FROM access_auditentry WHERE seq = %s", [entry.seq])
        raw = cursor.fetchone()[0]
    _raw("UPDATE access_auditentry SET changes = %s WHERE seq = %s", [raw[:-4] + "AAAA", entry.seq])
    report = verify_chain()
    assert not report.ok and report.seq == entry.seq


def test_audit_search_is_for_auditors(client, user_in, staff_user):
    # given
    auditor = user_in("auditor", "aud")
    ada = make_person(actor=staff_user, given_name="Ada")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="ui")
    # when
    assert client.login(username=auditor.username, password=PASSWORD)
    found = client.get(reverse("access:audit-search"), {"person": str(ada.pk), "action": "view"})
    client.logout()
    assert client.login(username=staff_user.username, password=PASSWORD)
    refused = client.get(reverse("access:audit-search"))
    # then
    assert found.status_code == 200 and 'data-audit-entry="' in found.content.decode()
    assert refused.status_code == 403
    assert AuditEntry.objects.filter(action="audit_search", actor_name="aud").exists()


def test_audit_api_for_auditor_token_only(user_in, staff_user):
    from rapport.core.testing import token_client

    auditor = user_in("auditor", "aud")
    ada = make_person(actor=staff_user, given_name="Ada")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="ui")
    ok = token_client(auditor, ["read"]).get("/api/v1/audit/", {"person_id": str(ada.pk)})
    refused = token_client(staff_user, ["read"]).get("/api/v1/audit/")
    assert ok.status_code == 200 and [e["action"] for e in ok.json()["results"]] == ["view", "create"]
    assert refused.status_code == 403


def test_concurrent_appends_never_fork_the_chain(transactional_db, staff_user):
    """Several threads (own connections) append at once; the chain stays one line."""
    import threading

    from django.db import connections

    if connection.vendor == "sqlite":
        pytest.skip("the in-memory SQLite test database locks whole tables; there SQLite's IMMEDIATE "
                    "transactions serialise appends (run on PostgreSQL to test the row lock)")
    ada = make_person(actor=staff_user, given_name="Ada")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                record_person_access(actor=staff_user, action="view", people=[ada], channel="job")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert AuditEntry.objects.filter(action="view").count() == 40
    report = verify_chain()
    assert report.ok, report.problem


def test_detail_is_canonical_json(staff_user):
    record_event(actor=staff_user, action="x", detail={"b": 1, "a": [1, 2]})
    assert json.loads(AuditEntry.objects.get(action="x").detail) == {"a": [1, 2], "b": 1}


def test_a_page_of_entries_is_one_insert_that_verifies_and_answers_who_viewed_whom(staff_user):
    # given: a list page of people, some of them with sealed changes in the same batch
    people_on_page = [make_person(actor=staff_user, given_name=f"P{i}") for i in range(30)]
    # when
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        record_person_access(actor=staff_user, action="view", people=people_on_page, channel="api")
    record_field_changes(actor=staff_user, object_type="people.person", channel="api",
                         changes_by_id={p.pk: {"given_name": [p.given_name, "X"]} for p in people_on_page[:3]})
    # then: constant work (lock, one INSERT for all rows, move head), a chain that verifies,
    # and every person's own access log names the view
    inserts = [q for q in queries.captured_queries if "INSERT INTO" in q["sql"].upper()]
    assert len(inserts) == 1
    assert verify_chain().ok
    for person in people_on_page:
        assert [e.action for e in person_access_log(person_id=person.pk) if e.action == "view"] == ["view"]
    sealed = list(AuditEntry.objects.filter(changes__isnull=False).order_by("-seq")[:3])
    assert sorted(e.changes for e in sealed) == sorted(
        json.dumps({"given_name": [p.given_name, "X"]}, separators=(",", ":")) for p in people_on_page[:3])
    assert len({e.hash for e in AuditEntry.objects.all()}) == AuditEntry.objects.count()


def test_one_entry_is_one_statement_without_the_orm(staff_user):
    """A single audited read is one statement: on PostgreSQL after the head this connection moved
    last, on SQLite after the head the database holds (decision 0022); no head SELECT of its own."""
    from django.test.utils import CaptureQueriesContext

    # given
    ada = make_person(actor=staff_user, given_name="Ada")
    # when
    with CaptureQueriesContext(connection) as queries:
        record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    # then
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].upper().startswith("BEGIN")]
    if connection.vendor == "postgresql":  # after the head this connection moved last (make_person's entry)
        assert len(statements) == 1 and statements[0].startswith("WITH moved AS (UPDATE"), statements
    else:  # no BEGIN or COMMIT either: in autocommit the statement is its own transaction
        assert len(queries.captured_queries) == 1, statements
        assert statements[0].startswith('INSERT INTO "access_auditentry"') and "FROM \"access_auditchainhead\"" in statements[0]
    assert not any(sql.upper().startswith("SELECT") for sql in statements)
    head = AuditChainHead.objects.get()
    last = AuditEntry.objects.order_by("-seq").first()
    assert (head.seq, head.hash) == (last.seq, last.hash) and verify_chain().ok


def test_values_stored_without_field_machinery_read_back_as_the_orm_would(staff_user):
    # given: a person id given as text, a reason, a detail, sealed changes and an address
    ada = make_person(actor=staff_user, given_name="Ada")
    # when
    record_event(actor=staff_user, action="x", object_type="People.Person", object_id=ada.pk,
                 person_id=str(ada.pk), reason="asked", detail={"a": 1}, changes={"notes": ["", "n"]})
    # then
    entry = AuditEntry.objects.get(action="x")
    assert (entry.person_id, entry.actor_id, entry.object_id) == (ada.pk, staff_user.pk, str(ada.pk))
    assert entry.occurred_at.tzinfo is not None and entry.changes == '{"notes":["","n"]}'
    assert AuditEntry.objects.filter(person_id=ada.pk, action="x").exists()  # stored as the ORM stores it
    assert verify_chain().ok


def test_the_first_append_creates_the_chain_head(db):
    # given: a database without any entry or head row
    AuditEntry.objects.all().delete()
    AuditChainHead.objects.all().delete()
    # when
    record_event(actor=None, action="first")
    record_event(actor=None, action="second")
    # then
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", "action")) == [(1, "first"), (2, "second")]
    assert AuditChainHead.objects.get().seq == 2 and verify_chain().ok


@pytest.mark.parametrize("value", [
    dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 1, 12, 0, 0, 7, tzinfo=dt.UTC),
    dt.datetime(1999, 1, 2, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    dt.datetime(2030, 6, 30, 1, 2, 3, 450000, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
])
def test_the_hashed_timestamp_is_the_format_the_chain_was_built_with(value):
    """Entries already written were hashed with strftime's format: verify must recompute the same text."""
    from rapport.access.audit import _hash_of, _timestamp

    assert _timestamp(value) == value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [1, _timestamp(value), "ä", None, {"k": [1, 2]}]
    expected = hmac.new(b"k" * 32, json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode(),
                               hashlib.sha256).hexdigest()
    assert _hash_of(fields, b"k" * 32) == expected


def test_a_head_moved_by_someone_else_is_never_appended_after(staff_user):
    """PostgreSQL's one-statement append trusts nothing it remembers: a stale head moves nothing."""
    from django.db import connections

    from rapport.access import audit

    # given: this connection remembers a head that is no longer the chain's
    ada = make_person(actor=staff_user, given_name="Ada")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    head = AuditChainHead.objects.get()
    audit._last_head[connections["default"]] = (head.seq - 1, "0" * 64)
    # when
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    record_person_access(actor=staff_user, action="view", people=[ada], channel="api")
    # then: the entries follow the real head, one line, and the chain verifies
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)) and AuditChainHead.objects.get().seq == head.seq + 2
    assert verify_chain().ok
