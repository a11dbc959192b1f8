"""I3/I4 in Chromium: the review queue shows a suggested pair with its evidence; merge; the 360°
view shows both timelines; unmerge. Screenshots of each screen go to ``var/screenshots/``.
"""

from __future__ import annotations

import pytest

from rapport.identity.dedupe import run_dedupe
from rapport.identity.models import MergeRecord
from rapport.people import services
from rapport.people.models import Person

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pair(make_person, staff_user):
    older = make_person(given_name="Margaret", family_name="Okonkwo-Reyes", emails=["m.okonkwo@example.com"],
                        phones=["+44 161 496 0750"], country="GB")
    newer = make_person(given_name="Maggie", family_name="Okonkwo-Reyes", emails=["M.Okonkwo@example.com"],
                        phones=["0161 496 0750"], language="en-GB", notes="Prefers email after 6pm")
    services.interaction_log(actor=staff_user, person=older, channel="post", kind="letter",
                             summary="Letter about the spring catalogue")
    services.interaction_log(actor=staff_user, person=newer, channel="phone", kind="call",
                             summary="Called to change her delivery address")
    run_dedupe()
    return older, newer


def test_review_merge_see_both_timelines_and_unmerge(signed_in_page, pair, screenshot):
    page = signed_in_page
    older, newer = pair
    # given: the queue, reached from the navigation
    page.get_by_role("link", name="Duplicates").click()
    page.get_by_role("heading", name="Possible duplicates", level=1).wait_for()
    row = page.locator("[data-suggestion]").first
    assert "Margaret" in row.inner_text() and "Maggie" in row.inner_text()
    assert "Email: exact" in row.inner_text()
    screenshot("identity-queue-desktop")
    # when: reviewing the pair
    row.get_by_role("link", name="Review", exact=True).click()
    page.get_by_role("heading", name="Evidence").wait_for()
    # then: side by side with the differences marked and the evidence listed
    assert page.locator("tr[data-field=given_name][data-differs]").count() == 1
    assert page.locator("tr[data-evidence=email] .level-exact").count() == 1
    assert page.locator("tr[data-evidence=phone] .level-exact").count() == 1
    screenshot("identity-pair-desktop")
    # when: merged, keeping the older record but the newer given name
    # text_content, not inner_text: the header is upper-cased by CSS, and which side is which
    # follows the people's (random) ids
    left_is_older = page.locator("thead th").nth(1).text_content().strip().startswith("Margaret")
    page.check("input[name=survivor][value=%s]" % ("left" if left_is_older else "right"))
    page.check("input[name=pick_given_name][value=%s]" % ("right" if left_is_older else "left"))
    page.fill("#merge-reason", "Same customer, two sign-ups")
    page.locator("[data-merge]").click()
    # then: the 360° view of the survivor shows both timelines and the merge history
    page.wait_for_url(f"**/people/{older.pk}/")
    page.get_by_role("heading", name="Maggie Okonkwo-Reyes", level=1).wait_for()
    timeline = page.locator("#timeline-list").inner_text()
    assert "Letter about the spring catalogue" in timeline
    assert "Called to change her delivery address" in timeline
    assert "Merged with Maggie Okonkwo-Reyes" in timeline
    assert page.locator("[data-merge-record]").count() == 1
    assert not Person.objects.filter(pk=newer.pk).exists()
    screenshot("identity-merged-person-desktop")
    # when: unmerged from the panel (confirming the dialog)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("[data-unmerge]").click()
    # then: two records again, each with its own timeline
    page.locator(".message", has_text="Unmerged").wait_for()
    page.get_by_role("heading", name="Margaret Okonkwo-Reyes", level=1).wait_for()
    timeline = page.locator("#timeline-list").inner_text()
    assert "Letter about the spring catalogue" in timeline
    assert "Called to change her delivery address" not in timeline
    assert MergeRecord.objects.get().status == "unmerged"
    screenshot("identity-unmerged-person-desktop")
    page.goto(f"/people/{newer.pk}/")
    assert "Called to change her delivery address" in page.locator("#timeline-list").inner_text()
    # and: on a phone-sized screen the pair view still reads
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/identity/duplicates/")
    screenshot("identity-queue-phone")
