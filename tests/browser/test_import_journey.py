"""A3 in Chromium: the import wizard end to end — upload, map (suggested, one column changed),
preview (created / updated with the match evidence / merged within the file / invalid with row,
column and message), run, the report, the error file downloaded; screenshots of each step in
``var/screenshots/``.

The preview and the run are background jobs: the test runs the worker in batch mode in this
process (as the view tests do) while the page polls its progress fragment and reloads itself.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command

from rapport.imports.models import Import
from rapport.people.models import ContactPoint, Person

pytestmark = pytest.mark.django_db(transaction=True)

FILE = (
    "First name,Last name,E-mail,Mobile,Company,Notes\r\n"
    "Ada,Lovelace,ada@example.com,07911 123456,Analytical Engines,Met at the RI\r\n"
    "Grace,Hopper,GRACE.HOPPER@Example.com,+44 7911 123 457,Navy,Existing customer\r\n"
    "Ada,Lovelace,a.lovelace@example.org,+447911123456,,Same Ada: same mobile\r\n"
    "Broken,Row,not-an-email@,,,\r\n"
    "Alan,Turing,alan@example.com,,Bletchley,\r\n"
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def work() -> None:
    call_command("worker", "--batch", "--no-scheduler", "--interval", "0")


def test_upload_map_preview_run_report_and_error_file(signed_in_page, make_person, screenshot, tmp_path):
    page = signed_in_page
    grace = make_person(given_name="Grace", family_name="Hopper", emails=["grace.hopper@example.com"])
    upload = tmp_path / "contacts.csv"
    upload.write_text(FILE, encoding="utf-8")

    # step 1: upload, from the navigation
    page.get_by_role("link", name="Import").first.click()
    page.get_by_role("heading", name="Import people").wait_for()
    page.set_input_files("input[type=file]", str(upload))
    screenshot("import-1-upload")
    page.get_by_role("button", name="Upload").click()

    # step 2: the mapping is suggested from the headers; do not import the notes
    page.wait_for_url("**/map/")
    imp = Import.objects.get()
    notes = imp.headers.index("Notes")
    assert page.locator(f"select[name=col_{imp.headers.index('E-mail')}_target]").input_value() == "email"
    assert page.locator(f"select[name=col_{imp.headers.index('Mobile')}_target]").input_value() == "phone"
    page.select_option(f"select[name=col_{notes}_target]", "")
    screenshot("import-2-mapping")
    page.get_by_role("button", name="Preview").click()

    # step 3: the dry run runs in the background; the page reloads itself when it is done
    page.wait_for_url(f"**/imports/{imp.pk}/")
    work()
    page.get_by_role("heading", name="What the import will do").wait_for()
    screenshot("import-3-preview")
    assert page.locator(".total.outcome-created dd").inner_text() == "2"
    assert page.locator(".total.outcome-updated dd").inner_text() == "1"
    assert page.locator(".total.outcome-merged dd").inner_text() == "1"
    assert page.locator(".total.outcome-invalid dd").inner_text() == "1"
    grace_row = page.locator("tr.outcome-updated")
    assert "matched on email grace.hopper@example.com" in grace_row.inner_text()
    assert "changes: +job, +phone" in grace_row.inner_text()
    assert "identity resolution: 1.00" in grace_row.inner_text()
    merged_row = page.locator("tr.outcome-merged")
    assert merged_row.locator("td.num").inner_text() == "4"
    assert "same person as row 2 on phone +447911123456" in merged_row.inner_text()
    assert "adds: +email" in merged_row.inner_text()
    invalid = page.locator(".issues-table tbody tr")
    assert invalid.count() == 1
    cells = [invalid.locator("td").nth(i).inner_text() for i in range(4)]
    assert cells[0] == "5" and cells[1] == "E-mail" and "not-an-email@" in cells[3]
    assert Person.objects.count() == 1  # a dry run writes nothing
    screenshot("import-3-preview")

    # step 4: run it; the report replaces the preview
    page.get_by_role("button", name="Run import").click()
    work()
    page.get_by_role("heading", name="Report").wait_for()
    assert page.locator(".total.outcome-created dd").inner_text() == "2"
    assert page.locator(".total.outcome-updated dd").inner_text() == "1"
    assert page.locator(".total.outcome-merged dd").inner_text() == "1"
    screenshot("import-4-report")
    assert Person.objects.count() == 3
    assert ContactPoint.objects.filter(person=grace, kind="phone", normalised="+447911123457").exists()
    ada = Person.objects.get(family_name="Lovelace")
    assert set(ada.contact_points.values_list("normalised", flat=True)) == {
        "ada@example.com", "a.lovelace@example.org", "+447911123456"}
    assert ada.notes == ""

    # and the error file is the invalid row, with the reason
    with page.expect_download() as download:
        page.get_by_role("link", name="Download error file").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][-2:] == ["Rapport row", "Rapport problems"]
    assert len(rows) == 2 and rows[1][0] == "Broken" and rows[1][-2] == "5" and "@" in rows[1][-1]
