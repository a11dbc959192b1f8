"""C5 in Chromium: staff log an erasure request from the person's page, verify the requester's
identity, execute it, and the 360° view shows the person anonymised. Screenshots of the request
queue, the request detail and the record of processing go to ``var/screenshots/``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from rapport.people import services
from rapport.people.models import Person
from rapport.privacy import rights
from rapport.privacy.models import PersonPrivacy, RightsRequest
from rapport.privacy.tests.conftest import make_officer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def officer_user(staff_user):
    return make_officer(staff_user)


@pytest.fixture
def imogen(make_person, officer_user):
    person = make_person(given_name="Imogen", family_name="Thistlewood", emails=["imogen.t@example.com"],
                         phones=["+44 161 496 0751"], country="GB")
    services.interaction_log(actor=officer_user, person=person, channel="phone", kind="call",
                             summary="Imogen asked us to delete everything about her")
    # an older, overdue request from someone else, so the queue shows the highlight
    late = make_person(given_name="Oswald", family_name="Overdue", emails=["oswald@example.com"])
    rights.request_create(actor=officer_user, kind="access", person=late,
                          received_on=timezone.localdate() - dt.timedelta(days=40))
    return person


def test_erasure_request_from_log_to_anonymised_person(officer_user, signed_in_page, imogen, screenshot):
    page = signed_in_page
    page.on("dialog", lambda dialog: dialog.accept())  # "Erase this person everywhere?"
    # given: the person's 360° view, with the privacy panel
    page.goto(f"/people/{imogen.pk}/")
    page.get_by_role("heading", name="Imogen Thistlewood").first.wait_for()
    # when: staff log the erasure request received by email two days ago
    page.get_by_role("link", name="Open a rights request").click()
    page.get_by_role("heading", name="Log a rights request").wait_for()
    page.select_option("#id_kind", "erasure")
    page.select_option("#id_channel", "email")
    received = timezone.localdate() - dt.timedelta(days=2)
    page.fill("#id_received_on", received.isoformat())
    page.fill("#id_details", "Email of 29 Nov: please erase all my data")
    page.get_by_role("button", name="Log the request").click()
    # then: the request page shows the statutory due date and asks for identity verification
    page.get_by_role("heading", name="Erasure request").wait_for()
    due = rights.statutory_due_on(received)
    assert due.strftime("%-d %b %Y") in page.locator(".page-head").inner_text()
    assert "Not verified yet" in page.inner_text("main")
    screenshot("privacy-request-detail-received")
    # when: identity verified
    page.fill("#id_method", "Reply from the registered email address")
    page.get_by_role("button", name="Mark identity verified").click()
    page.get_by_role("heading", name="Execute").wait_for()
    assert "Verified" in page.inner_text("main")
    screenshot("privacy-request-detail-verified")
    # the queue lists it, soonest due first, the overdue one highlighted
    page.get_by_role("link", name="Rights requests").first.click()
    page.get_by_role("heading", name="Rights requests", level=1).wait_for()
    rows = page.locator("tr[data-request]")
    assert rows.count() == 2
    assert "Overdue" in rows.first.inner_text() and "warning" in rows.first.get_attribute("class")
    assert "Imogen Thistlewood" in rows.nth(1).inner_text()
    screenshot("privacy-request-queue")
    # when: executed
    rows.nth(1).get_by_role("link", name="Erasure").click()
    page.get_by_role("button", name="Erase now").click()
    page.locator("[data-outcome]").wait_for()
    assert "Erased" in page.locator("[data-outcome]").inner_text()
    assert "Completed" in page.locator("[data-status]").inner_text()
    screenshot("privacy-request-detail-completed")
    # then: the 360° view shows the person anonymised
    page.goto(f"/people/{imogen.pk}/")
    page.locator("[data-privacy-status=erased]").wait_for()
    main = page.inner_text("main")
    assert "Imogen" not in main and "Thistlewood" not in main and "imogen.t@example.com" not in main
    assert "(no name)" in main
    screenshot("privacy-person-erased")
    request = RightsRequest.objects.get(kind="erasure")
    assert request.status == "completed" and PersonPrivacy.objects.get(person=imogen).erased_at
    assert Person.objects.get(pk=imogen.pk).given_name == ""


def test_processing_record_page(officer_user, signed_in_page, screenshot):
    page = signed_in_page
    page.get_by_role("link", name="Processing record").first.click()
    page.get_by_role("heading", name="Record of processing activities", exact=False).first.wait_for()
    text = page.inner_text("main")
    assert "marketing" in text and "people.Person" in text
    screenshot("privacy-processing-record-top", full_page=False)
    screenshot("privacy-processing-record")


def test_other_privacy_screens(officer_user, signed_in_page, make_person, screenshot):
    """Consent, preferences, export, suppression and retention screens, each looked at."""
    import importlib

    from rapport.privacy import services as privacy
    from rapport.privacy.models import ConsentBasis, ConsentSource
    from rapport.privacy.suppression import import_list

    page = signed_in_page
    # Browser tests flush the database between tests, data migrations included: put the defaults back.
    defaults = importlib.import_module("rapport.privacy.migrations.0002_default_retention_policies")
    from django.apps import apps as django_apps

    defaults.create(django_apps, None)
    person = make_person(given_name="Priya", family_name="Consent", emails=["priya@example.com"],
                         phones=["+44 161 496 0752"], country="GB")
    privacy.record_consent(person=person, purpose="newsletter", channel="email", granted=True,
                           lawful_basis=ConsentBasis.CONSENT, source=ConsentSource.FORM, ip="203.0.113.5",
                           user_agent="Firefox/140", double_opt_in=False)
    import_list(name="TPS November", kind="tps", screened_on=timezone.localdate() - dt.timedelta(days=35),
                values=["+441614960752"])
    page.goto(f"/people/{person.pk}/")
    page.get_by_text("May we contact them?").click()
    page.select_option("#id_channel", "phone")
    page.select_option("#id_purpose", "sales_outreach")
    page.get_by_role("button", name="Ask the gate").click()
    page.locator("#gate-decision").wait_for()
    assert "dnc_list" in page.inner_text("#gate-decision")
    screenshot("privacy-person-panel")
    for path, heading, name in (
            (f"/privacy/people/{person.pk}/consent/", "Record consent", "privacy-consent-form"),
            (f"/privacy/people/{person.pk}/consents/", None, "privacy-consent-history"),
            (f"/privacy/people/{person.pk}/preferences/", None, "privacy-preferences-form"),
            (f"/privacy/people/{person.pk}/export/", "Everything we hold about", "privacy-export"),
            (f"/privacy/people/{person.pk}/export/", "Everything we hold about", "privacy-export-top"),
            ("/privacy/suppression/", "Suppression lists", "privacy-suppression"),
            ("/privacy/retention/", "Retention", "privacy-retention"),
            ("/privacy/security-notices/", None, "privacy-security-notices")):
        response = page.goto(path)
        assert response.status == 200, path
        if heading:
            page.get_by_role("heading", name=heading, exact=False).first.wait_for()
        screenshot(name, full_page=not name.endswith("-top"))
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{path} overflows"
    page.goto("/privacy/suppression/")
    assert "35 days ago (more than 28)" in page.inner_text("main")
    assert page.input_value("#id_screened_on") == timezone.localdate().isoformat()  # today, pre-filled
