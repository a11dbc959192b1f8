"""A3 — the staff wizard with the test client: upload, map, preview, run, report, error file,
undo, and the export page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from rapport.core.testing import PASSWORD
from rapport.imports.models import Import, ImportMapping
from rapport.imports.tests.conftest import DATA, csv_bytes
from rapport.people.models import Person

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser_client(client, staff_user):
    assert client.login(username=staff_user.username, password=PASSWORD)
    return client


def work() -> None:
    call_command("worker", "--batch", "--no-scheduler", "--interval", "0")


def test_the_whole_wizard(browser_client):
    client = browser_client
    # step 1: upload
    page = client.get(reverse("imports:index"))
    assert page.status_code == 200 and b"Upload a file" in page.content
    response = client.post(reverse("imports:index"), {"file": SimpleUploadedFile(
        "outlook_contacts.csv", (DATA / "outlook_contacts.csv").read_bytes())})
    imp = Import.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("imports:mapping", args=[imp.pk])
    # step 2: the mapping is suggested (Outlook recognised); change one column, save it as a template
    page = client.get(response["Location"])
    assert b"recognised as an Outlook export" in page.content
    form = page.context["form"]
    data = {name: field.initial for name, field in form.fields.items() if field.initial is not None}
    data.update({"policy": "fill_blanks", "split": ";", "save_as": "Outlook (office)", "consent_purpose": "newsletter"})
    notes_index = imp.headers.index("Notes")
    data[f"col_{notes_index}_target"] = ""  # do not import the notes
    response = client.post(reverse("imports:mapping", args=[imp.pk]), data)
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    assert ImportMapping.objects.filter(name="Outlook (office)").exists()
    # step 3: the preview runs in the background; the page polls its progress
    detail = reverse("imports:detail", args=[imp.pk])
    assert response["Location"] == detail
    page = client.get(detail)
    assert b"Previewing" in page.content and b'hx-trigger="every 1s"' in page.content
    work()
    progress = client.get(reverse("imports:progress", args=[imp.pk]), HTTP_HX_REQUEST="true")
    assert progress["HX-Refresh"] == "true"
    page = client.get(detail)
    assert b"What the import will do" in page.content and b"Run import" in page.content
    assert b"not-an-email@" in page.content
    assert Person.objects.count() == 0
    # step 4: run, report, error file, undo
    response = client.post(reverse("imports:run", args=[imp.pk]))
    assert response.status_code == 302
    work()
    page = client.get(detail)
    assert b"Report" in page.content and b"Download error file" in page.content
    assert page.context["counts"]["created"] == 3
    assert Person.objects.get(family_name="Ashworth").notes == ""
    errors = client.get(reverse("imports:errors", args=[imp.pk]))
    assert b"Broken" in b"".join(errors.streaming_content)
    client.post(reverse("imports:undo", args=[imp.pk]))
    assert Person.objects.count() == 0
    assert b"was undone" in client.get(detail).content


def test_a_bad_upload_shows_the_problem_on_the_form(browser_client):
    response = browser_client.post(reverse("imports:index"), {"file": SimpleUploadedFile("x.csv", b"Name,Email\r\n")})
    assert response.status_code == 400
    assert b"header row but no data rows" in response.content


def test_consent_columns_need_provenance_before_preview(browser_client):
    browser_client.post(reverse("imports:index"), {"file": SimpleUploadedFile(
        "c.csv", csv_bytes([["Name", "Email", "Newsletter opt-in"], ["Ada", "ada@example.com", "yes"]]))})
    imp = Import.objects.get()
    page = browser_client.get(reverse("imports:mapping", args=[imp.pk]))
    assert b"This mapping brings marketing permission" in page.content
    data = {name: field.initial for name, field in page.context["form"].fields.items() if field.initial is not None}
    response = browser_client.post(reverse("imports:mapping", args=[imp.pk]), data)
    assert response.status_code == 400 and b"say where it came from" in response.content


def test_export_page_downloads_what_the_list_shows(browser_client, make_person):
    make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"], tags=["vip"])
    make_person(given_name="Alan", family_name="Turing", emails=["alan@example.com"])
    assert browser_client.get(reverse("imports:export")).status_code == 200
    response = browser_client.get(reverse("imports:export-download"),
                                  {"what": "people", "format": "csv", "tag": "vip"})
    content = b"".join(response.streaming_content)
    assert response["Content-Disposition"].startswith("attachment") and b"Lovelace" in content
    assert b"Turing" not in content
    bad = browser_client.get(reverse("imports:export-download"), {"what": "people", "format": "pdf"})
    assert bad.status_code == 400


def test_nav_has_import_and_export(browser_client):
    page = browser_client.get(reverse("imports:index"))
    assert b'href="/imports/"' in page.content and b'href="/imports/export/"' in page.content


def test_anonymous_users_are_sent_to_sign_in(client):
    response = client.get(reverse("imports:index"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_json_file_needs_no_mapping_and_previews(browser_client):
    people = '[{"given_name": "Ada", "family_name": "Lovelace", "contact_points": [{"kind": "email", ' \
             '"value": "ada@example.com", "label": "work", "primary": true}], "tags": ["vip"]}]'
    browser_client.post(reverse("imports:index"), {"file": SimpleUploadedFile("people.json", people.encode())})
    imp = Import.objects.get()
    assert (imp.format, imp.total_rows, imp.premapped) == ("json", 1, True)
    page = browser_client.get(reverse("imports:mapping", args=[imp.pk]))
    assert b"JSON fields" in page.content and b"col_0_target" not in page.content
    data = {name: field.initial for name, field in page.context["form"].fields.items() if field.initial is not None}
    response = browser_client.post(reverse("imports:mapping", args=[imp.pk]), data)
    assert response.status_code == 302
    work()
    page = browser_client.get(reverse("imports:detail", args=[imp.pk]))
    assert page.context["counts"]["created"] == 1 and Person.objects.count() == 0
