"""U — the staff journey in Chromium: sign in, search by phone in another format, log a call.

Also takes a screenshot of every screen at desktop (1280) and phone (390) widths into
``var/screenshots/`` so a person can look at them.
"""

from __future__ import annotations

import pytest

from rapport.people import services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ada(make_person, make_organisation, staff_user):
    person = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"],
                         phones=["+44 20 7946 0018"], tags=["vip"])
    group = make_organisation(name="Engines Group", domain="engines.example")
    org = make_organisation(name="Analytical Engines", parent=group)
    services.employment_start(actor=staff_user, person=person, organisation=org, title="Analyst")
    services.interaction_log(actor=staff_user, person=person, channel="post", kind="letter",
                             summary="Wrote to praise the engine", sentiment="compliment")
    services.interaction_log(actor=staff_user, person=person, channel="email", kind="email",
                             summary="Complained about a late delivery", sentiment="complaint")
    return person


def test_search_by_phone_open_360_and_log_a_call(signed_in_page, ada, screenshot):
    page = signed_in_page
    # given: signed in on the home page
    screenshot("home-desktop")
    # when: searching the stored "+44 20 7946 0018" typed the national way, via the "/" shortcut
    page.keyboard.press("/")
    page.keyboard.type("020 7946 0018")
    option = page.locator("#search-results [role=option]").first
    option.wait_for()
    assert "Ada Lovelace" in option.inner_text()
    screenshot("search-desktop", full_page=False)
    page.keyboard.press("ArrowDown")
    assert option.get_attribute("aria-selected") == "true"
    page.keyboard.press("Enter")
    # then: the 360° view opens
    page.wait_for_url(f"**/people/{ada.pk}/")
    page.get_by_role("heading", name="Ada Lovelace", level=1).wait_for()
    assert page.locator("#timeline-list .entry").count() == 2
    screenshot("person-desktop")
    # when: logging a call through the quick action
    page.locator(".seg", has_text="Call").click()
    page.fill("#id_summary", "Called about the new engine")
    page.get_by_role("button", name="Add to timeline").click()
    # then: it is at the top of the timeline at once, without a reload
    first = page.locator("#timeline-list .entry").first
    first.get_by_text("Called about the new engine").wait_for()
    assert "Call" in first.inner_text()
    assert page.locator("#timeline-list .entry").count() == 3
    assert page.input_value("#id_summary") == ""  # the form was reset for the next entry
    screenshot("person-after-call-desktop")


def test_screens_at_desktop_and_phone_width(signed_in_page, ada, screenshot):
    page = signed_in_page
    org = ada.employments.get().organisation
    screens = {
        "home": "/", "people": "/people/", "person": f"/people/{ada.pk}/", "person-new": "/people/new/",
        "person-edit": f"/people/{ada.pk}/edit/", "organisations": "/organisations/",
        "organisation": f"/organisations/{org.pk}/", "organisation-new": "/organisations/new/",
    }
    for width, suffix in ((1280, "desktop"), (390, "phone")):
        page.set_viewport_size({"width": width, "height": 860})
        for name, url in screens.items():
            response = page.goto(url)
            assert response.status == 200, url
            screenshot(f"{name}-{suffix}")
    # the phone layout hides the navigation behind the menu button
    nav = page.locator("#sidenav")
    assert not nav.is_visible()
    page.get_by_role("button", name="Menu").click()
    assert nav.is_visible()
    screenshot("nav-open-phone", full_page=False)
    # a form error is shown next to the field
    page.goto("/people/new/")
    page.fill("#id_given_name", "Bad")
    page.fill("#id_email", "not-an-email")
    page.get_by_role("button", name="Create person").click()
    page.locator("#id_email_error").wait_for()
    screenshot("person-new-error-phone")
