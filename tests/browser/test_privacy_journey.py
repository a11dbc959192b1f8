"""C5 in Chromium: staff log an erasure request from the person's page, verify the requester's
identity, execute it, and the 360° view shows the person anonymised. Screenshots of the request
queue, the request detail and the record of processing go to ``var/screenshots/``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from rapport.people import services
from rapport.people.models import Person
from rapport.privacy import rights
from rapport.privacy.models import PersonPrivacy, RightsRequest
from rapport.privacy.tests.conftest import make_officer

# The same shim as the people journey: the project-level static folder (app.css) is found only
# once settings name it.
if not getattr(settings, "STATICFILES_DIRS", None):
    settings.STATICFILES_DIRS = [settings.BASE_DIR / "static"]

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
