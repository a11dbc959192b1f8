"""C5 — rights requests: received date, identity verification, statutory due date (one month,
extendable once by two), overdue in the queue, execution of each right; UI, API and CLI."""

from __future__ import annotations

import datetime as dt
import uuid
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from rapport.access.models import AuditEntry
from rapport.core.errors import Conflict
from rapport.people.models import Person
from rapport.privacy import gate, rights
from rapport.privacy.models import ConsentState, PersonPrivacy, RightsRequest

pytestmark = pytest.mark.django_db

TODAY = dt.date.today


def _ago(days: int) -> dt.date:
    return timezone.localdate() - dt.timedelta(days=days)


# ------------------------------------------------------------------------------ deadlines


@pytest.mark.parametrize("received, due, extended", [
    (dt.date(2026, 3, 15), dt.date(2026, 4, 15), dt.date(2026, 6, 15)),
    (dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 4, 30)),  # no 31 Feb: the month's last day
    (dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 4, 30)),
    (dt.date(2026, 12, 10), dt.date(2027, 1, 10), dt.date(2027, 3, 10)),
])
def test_statutory_deadline_is_one_month_extendable_by_two(received, due, extended):
    assert rights.statutory_due_on(received) == due
    assert rights.extended_due_on(received) == extended


def test_request_is_due_one_month_after_it_was_received(officer, make_person):
    person = make_person()
    request = rights.request_create(actor=officer, kind="access", person=person, received_on=_ago(10))
    assert request.received_on == _ago(10) and request.due_on == rights.statutory_due_on(_ago(10))
    assert request.status == "received" and [e.action for e in request.events.all()] == ["received"]


@pytest.mark.parametrize("kwargs, field", [
    ({"kind": "forget-me"}, "kind"),
    ({"kind": "access", "channel": "pigeon"}, "channel"),
    ({"kind": "access", "received_on": dt.date.today() + dt.timedelta(days=2)}, "received_on"),
    ({"kind": "access", "person": None}, "person"),
])
def test_bad_request_input_names_the_field(officer, make_person, kwargs, field):
    values = {"person": make_person(), **kwargs}
    with pytest.raises(ValidationError) as refused:
        rights.request_create(actor=officer, **values)
    assert field in refused.value.message_dict


def test_extension_once_and_only_before_the_deadline(officer, make_person):
    person = make_person()
    request = rights.request_create(actor=officer, kind="access", person=person, received_on=_ago(3))
    with pytest.raises(ValidationError):
        rights.request_extend(actor=officer, request=request, reason=" ")
    extended = rights.request_extend(actor=officer, request=request, reason="Many requests this month")
    assert extended.due_on == rights.extended_due_on(_ago(3)) and extended.is_extended
    with pytest.raises(Conflict, match="already extended"):
        rights.request_extend(actor=officer, request=extended, reason="again")
    late = rights.request_create(actor=officer, kind="access", person=person, received_on=_ago(40))
    with pytest.raises(Conflict, match="deadline has passed"):
        rights.request_extend(actor=officer, request=late, reason="complex")


def test_execution_needs_verified_identity_and_closed_requests_stay_closed(officer, make_person):
    request = rights.request_create(actor=officer, kind="objection", person=make_person())
    with pytest.raises(Conflict, match="Verify"):
        rights.request_execute(actor=officer, request=request)
    with pytest.raises(ValidationError):
        rights.request_verify(actor=officer, request=request, method="  ")
    unlinked = rights.request_create(actor=officer, kind="access", requester_name="Walk-in")
    with pytest.raises(ValidationError) as refused:
        rights.request_verify(actor=officer, request=unlinked, method="ID seen")
    assert "person" in refused.value.message_dict
    refused_request = rights.request_refuse(actor=officer, request=request, reason="identity not proven")
    with pytest.raises(Conflict):
        rights.request_verify(actor=officer, request=refused_request, method="ID seen")


# ------------------------------------------------------------------- each right, executed


def _effect(kind: str, person: Person) -> None:
    """What executing each right must have done to the person."""
    person.refresh_from_db()
    status = PersonPrivacy.objects.filter(person=person).first()
    if kind in ("access", "portability"):
        assert AuditEntry.objects.filter(person_id=person.pk, action="export").exists()
    elif kind == "rectification":
        assert person.family_name == "Corrected"
    elif kind == "erasure":
        assert person.given_name == "" and status.erased_at is not None
        assert not person.contact_points.exists()
    elif kind == "restriction":
        assert status.restricted_at is not None
        decision = gate.decide(person, "email", "newsletter")
        assert not decision.allowed and "restricted" in {r.code for r in decision.reasons}
    elif kind == "objection":
        assert status.objected_at is not None
        assert set(ConsentState.objects.filter(person=person).values_list("status", flat=True)) == {"withdrawn"}


KINDS = ["access", "rectification", "erasure", "restriction", "objection", "portability"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_right_through_the_api(kind, officer_api, make_person, grant):
    # given
    person = make_person(given_name="Ada", emails=["ada@example.com"], country="GB")
    grant(person)
    # when: logged with its received date
    created = officer_api.post("/api/v1/privacy/requests/", {
        "kind": kind, "person": str(person.pk), "channel": "email", "received_on": str(_ago(5)),
        "details": "By email"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["due_on"] == str(rights.statutory_due_on(_ago(5))) and body["status"] == "received"
    url = f"/api/v1/privacy/requests/{body['id']}/"
    # executing before verification is refused
    early = officer_api.post(url + "execute/", {}, format="json")
    assert early.status_code == 409 and early["Content-Type"] == "application/problem+json"
    # verification with no method is a 400 naming the field
    bad = officer_api.post(url + "verify/", {}, format="json")
    assert bad.status_code == 400 and "method" in bad.json()["errors"]
    verified = officer_api.post(url + "verify/", {"method": "reply from registered email"}, format="json")
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    # then: executing does the work and completes the request
    payload = {"changes": {"family_name": "Corrected"}} if kind == "rectification" else {}
    done = officer_api.post(url + "execute/", payload, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "completed" and done.json()["outcome"]
    assert [e["action"] for e in done.json()["events"]] == ["received", "verified", "completed"]
    _effect(kind, person)
    # a completed request takes no more actions
    assert officer_api.post(url + "cancel/", {}, format="json").status_code == 409


def test_api_bad_input_gives_problem_details_with_field_errors(officer_api, make_person):
    person = make_person()
    response = officer_api.post("/api/v1/privacy/requests/", {"kind": "delete-me", "person": str(person.pk),
                                                              "received_on": "yesterday"}, format="json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert {"kind", "received_on"} <= set(response.json()["errors"])
    future = officer_api.post("/api/v1/privacy/requests/", {
        "kind": "access", "person": str(person.pk), "received_on": str(TODAY() + dt.timedelta(days=3))},
        format="json")
    assert future.status_code == 400 and "received_on" in future.json()["errors"]
    nobody = officer_api.post("/api/v1/privacy/requests/", {"kind": "access"}, format="json")
    assert nobody.status_code == 400 and "person" in nobody.json()["errors"]
    created = officer_api.post("/api/v1/privacy/requests/", {"kind": "rectification", "person": str(person.pk)},
                               format="json").json()
    url = f"/api/v1/privacy/requests/{created['id']}/"
    officer_api.post(url + "verify/", {"method": "ID"}, format="json")
    unknown = officer_api.post(url + "execute/", {"changes": {"shoe_size": 44}}, format="json")
    assert unknown.status_code == 400 and "shoe_size" in unknown.json()["errors"]
    assert RightsRequest.objects.get(pk=created["id"]).status == "verified"  # nothing half-done
    assert officer_api.post(url + "teleport/", {}, format="json").status_code == 404


def test_api_queue_flags_overdue_and_extension(officer_api, officer, make_person):
    person = make_person()
    late = rights.request_create(actor=officer, kind="erasure", person=person, received_on=_ago(45))
    fresh = rights.request_create(actor=officer, kind="access", person=person, received_on=_ago(1))
    queue = officer_api.get("/api/v1/privacy/requests/").json()
    assert [r["id"] for r in queue["results"]] == [str(late.pk), str(fresh.pk)]  # soonest due first
    assert [r["overdue"] for r in queue["results"]] == [True, False]
    assert queue["counts"]["overdue"] == 1 and queue["counts"]["open"] == 2
    only = officer_api.get("/api/v1/privacy/requests/?overdue=1").json()["results"]
    assert [r["id"] for r in only] == [str(late.pk)]
    extended = officer_api.post(f"/api/v1/privacy/requests/{fresh.pk}/extend/", {"reason": "complex"},
                                format="json")
    assert extended.json()["due_on"] == str(rights.extended_due_on(_ago(1)))
    again = officer_api.post(f"/api/v1/privacy/requests/{fresh.pk}/extend/", {"reason": "more"}, format="json")
    assert again.status_code == 409


def test_roles_without_rights_permissions_are_refused(make_person):
    from rapport.access.models import Role
    from rapport.core.testing import make_user, token_client

    clerk = make_user("clerk", role=Role.objects.create(key="clerk", name="Clerk",
                                                        permissions={"people.person": ["read"]}))
    client = token_client(clerk)
    assert client.get("/api/v1/privacy/requests/").status_code == 403
    assert client.post("/api/v1/privacy/requests/", {"kind": "access", "requester_name": "X"},
                       format="json").status_code == 403


# ------------------------------------------------------------------------------- the UI


@pytest.mark.parametrize("kind", KINDS)
def test_each_right_through_the_staff_ui(kind, officer_client, make_person, grant):
    person = make_person(given_name="Ada", emails=["ada@example.com"], country="GB")
    grant(person)
    form = officer_client.get(f"/privacy/requests/new/?person={person.pk}&kind={kind}")
    assert form.status_code == 200 and "Log a rights request" in form.content.decode()
    created = officer_client.post("/privacy/requests/new/", {
        "kind": kind, "channel": "post", "received_on": str(_ago(2)), "person": str(person.pk),
        "details": "Letter of 1 Dec"})
    assert created.status_code == 302
    request = RightsRequest.objects.get(person=person, kind=kind)
    assert request.due_on == rights.statutory_due_on(_ago(2)) and request.channel == "post"
    detail = officer_client.get(created["Location"]).content.decode()
    assert "Verify the requester" in detail and request.due_on.strftime("%-d %b %Y") in detail
    # bad input: the form says what is missing
    bad = officer_client.post(f"/privacy/requests/{request.pk}/verify/", {"method": ""})
    assert bad.status_code == 400 and "errorlist" in bad.content.decode()
    officer_client.post(f"/privacy/requests/{request.pk}/verify/", {"method": "ID document seen"})
    if kind == "rectification":  # the staff correct the record on the person's page, then complete
        from rapport.people.services import person_update

        person_update(actor=request.created_by, person=person, changes={"family_name": "Corrected"})
    page = officer_client.get(f"/privacy/requests/{request.pk}/").content.decode()
    assert "Execute" in page and "Identity verified" in page
    done = officer_client.post(f"/privacy/requests/{request.pk}/execute/", {"note": "family name corrected"})
    assert done.status_code == 302
    request.refresh_from_db()
    assert request.status == "completed" and request.outcome
    _effect(kind, person)
    final = officer_client.get(f"/privacy/requests/{request.pk}/").content.decode()
    assert "data-outcome" in final and "Completed" in final


def test_ui_create_form_errors(officer_client, make_person):
    person = make_person()
    future = officer_client.post("/privacy/requests/new/", {
        "kind": "access", "channel": "email", "received_on": str(TODAY() + dt.timedelta(days=1)),
        "person": str(person.pk)})
    assert future.status_code == 400
    assert "cannot be received in the future" in future.content.decode()
    nobody = officer_client.post("/privacy/requests/new/", {"kind": "access", "channel": "email",
                                                            "received_on": str(TODAY())})
    assert nobody.status_code == 400 and "Link the person" in nobody.content.decode()
    assert not RightsRequest.objects.exists()


def test_ui_queue_highlights_overdue(officer_client, officer, make_person):
    person = make_person(given_name="Late", family_name="Lately")
    late = rights.request_create(actor=officer, kind="erasure", person=person, received_on=_ago(40))
    rights.request_create(actor=officer, kind="access", person=person, received_on=_ago(1))
    html = officer_client.get("/privacy/requests/").content.decode()
    assert f'class="warning overdue" data-request="{late.pk}"' in html
    assert html.count('class="warning overdue"') == 1 and "1 overdue" in html
    overdue_only = officer_client.get("/privacy/requests/?overdue=1").content.decode()
    assert overdue_only.count("data-request=") == 1
    detail = officer_client.get(f"/privacy/requests/{late.pk}/").content.decode()
    assert "Overdue" in detail and "can no longer be extended" in detail


def test_ui_link_an_unlinked_request_then_verify(officer_client, officer, make_person):
    person = make_person()
    request = rights.request_create(actor=officer, kind="access", requester_name="Walk-in visitor")
    bad = officer_client.post(f"/privacy/requests/{request.pk}/link/", {"person": "not-a-uuid"})
    assert bad.status_code == 400
    officer_client.post(f"/privacy/requests/{request.pk}/link/", {"person": str(person.pk)})
    request.refresh_from_db()
    assert request.person_id == person.pk


# ------------------------------------------------------------------------------- the CLI


def test_rights_through_the_cli(make_person, grant):
    person = make_person(given_name="Cli", emails=["cli@example.com"], country="GB")
    grant(person)
    out = StringIO()
    call_command("privacy", "request", "create", "--kind", "objection", "--person", str(person.pk),
                 "--received", str(_ago(40)), "--channel", "post", stdout=out)
    request_id = out.getvalue().split()[0]
    listing = StringIO()
    call_command("privacy", "request", "list", stdout=listing)
    assert request_id in listing.getvalue() and "OVERDUE" in listing.getvalue()
    with pytest.raises(CommandError, match="Verify"):
        call_command("privacy", "request", "execute", request_id, stdout=StringIO())
    with pytest.raises(CommandError, match="method"):
        call_command("privacy", "request", "verify", request_id, stdout=StringIO())
    call_command("privacy", "request", "verify", request_id, "--method", "signed letter", stdout=StringIO())
    done = StringIO()
    call_command("privacy", "request", "execute", request_id, stdout=done)
    assert "completed" in done.getvalue() and "Objection recorded" in done.getvalue()
    _effect("objection", person)
    assert AuditEntry.objects.filter(person_id=person.pk, channel="cli").exists()


@pytest.mark.parametrize("args, message", [
    (["create", "--kind", "nonsense", "--name", "X"], "kind"),
    (["create", "--kind", "access"], "person"),
    (["create", "--kind", "access", "--name", "X", "--received", "01/12/2026"], "Not a date"),
    (["verify"], "Give the request id"),
    (["verify", "not-an-id"], "Not an id"),
    (["show", "00000000-0000-0000-0000-000000000000"], "No rights request"),
])
def test_cli_bad_input_exits_with_a_message(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("privacy", "request", *args, stdout=StringIO())


def test_ui_rectification_needs_to_say_what_was_corrected(officer_client, officer, make_person):
    request = rights.request_create(actor=officer, kind="rectification", person=make_person())
    rights.request_verify(actor=officer, request=request, method="ID seen")
    page = officer_client.get(f"/privacy/requests/{request.pk}/").content.decode()
    assert "What was corrected" in page
    missing = officer_client.post(f"/privacy/requests/{request.pk}/execute/", {"note": ""})
    assert missing.status_code == 400 and "errorlist" in missing.content.decode()
    request.refresh_from_db()
    assert request.status == "verified"
    erasure = rights.request_create(actor=officer, kind="erasure", person=make_person())
    rights.request_verify(actor=officer, request=erasure, method="ID seen")
    assert 'name="note"' not in officer_client.get(f"/privacy/requests/{erasure.pk}/").content.decode()


def test_restriction_and_erasure_freeze_changes_through_service_ui_and_api(officer, officer_client, officer_api,
                                                                           make_person):
    from rapport.people.services import (
        ContactPointInput,
        contact_point_add,
        interaction_log,
        person_update,
    )
    from rapport.privacy import services
    from rapport.privacy.errors import PersonErased, ProcessingRestricted

    person = make_person(given_name="Rita", family_name="Stored", emails=["rita@example.com"])
    services.restrict_processing(actor=officer, person=person, reason="accuracy contested")
    # the service refuses, whichever adapter calls it
    with pytest.raises(ProcessingRestricted):
        person_update(actor=officer, person=person, changes={"family_name": "Changed"})
    with pytest.raises(ProcessingRestricted):
        interaction_log(actor=officer, person=person, channel="phone", kind="call", summary="Called")
    # the staff UI says why (no server error); the API answers 409 with a problem
    edit = officer_client.post(f"/people/{person.pk}/edit/", {"given_name": "Rita", "family_name": "Changed",
                                                              "version": person.version})
    assert edit.status_code == 400 and "restricted" in edit.content.decode()
    note = officer_client.post(f"/people/{person.pk}/interactions/", {"channel": "phone", "kind": "call",
                                                                      "summary": "Called", "direction": "",
                                                                      "sentiment": "neutral"})
    assert note.status_code == 400
    api = officer_api.patch(f"/api/v1/people/{person.pk}/", {"family_name": "Changed"}, format="json")
    assert api.status_code == 409 and api.json()["type"].endswith("processing_restricted")
    person.refresh_from_db()
    assert person.family_name == "Stored" and not person.interactions.exists()
    # lifting the restriction lets changes through again
    services.lift_restriction(actor=officer, person=person)
    person_update(actor=officer, person=person, changes={"family_name": "Corrected"})
    # an erased person takes no new data
    from rapport.privacy.erasure import erase_person

    erase_person(actor=officer, person=person)
    with pytest.raises(PersonErased):
        contact_point_add(actor=officer, person=person, data=ContactPointInput(kind="phone", value="+447911123999"))
    added = officer_client.post(f"/people/{person.pk}/contact-points/", {"kind": "phone", "value": "+447911123999"})
    assert added.status_code == 400 and "erased" in added.content.decode()


def test_editing_a_contact_point_cannot_bring_back_a_suppressed_email(officer, make_person):
    from rapport.people.services import contact_point_update
    from rapport.privacy.suppression import Suppressed, suppress

    suppress(emails=["gone@example.com"])
    point = make_person(emails=["here@example.com"]).contact_points.get()
    with pytest.raises(Suppressed):
        contact_point_update(actor=officer, point=point, changes={"value": "Gone@Example.com"})
    point.refresh_from_db()
    assert point.value == "here@example.com"


def test_api_links_a_request_to_a_person_with_if_match(officer_api, officer, make_person):
    person = make_person()
    created = officer_api.post("/api/v1/privacy/requests/", {"kind": "access", "requester_name": "Walk-in",
                                                             "received_on": str(_ago(1))}, format="json")
    url = f"/api/v1/privacy/requests/{created.json()['id']}/"
    etag = officer_api.get(url)["ETag"]
    stale = officer_api.patch(url, {"person": str(person.pk)}, format="json", HTTP_IF_MATCH='"nope"')
    assert stale.status_code == 412
    linked = officer_api.patch(url, {"person": str(person.pk)}, format="json", HTTP_IF_MATCH=etag)
    assert linked.status_code == 200 and linked.json()["person"] == str(person.pk)
    unknown = officer_api.patch(url, {"kind": "erasure"}, format="json")
    assert unknown.status_code == 400 and "kind" in unknown.json()["errors"]
    missing = officer_api.patch(url, {"person": str(uuid.uuid4())}, format="json")
    assert missing.status_code == 404
