"""A person with a full history, shared by the erasure and export tests (C5)."""

from __future__ import annotations

import datetime as dt
import io

from django.core.files.uploadedfile import SimpleUploadedFile

from rapport.access.audit import record_person_access
from rapport.access.services import attachment_add
from rapport.people.models import Person
from rapport.people.services import (
    ContactPointInput,
    contact_point_add,
    interaction_log,
    person_update,
)
from rapport.privacy import gate, outbound, rights, services
from rapport.privacy.models import ConsentBasis, ConsentSource

GIVEN, FAMILY = "Zebulon", "Quixotefield"
EMAIL_GMAIL = "Zebulon.Quixote+news@gmail.com"
EMAIL_WORK = "zq@quixotefield-works.example"
EMAIL_DUPLICATE = "zeb.q@dupes.example"
PHONE_MOBILE, PHONE_HOME = "+44 7911 123461", "020 7946 0462"
USER_AGENT = "QuixBrowser/9.1 (Zebulon's laptop)"
IP = "203.0.113.77"
# Lower-case fragments that must not survive anywhere: names, emails (raw, normalised and as
# Gmail delivers them), phones (E.164 and national digits), and the proof of consent.
NEEDLES = ("zebulon", "quixote", "zq@", "zeb.q@", "7911123461", "79460462", "quixbrowser", IP)



def csv_bytes(rows: list[list[str]]) -> bytes:
    import csv

    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def import_rows(actor, rows: list[list[str]]):
    from rapport.imports import services as imports

    imp = imports.import_create(actor=actor, upload=io.BytesIO(csv_bytes(rows)), file_name="fair-entries.csv")
    imports.prepare_run(actor=actor, import_run=imp)
    return imports.import_execute(import_id=imp.pk, dry_run=False)


def full_history(actor, api_client) -> Person:
    """A person who came in by import and then did everything Rapport records."""
    # an import brings them (file on disk, sample, preview, provenance)
    imp = import_rows(actor, [["First name", "Last name", "Email", "Mobile"],
                          [GIVEN, FAMILY, EMAIL_GMAIL, PHONE_MOBILE],
                          ["Other", "Person", "other@example.com", ""]])
    assert imp.counts["created"] == 2, (imp.counts, list(imp.issues.values_list("message", flat=True)), imp.mapping)
    person = Person.objects.get(family_name=FAMILY)
    # more contact points, a job, notes and field history
    contact_point_add(actor=actor, person=person, data=ContactPointInput(kind="email", value=EMAIL_WORK))
    contact_point_add(actor=actor, person=person, data=ContactPointInput(kind="phone", value=PHONE_HOME))
    contact_point_add(actor=actor, person=person, data=ContactPointInput(
        kind="address", value=f"{GIVEN} {FAMILY}\n1 Quixote Lane\nLondon"))
    person = person_update(actor=actor, person=person, changes={
        "notes": f"{GIVEN} prefers calls", "preferred_name": "Zeb Quixote", "birth_date": dt.date(1980, 2, 29),
        "country": "GB"})
    # the timeline
    interaction_log(actor=actor, person=person, channel="phone", kind="call",
                    summary=f"Call with {GIVEN} {FAMILY}", body=f"{GIVEN} asked about {EMAIL_WORK}")
    # consent with its proof, preferences, topics
    services.record_consent(person=person, purpose="newsletter", channel="email", granted=True,
                            lawful_basis=ConsentBasis.CONSENT, source=ConsentSource.FORM, ip=IP,
                            user_agent=USER_AGENT, proof={"form": "signup", "email": EMAIL_GMAIL},
                            double_opt_in=False)
    services.record_consent(person=person, purpose="offers", channel="sms", granted=False,
                            lawful_basis=ConsentBasis.CONSENT, source=ConsentSource.STAFF, captured_by=actor,
                            proof={"how": f"{GIVEN} said no on the phone"})
    services.preferences_update(actor=actor, person=person, changes={"preferred_channel": "email",
                                                                     "max_per_week": 2},
                                topics={"newsletter": True})
    # the gate's decision log and an outbound touch
    gate.decide(person, "phone", "newsletter", actor=actor, context="staff check")
    sent = outbound.send_email(person=person, purpose="newsletter", subject="News", body="Hello", actor=actor)
    assert sent.sent
    # a rights request (access, completed) with the requester's details
    access = rights.request_create(actor=actor, kind="access", person=person, requester_name=f"{GIVEN} {FAMILY}",
                                   requester_contact=EMAIL_WORK, details=f"{GIVEN} wants a copy")
    rights.request_verify(actor=actor, request=access, method="reply from registered email",
                          note=f"{EMAIL_WORK} replied")
    rights.request_execute(actor=actor, request=access)
    # a staff read (audited), an attachment, a legal hold placed and released
    record_person_access(actor=actor, action="view", people=[person], channel="ui")
    attachment_add(actor=actor, record=person, description=f"{GIVEN}'s signed form",
                   upload=SimpleUploadedFile(f"{GIVEN}-{FAMILY}-form.pdf", b"%PDF-1.4 zebulon quixotefield"))
    hold = services.place_legal_hold(actor=actor, person=person, reason=f"claim by {GIVEN} {FAMILY}")
    services.release_legal_hold(actor=actor, hold=hold)
    # a duplicate record of them, edited (sealed field history under its own id), then merged in
    from rapport.identity.merge import merge_people
    from rapport.people.services import person_create

    duplicate = person_create(actor=actor, given_name="Zeb", family_name=FAMILY, country="GB",
                              contact_points=[ContactPointInput(kind="email", value=EMAIL_DUPLICATE)])
    person_update(actor=actor, person=duplicate, changes={"notes": f"Calls himself {GIVEN} Q."})
    merge_people(survivor=person, merged=duplicate, actor=actor, reason="same man")
    # an API update with an idempotency key (the replay cache keeps the response)
    response = api_client.patch(f"/api/v1/people/{person.pk}/", {"middle_names": "Quixote"}, format="json",
                                HTTP_IDEMPOTENCY_KEY="erasure-test")
    assert response.status_code == 200, response.content
    person.refresh_from_db()
    return person
