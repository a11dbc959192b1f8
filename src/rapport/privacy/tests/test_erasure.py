"""C5/I5 — erasure: after erasing a person with a full history, no table holds their names, emails
or phones any more, and the suppression list stops them coming back by any door.

The scan is the point: it reads every column of every table (raw SQL, so nothing the ORM hides
escapes it) and every encrypted model field (through the ORM, which unseals them).
"""

from __future__ import annotations

import io
import json

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from rapport.access.encryption import EncryptedMixin
from rapport.core.testing import make_person
from rapport.people.models import ContactPoint, Person
from rapport.people.services import (
    ContactPointInput,
    contact_point_add,
)
from rapport.privacy import gate, rights, services
from rapport.privacy.erasure import erase_person
from rapport.privacy.errors import LegalHoldActive
from rapport.privacy.models import (
    ConsentEvent,
    PersonPrivacy,
    RightsRequest,
    SuppressionEntry,
)
from rapport.privacy.suppression import Suppressed
from rapport.privacy.tests.histories import (
    EMAIL_GMAIL,
    EMAIL_WORK,
    FAMILY,
    GIVEN,
    NEEDLES,
    import_rows,
)

pytestmark = pytest.mark.django_db(transaction=False)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="ignore").lower()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).lower()
    return str(value).lower()


def scan(needles=NEEDLES) -> list[str]:
    """Where any needle appears: ``table.column`` (raw) or ``Model.field`` (unsealed), with the needle."""
    hits: set[str] = set()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608 - table names from introspection
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    text = _text(value)
                    hits.update(f"{table}.{column}: {n}" for n in needles if n in text)
    for model in apps.get_models():
        sealed = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedMixin)]
        for values in model._default_manager.values_list(*sealed) if sealed else ():
            for name, value in zip(sealed, values, strict=True):
                text = _text(value)
                hits.update(f"{model._meta.label}.{name}: {n}" for n in needles if n in text)
    return sorted(hits)


def test_erasure_leaves_no_trace_in_any_column_of_any_table(admin_user, history, media,
                                                             django_capture_on_commit_callbacks):
    # given: the scan sees the person everywhere before erasure (so it can fail)
    before = scan()
    for place in ("people_person.family_name", "people_contactpoint.value", "identity_mergerecord.snapshot", "privacy_consentevent.user_agent",
                  "privacy_consentevent.ip", "privacy_rightsrequest.requester_name", "imports_import.sample",
                  "access_attachment.filename", "people_interaction.summary", "privacy_legalhold.reason"):
        assert any(hit.startswith(place) for hit in before), (place, before)
    assert any(hit.startswith("people.Person.birth_date") or "access.AuditEntry.changes" in hit for hit in before)
    assert list(media.rglob("*.csv")) and list(media.rglob("*.sealed"))
    other = Person.objects.get(family_name="Person")
    blank = rights.request_create(actor=admin_user, kind="objection", person=history)
    # when: erased through a verified erasure request (the way staff do it)
    request = rights.request_create(actor=admin_user, kind="erasure", person=history,
                                    requester_name=f"{GIVEN} {FAMILY}", requester_contact=EMAIL_GMAIL,
                                    details=f"Please forget {GIVEN}")
    rights.request_verify(actor=admin_user, request=request, method="ID document seen",
                          note=f"passport of {GIVEN} {FAMILY}")
    with django_capture_on_commit_callbacks(execute=True):
        done = rights.request_execute(actor=admin_user, request=request)
    # then
    assert done.status == RightsRequest.Status.COMPLETED
    assert scan() == []
    # no stored file keeps them either: the import's upload and the sealed attachment are gone
    assert not list(media.rglob("*.csv")) and not list(media.rglob("*.sealed"))
    # the person row stays, anonymised, and marked erased; the request and the ledger stay pseudonymised
    history.refresh_from_db()
    assert (history.given_name, history.family_name, history.birth_date) == ("", "", None)
    assert PersonPrivacy.objects.get(person=history).erased_at is not None
    assert not ContactPoint.objects.filter(person=history).exists()
    request.refresh_from_db()
    assert request.requester_name.startswith("pseudonym-") and request.status == "completed"
    assert request.requester_contact.startswith("pseudonym-") and request.requester_contact != request.requester_name
    first = RightsRequest.objects.get(kind="access")
    assert first.requester_name.startswith("pseudonym-")
    blank.refresh_from_db()
    assert blank.requester_name == "" and blank.requester_contact == ""  # nothing invented
    assert "contact points: " in done.outcome and "identifiers suppressed" in done.outcome
    assert ConsentEvent.objects.filter(person=history).count() == 2  # kept (proof), pseudonymised
    assert gate.decisions_about(history)  # accountability kept
    # the other person of the same import keeps their data
    assert other.contact_points.filter(normalised="other@example.com").exists()
    # the audit chain is intact after erasure dropped the field history
    from rapport.access.audit import verify_chain

    assert verify_chain().ok


def test_erased_identifiers_are_suppressed_for_every_door(admin_user, admin_api_client, history):
    # given
    report = erase_person(actor=admin_user, person=history, reason="test")
    assert report.suppressed >= 4
    assert not SuppressionEntry.objects.filter(digest__icontains="zebulon").exists()
    # then: the people service refuses the same email, and Gmail's variants of it
    for email in (EMAIL_GMAIL, "zebulonquixote@gmail.com", "zebulon.quixote@googlemail.com",
                  "Z.e.b.u.l.o.n.Quixote+again@GMAIL.com", EMAIL_WORK.upper(), "zq+tag@quixotefield-works.example"):
        with pytest.raises(Suppressed) as refused:
            make_person(actor=admin_user, given_name="New", emails=[email])
        assert "suppression list" in str(refused.value)
    # and the phones, however they are written
    for phone in ("07911 123461", "+447911123461", "+44 20 7946 0462"):
        with pytest.raises(Suppressed):
            make_person(actor=admin_user, given_name="New", phones=[phone])
    # adding it to someone else is refused too
    someone = make_person(actor=admin_user, given_name="Someone")
    with pytest.raises(Suppressed):
        contact_point_add(actor=admin_user, person=someone, data=ContactPointInput(kind="email",
                                                                                   value="zebulonquixote@gmail.com"))
    # a different Gmail user is not caught by the canonical form
    make_person(actor=admin_user, given_name="Zed", emails=["zebulon.quixote.junior@gmail.com"])

    # the API answers 409 with the field named
    response = admin_api_client.post("/api/v1/people/", {
        "given_name": "Zeb", "contact_points": [{"kind": "email", "value": "zebulon.quixote+x@gmail.com"}]},
        format="json")
    assert response.status_code == 409, response.content
    problem = response.json()
    assert problem["type"].endswith("suppressed") and "suppression list" in problem["detail"]
    assert "suppression list" in " ".join(problem["errors"]["emails"])

    # an import skips the row, with the reason, and creates nobody
    before = Person.objects.count()
    imp = import_rows(admin_user, [["Name", "Email"], ["Zeb Q", "zebulonquixote+fair@gmail.com"],
                               ["Fresh Face", "fresh@example.com"]])
    assert imp.counts["suppressed"] == 1 and imp.counts["created"] == 1
    assert Person.objects.count() == before + 1
    from rapport.imports.models import ImportIssue

    issue = ImportIssue.objects.get(import_run=imp, kind="suppressed")
    assert "suppression list" in issue.message


def test_erasure_is_refused_under_legal_hold_and_is_idempotent(admin_user):
    person = make_person(actor=admin_user, given_name="Held", emails=["held@example.com"])
    hold = services.place_legal_hold(actor=admin_user, person=person, reason="litigation 2026-14")
    with pytest.raises(LegalHoldActive):
        erase_person(actor=admin_user, person=person)
    assert Person.objects.get(pk=person.pk).given_name == "Held"
    services.release_legal_hold(actor=admin_user, hold=hold)
    first = erase_person(actor=admin_user, person=person)
    again = erase_person(actor=admin_user, person=person)
    assert not first.already_erased and again.already_erased
    assert SuppressionEntry.objects.filter(source="erasure").count() == first.suppressed


def test_erased_person_is_denied_by_the_gate_and_takes_no_new_data(admin_user):
    person = make_person(actor=admin_user, given_name="Gone", emails=["gone@example.com"])
    erase_person(actor=admin_user, person=person)
    decision = gate.decide(person, "email", "security_notice", at=timezone.now())
    assert not decision.allowed and "erased" in {r.code for r in decision.reasons}
    from rapport.privacy.errors import PersonErased

    with pytest.raises(PersonErased):
        services.restrict_processing(actor=admin_user, person=person, reason="x")


def test_erase_cli(admin_user):
    from django.core.management import CommandError, call_command

    person = make_person(actor=admin_user, given_name="Cli", family_name="Erasable", emails=["cli@example.com"])
    out = io.StringIO()
    call_command("privacy", "erase", str(person.pk), "--yes", stdout=out)
    assert "Erased" in out.getvalue() and "identifiers suppressed" in out.getvalue()
    assert Person.objects.get(pk=person.pk).family_name == ""
    call_command("privacy", "erase", str(person.pk), "--yes", stdout=out)
    assert "already erased" in out.getvalue()
    with pytest.raises(CommandError, match="Not an id"):
        call_command("privacy", "erase", "nobody", "--yes")
    with pytest.raises(CommandError, match="No person"):
        call_command("privacy", "erase", "00000000-0000-0000-0000-000000000000", "--yes")


def test_staff_ui_refuses_a_suppressed_email_with_a_form_error(client, admin_user):
    # given: an erased person's email
    person = make_person(actor=admin_user, given_name="Ghost", emails=["ghost@example.com"])
    erase_person(actor=admin_user, person=person)
    client.force_login(admin_user)
    # when / then: the create form and the add-contact-point form say why, nothing is stored
    created = client.post("/people/new/", {"given_name": "Ghost", "email": "Ghost@Example.com",
                                           "create_anyway": "1"})
    assert created.status_code == 400 and "suppression list" in created.content.decode()
    other = make_person(actor=admin_user, given_name="Other")
    added = client.post(f"/people/{other.pk}/contact-points/", {"kind": "email", "value": "ghost+1@example.com"})
    assert added.status_code == 400 and "suppression list" in added.content.decode()
    assert not ContactPoint.objects.filter(normalised__startswith="ghost").exists()


def test_erasure_reaches_a_merged_records_history_but_not_after_unmerge(admin_user):
    from rapport.access.models import AuditEntry
    from rapport.identity.merge import merge_people, unmerge
    from rapport.people.services import person_update

    def edited(name):
        person = make_person(actor=admin_user, given_name=name, emails=[f"{name.lower()}@example.com"])
        return person_update(actor=admin_user, person=person, changes={"notes": f"{name} likes tea"})

    # given: B merged into A and still merged; D merged into C, then unmerged
    a, b, c, d = edited("Alpha"), edited("Bravo"), edited("Charlie"), edited("Delta")
    merge_people(survivor=a, merged=b, actor=admin_user)
    unmerge(merge_record=merge_people(survivor=c, merged=d, actor=admin_user), actor=admin_user)
    # when
    erase_person(actor=admin_user, person=a)
    erase_person(actor=admin_user, person=c)
    # then: B's field history (filed under B's old id) is forgotten with A
    assert not AuditEntry.objects.filter(person_id=b.pk, changes__isnull=False).exists()
    # D is a separate person again: their history and contact point stay
    assert AuditEntry.objects.filter(person_id=d.pk, changes__isnull=False).exists()
    assert Person.objects.get(pk=d.pk).contact_points.filter(normalised="delta@example.com").exists()
