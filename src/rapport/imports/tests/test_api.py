"""A3 — the import and export API: upload, configure, preview, run (background job), issues,
error file, undo, mapping templates, streaming exports; errors as problem details."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from rapport.imports.models import Import, ImportMapping
from rapport.imports.tests.conftest import DATA, csv_bytes
from rapport.people.models import Person

# The worker closes its connection between jobs, so the job tests run outside a test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v1/imports/"


def work() -> None:
    call_command("worker", "--batch", "--no-scheduler", "--interval", "0")


def post_file(client, content: bytes, name: str, **fields):
    return client.post(BASE, {"file": SimpleUploadedFile(name, content), **fields}, format="multipart")


def test_upload_preview_run_report_and_undo(api_client):
    # given an Outlook export uploaded
    response = post_file(api_client, (DATA / "outlook_contacts.csv").read_bytes(), "outlook_contacts.csv")
    assert response.status_code == 201, response.content
    imp = response.json()
    assert (imp["format"], imp["encoding"], imp["preset"], imp["total_rows"]) == ("csv", "utf-16", "outlook", 5)
    assert imp["mapping"]["columns"]["E-mail Address"] == {"target": "email", "label": "", "date_format": ""}
    url = f"{BASE}{imp['id']}/"
    assert response["Location"].endswith(url)
    # when previewing (a background job)
    assert api_client.patch(url, {"policy": "overwrite"}).status_code == 200
    response = api_client.post(f"{url}preview/")
    assert response.status_code == 202 and response.json()["status"] == "previewing"
    work()
    preview = api_client.get(url).json()
    # then the preview says what will happen, and nothing was written
    assert preview["status"] == "previewed" and preview["preview"]["counts"]["created"] == 3
    assert Person.objects.count() == 0
    issues = api_client.get(f"{url}issues/?phase=preview").json()
    assert issues == [{"row": 5, "column": "E-mail Address", "kind": "invalid", "phase": "preview",
                       "message": "not-an-email@: There must be something after the @-sign."}]
    # when running it
    assert api_client.post(f"{url}run/").status_code == 202
    work()
    done = api_client.get(url).json()
    assert done["status"] == "completed" and done["counts"]["created"] == 3 and done["progress_percent"] == 100
    assert Person.objects.count() == 3
    # and the error file has the row that was not imported, with its reason
    errors = api_client.get(f"{url}errors.csv")
    rows = list(csv.reader(io.StringIO(b"".join(errors.streaming_content).decode("utf-8-sig"))))
    assert rows[0][-2:] == ["Rapport row", "Rapport problems"]
    assert rows[1][1] == "Broken" and rows[1][-2] == "5" and "@-sign" in rows[1][-1]
    # and undo removes what it created
    undone = api_client.post(f"{url}undo/")
    assert undone.status_code == 200 and undone.json()["status"] == "undone"
    assert Person.objects.count() == 0


def test_bad_file_is_a_problem_with_a_clear_message(api_client):
    response = post_file(api_client, b"", "empty.csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/bad_file") and body["detail"] == "The file is empty."


def test_invalid_mapping_is_a_400_with_field_errors(api_client):
    imp = post_file(api_client, csv_bytes([["Name", "Email"], ["Ada", "ada@example.com"]]), "a.csv").json()
    response = api_client.patch(f"{BASE}{imp['id']}/", {"mapping": {"columns": {"Name": {"target": "shoe"}}}})
    assert response.status_code == 400
    assert response.json()["errors"] == {"columns.Name": ["Unknown field 'shoe'."]}
    response = api_client.patch(f"{BASE}{imp['id']}/", {"colour": "blue"})
    assert response.status_code == 400 and "colour" in response.json()["errors"]


def test_consent_without_provenance_cannot_run(api_client):
    data = csv_bytes([["Name", "Email", "Email opt-in"], ["Ada", "ada@example.com", "yes"]])
    imp = post_file(api_client, data, "consent.csv").json()
    assert imp["brings_consent"]
    response = api_client.post(f"{BASE}{imp['id']}/run/")
    assert response.status_code == 400 and "say where it came from" in response.json()["detail"]


def test_someone_elses_import_is_not_found(api_client, admin_user):
    from rapport.core.testing import make_user, token_client

    imp = post_file(api_client, csv_bytes([["Name"], ["Ada"]]), "a.csv").json()
    other = token_client(make_user("other"))
    assert other.get(f"{BASE}{imp['id']}/").status_code == 404
    assert other.get(BASE).json()["results"] == []


def test_mapping_templates_are_saved_and_applied(api_client):
    created = api_client.post(f"{BASE}mappings/", {"name": "Shop tills", "mapping": {
        "columns": {"Customer": {"target": "full_name"}, "Mail": {"target": "email"}}}})
    assert created.status_code == 201
    assert ImportMapping.objects.get().mapping["columns"]["Mail"]["target"] == "email"
    imp = post_file(api_client, csv_bytes([["Customer", "Mail"], ["Ada Lovelace", "ada@example.com"]]),
                    "till.csv").json()
    applied = api_client.patch(f"{BASE}{imp['id']}/", {"mapping_name": "Shop tills"}).json()
    assert applied["mapping_name"] == "Shop tills" and applied["mapping"]["columns"]["Customer"]["target"] == "full_name"
    assert api_client.post(f"{BASE}mappings/", {"name": "Bad", "mapping": {"columns": {"A": "x"}}}).status_code == 400
    assert api_client.get(f"{BASE}targets/").json()[0]["key"] == "honorific"


def test_export_streams_csv_json_vcard_and_xlsx(api_client, make_person):
    make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"], tags=["vip"])
    make_person(given_name="Alan", family_name="Turing", emails=["alan@example.com"])
    response = api_client.get(f"{BASE}export/people/?format=csv&tag=vip")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="people-')
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "Lovelace" in text and "Turing" not in text
    data = api_client.get(f"{BASE}export/people/?format=json")
    assert {p["family_name"] for p in __import__("json").loads(b"".join(data.streaming_content))} == {
        "Lovelace", "Turing"}
    vcf = api_client.get(f"{BASE}export/people/", HTTP_ACCEPT="text/vcard")
    assert b"BEGIN:VCARD" in b"".join(vcf.streaming_content)
    xlsx = api_client.get(f"{BASE}export/organisations/?format=xlsx")
    assert xlsx.status_code == 200 and b"".join(xlsx.streaming_content)[:2] == b"PK"
    bad = api_client.get(f"{BASE}export/people/?format=csv&salary=high")
    assert bad.status_code == 400 and bad.json()["errors"] == {"salary": ["Unknown filter."]}
    assert api_client.get(f"{BASE}export/people/?format=pdf").status_code == 404


def test_anonymous_requests_are_refused(client):
    assert client.get(BASE).status_code in (401, 403)
    assert client.get(f"{BASE}export/people/?format=csv").status_code in (401, 403)


def test_import_status_reflects_the_task(api_client):
    imp = post_file(api_client, csv_bytes([["Name", "Email"], ["Ada", "ada@example.com"]]), "a.csv").json()
    api_client.post(f"{BASE}{imp['id']}/run/")
    assert Import.objects.get(pk=imp["id"]).status == Import.Status.QUEUED
    assert api_client.post(f"{BASE}{imp['id']}/run/").status_code == 409  # already queued
    work()
    assert Import.objects.get(pk=imp["id"]).status == Import.Status.COMPLETED
