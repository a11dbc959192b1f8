"""C2/C3/C4/C7/C8 through the adapters: the staff screens and the API for consent, preferences,
the gate, double opt-in confirmation, notices and security notices — including bad input."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core import mail

from rapport.privacy import gate
from rapport.privacy.models import ConsentEvent, ConsentState, ContactPreference, SecurityNotice

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(make_person):
    return make_person(given_name="Ann", family_name="Able", emails=["ann@example.com"], phones=["+447911123456"],
                       country="GB", timezone_name="Europe/London")


# -------------------------------------------------------------------------------- consent


def test_consent_form_with_double_opt_in_then_the_confirmation_link(officer_client, ann, client,
                                                                    django_capture_on_commit_callbacks):
    page = officer_client.get(f"/privacy/people/{ann.pk}/consent/")
    assert page.status_code == 200 and "Record consent" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = officer_client.post(f"/privacy/people/{ann.pk}/consent/", {
            "action": "grant", "purpose": "newsletter", "channel": "email", "lawful_basis": "consent",
            "double_opt_in": "on", "how": "signed up at the counter"})
    assert response.status_code == 302
    event = ConsentEvent.objects.get(person=ann)
    assert event.pending and ConsentState.objects.get(person=ann).status == "pending"
    # the confirmation job was queued; when it runs the mail goes out through the outbound module
    from django_tasks_db.models import DBTaskResult

    from rapport.privacy.tasks import send_consent_confirmation_task

    job = DBTaskResult.objects.get(task_path__endswith="send_consent_confirmation_task")
    assert job.args_kwargs["args"] == [str(event.pk)]  # an id, never an address
    assert send_consent_confirmation_task.call(str(event.pk)) is True
    [message] = mail.outbox
    link = re.search(r"https?://\S+/privacy/confirm/(\S+)/", message.body)
    assert message.to == ["ann@example.com"] and link
    # the link shows a button (mail scanners follow links); pressing it confirms
    anonymous = client.__class__()
    shown = anonymous.get(f"/privacy/confirm/{link.group(1)}/")
    assert shown.status_code == 200 and "Yes, confirm" in shown.content.decode()
    assert ConsentState.objects.get(person=ann).status == "pending"
    done = anonymous.post(f"/privacy/confirm/{link.group(1)}/")
    assert done.status_code == 200 and "Thank you" in done.content.decode()
    assert ConsentState.objects.get(person=ann).status == "granted"
    forged = anonymous.post("/privacy/confirm/not-a-token/")
    assert forged.status_code == 400 and "cannot be used" in forged.content.decode()
    # the history page and the receipt download
    history = officer_client.get(f"/privacy/people/{ann.pk}/consents/").content.decode()
    assert "newsletter" in history.lower()
    # every gate decision about them is listed there too, with why
    gate.decide(ann, "email", "events", context="campaign 7")
    history = officer_client.get(f"/privacy/people/{ann.pk}/consents/").content.decode()
    assert "events / email" in history and "Denied" in history and "campaign 7" in history
    assert "No consent to “Events and invitations” by email" in history
    receipt = officer_client.get(f"/privacy/people/{ann.pk}/receipts/{event.receipt_id}/")
    assert receipt["Content-Disposition"].startswith("attachment;") and receipt.json()["version"] == "KI-CR-v1.1.0"


def test_consent_form_errors(officer_client, ann):
    soft = officer_client.post(f"/privacy/people/{ann.pk}/consent/", {
        "action": "grant", "purpose": "events", "channel": "email", "lawful_basis": "soft_opt_in"})
    assert soft.status_code == 400 and "similar products" in soft.content.decode()
    no_refusal = officer_client.post(f"/privacy/people/{ann.pk}/consent/", {
        "action": "grant", "purpose": "offers", "channel": "sms", "lawful_basis": "soft_opt_in"})
    assert "simple way to refuse" in no_refusal.content.decode()
    missing = officer_client.post(f"/privacy/people/{ann.pk}/consent/", {"action": "grant"})
    assert "errorlist" in missing.content.decode()
    assert not ConsentEvent.objects.exists()


def test_consent_api_records_lists_and_refuses_bad_input(officer_api, ann):
    url = f"/api/v1/privacy/people/{ann.pk}/consents/"
    created = officer_api.post(url, {"purpose": "offers", "channel": "sms", "granted": True,
                                     "lawful_basis": "soft_opt_in", "source": "form", "ip": "198.51.100.4",
                                     "user_agent": "Mozilla/5.0", "proof": {"refusal_offered": True}},
                               format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["ip"] == "198.51.100.4" and body["receipt_id"] and body["pending"] is False
    listed = officer_api.get(url).json()
    assert [e["purpose"] for e in listed["results"]] == ["offers"]
    state = officer_api.get(f"/api/v1/privacy/people/{ann.pk}/consent-state/").json()
    assert state["jurisdiction"] == "UK GDPR + PECR" and state["states"][0]["status"] == "granted"
    receipt = officer_api.get(f"/api/v1/privacy/consent-receipts/{body['receipt_id']}/").json()
    assert receipt["x-rapport"]["ip"] == "198.51.100.4"
    for bad, field in (({"purpose": "spam"}, "purpose"), ({"channel": "fax"}, "channel"),
                       ({"ip": "999.1.1.1"}, "ip"), ({"purpose": "transactional"}, "purpose"),
                       ({"lawful_basis": "soft_opt_in", "purpose": "offers"}, "proof")):
        response = officer_api.post(url, {"purpose": "newsletter", "channel": "email", "granted": True,
                                          **bad}, format="json")
        assert response.status_code == 400 and field in response.json()["errors"], (bad, response.json())
    assert officer_api.post(url, {"granted": True}, format="json").status_code == 400
    assert officer_api.get(f"/api/v1/privacy/people/{uuid.uuid4()}/consents/").status_code == 404
    assert ConsentEvent.objects.count() == 1


# ---------------------------------------------------------------------------- preferences


def test_preferences_form_and_api(officer_client, officer_api, ann):
    page = officer_client.get(f"/privacy/people/{ann.pk}/preferences/")
    assert page.status_code == 200
    saved = officer_client.post(f"/privacy/people/{ann.pk}/preferences/", {
        "preferred_channel": "email", "email_allowed": "on", "post_allowed": "on", "max_per_week": "2",
        "quiet_start": "20:00", "quiet_end": "09:00", "topic_newsletter": "on"})
    assert saved.status_code == 302
    preference = ContactPreference.objects.get(person=ann)
    assert (preference.phone_allowed, preference.max_per_week) == (False, 2)
    bad = officer_client.post(f"/privacy/people/{ann.pk}/preferences/", {
        "preferred_channel": "sms", "email_allowed": "on", "quiet_start": "20:00"})
    assert bad.status_code == 400 and "cannot also be refused" in bad.content.decode()
    assert ContactPreference.objects.get(person=ann).preferred_channel == "email"  # nothing half-saved
    api = officer_api.get(f"/api/v1/privacy/people/{ann.pk}/preferences/").json()
    assert api["preferred_channel"] == "email" and api["quiet_start"] == "20:00" and api["topics"]["newsletter"]
    patched = officer_api.patch(f"/api/v1/privacy/people/{ann.pk}/preferences/", {"phone_allowed": True,
                                                                                  "topics": {"events": False}},
                                format="json")
    assert patched.status_code == 200 and patched.json()["phone_allowed"] and patched["ETag"]
    stale = officer_api.patch(f"/api/v1/privacy/people/{ann.pk}/preferences/", {"sms_allowed": False},
                              format="json", HTTP_IF_MATCH='"stale"')
    assert stale.status_code == 412
    for bad_body, field in (({"quiet_start": "20:00", "quiet_end": None}, "quiet_end"),
                            ({"max_per_week": 99}, "max_per_week"), ({"topics": {"spam": True}}, "topics"),
                            ({"shoe_size": 3}, "shoe_size")):
        response = officer_api.patch(f"/api/v1/privacy/people/{ann.pk}/preferences/", bad_body, format="json")
        assert response.status_code == 400 and field in response.json()["errors"], (bad_body, response.json())


# ------------------------------------------------------------------------------- the gate


def test_gate_from_the_person_view_and_the_api(officer_client, officer_api, ann, make_person):
    fragment = officer_client.get(f"/privacy/people/{ann.pk}/check/?channel=email&purpose=newsletter")
    html = fragment.content.decode()
    assert fragment.status_code == 200 and "Not allowed" in html and "no_consent" in html
    assert officer_client.get(f"/privacy/people/{ann.pk}/check/?channel=fax").status_code == 400
    single = officer_api.post("/api/v1/privacy/decide/", {"person": str(ann.pk), "channel": "email",
                                                          "purpose": "transactional"}, format="json").json()
    assert single == {"person": str(ann.pk), "allowed": True, "reasons": []}
    other = make_person(given_name="Bo", country="US", emails=["bo@example.com"])
    missing = uuid.uuid4()
    batch = officer_api.post("/api/v1/privacy/decide/batch/", {
        "people": [str(ann.pk), str(other.pk), str(missing)], "channel": "email", "purpose": "newsletter"},
        format="json").json()
    assert [(r["person"], r["allowed"]) for r in batch["results"]] == [(str(ann.pk), False), (str(other.pk), True)]
    assert batch["not_found"] == [str(missing)] and (batch["allowed"], batch["denied"]) == (1, 1)
    bad = officer_api.post("/api/v1/privacy/decide/", {"person": "x", "channel": "fax", "purpose": "spam"},
                           format="json")
    assert bad.status_code == 400 and {"person", "channel", "purpose"} <= set(bad.json()["errors"])
    empty = officer_api.post("/api/v1/privacy/decide/batch/", {"people": [], "channel": "email",
                                                               "purpose": "newsletter"}, format="json")
    assert empty.status_code == 400 and "people" in empty.json()["errors"]


def test_decide_cli(ann):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("privacy", "decide", str(ann.pk), "--channel", "email", "--purpose", "newsletter", stdout=out)
    assert out.getvalue().startswith("denied") and "no_consent" in out.getvalue()
    with pytest.raises(CommandError, match="Unknown purpose"):
        call_command("privacy", "decide", str(ann.pk), "--channel", "email", "--purpose", "spam")


# ---------------------------------------------------------------------- notices (C7, C8)


def test_notices_api_publishes_versions(officer_api, api_client):
    first = officer_api.post("/api/v1/privacy/notices/", {"key": "signup", "title": "Sign-up notice",
                                                          "text": "We send news.", "purposes": ["newsletter"]},
                             format="json")
    second = officer_api.post("/api/v1/privacy/notices/", {"key": "signup", "title": "Sign-up notice",
                                                           "text": "We send news monthly."}, format="json")
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    listed = api_client.get("/api/v1/privacy/notices/").json()  # readable by every signed-in user
    assert [v["text"] for v in listed] == ["We send news monthly.", "We send news."]
    bad = officer_api.post("/api/v1/privacy/notices/", {"key": "x", "title": "X", "text": " ",
                                                        "purposes": ["spam"]}, format="json")
    assert bad.status_code == 400


def test_security_notice_page_and_api(officer_client, officer_api, ann, make_person):
    page = officer_client.get("/privacy/security-notices/")
    assert page.status_code == 200
    unknown = officer_client.post("/privacy/security-notices/", {"subject": "Breach", "body": "Details",
                                                                "people": "not-an-id", "channel": "email"})
    assert unknown.status_code == 200 and "Not a person id" in unknown.content.decode()
    sent = officer_client.post("/privacy/security-notices/", {"subject": "Breach", "body": "We lost a laptop",
                                                             "people": str(ann.pk), "channel": "email"})
    assert sent.status_code == 302 and [m.to for m in mail.outbox] == [["ann@example.com"]]
    nobody = make_person(given_name="Nobody")
    api = officer_api.post("/api/v1/privacy/security-notices/", {
        "subject": "Threat", "body": "Reset your password", "people": [str(ann.pk), str(nobody.pk)],
        "channel": "sms"}, format="json")
    assert api.status_code == 201 and (api.json()["sent_count"], api.json()["skipped"]) == (1, {"no_contact_point": 1})
    assert SecurityNotice.objects.count() == 2
    bad = officer_api.post("/api/v1/privacy/security-notices/", {"subject": "", "people": []}, format="json")
    assert bad.status_code == 400 and {"subject", "body", "people"} <= set(bad.json()["errors"])
