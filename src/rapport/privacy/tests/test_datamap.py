"""C1 — the data map: nothing personal goes undeclared; the record of processing comes from it."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import models
from django.test.utils import isolate_apps

from rapport.people.models import Person
from rapport.privacy import datamap
from rapport.privacy.datamap import DATA_MAP, looks_personal, undeclared_personal_data
from rapport.privacy.models import ConsentEvent


def test_every_installed_model_declares_its_personal_data():
    # The guard every later feature runs into: a model with a link to Person, or a field named or
    # typed like personal data, fails here until it is declared in its app's datamap.py.
    problems = undeclared_personal_data()
    assert problems == [], "Undeclared personal data:\n" + "\n".join(problems)


@isolate_apps("rapport.privacy")
def test_the_check_catches_a_person_link_and_look_alike_fields():
    # given: a model a later feature might add, declared nowhere
    class Complaint(models.Model):  # noqa: DJ008 - a throw-away model
        person = models.ForeignKey(Person, on_delete=models.CASCADE)
        contact_email = models.EmailField()
        caller_phone = models.CharField(max_length=30)
        seen_from = models.GenericIPAddressField()
        summary = models.TextField()

        class Meta:
            app_label = "privacy"

    # when
    problems = undeclared_personal_data([Complaint])
    # then: the person link is reported first (nothing else is checked before it is declared)
    assert len(problems) == 1 and "privacy.Complaint" in problems[0] and "people.Person" in problems[0]

    # when: declared with its path but with its fields forgotten
    try:
        datamap.declare_model("privacy.Complaint", person_path="person")
        problems = undeclared_personal_data([Complaint])
        # then: each look-alike field is named, by name or by type; plain text is not
        assert sorted(p.split(":")[0] for p in problems) == [
            "privacy.Complaint.caller_phone", "privacy.Complaint.contact_email", "privacy.Complaint.seen_from"]
        # when: declared (or marked not personal), the check passes
        for name in ("contact_email", "caller_phone"):
            datamap.declare("privacy.Complaint", name, category=datamap.Category.CONTACT,
                            sensitivity=datamap.Sensitivity.MEDIUM, purposes=("service",),
                            lawful_basis=datamap.LawfulBasis.CONTRACT, retention="6 years")
        datamap.declare_not_personal("privacy.Complaint", ["seen_from"], reason="our web server's address")
        assert undeclared_personal_data([Complaint]) == []
        # a declaration of a field that does not exist is reported
        datamap.declare("privacy.Complaint", "fax", category=datamap.Category.CONTACT,
                        sensitivity=datamap.Sensitivity.LOW, purposes=("service",),
                        lawful_basis=datamap.LawfulBasis.CONTRACT, retention="6 years")
        assert undeclared_personal_data([Complaint]) == [
            "privacy.Complaint.fax: declared in the data map but the field does not exist"]
    finally:
        DATA_MAP.pop("privacy.Complaint", None)


@isolate_apps("rapport.privacy")
def test_a_model_hanging_off_a_persons_rows_must_be_declared_too():
    # given: notes on a consent event — no direct link to Person, nothing named like personal data
    class ConsentNote(models.Model):  # noqa: DJ008 - a throw-away model
        event = models.ForeignKey(ConsentEvent, on_delete=models.CASCADE)
        text = models.TextField()

        class Meta:
            app_label = "privacy"

    # then
    [problem] = undeclared_personal_data([ConsentNote])
    assert "privacy.ConsentNote" in problem and "privacy.ConsentEvent" in problem


@pytest.mark.parametrize("name, personal", [
    ("email", True), ("work_email", True), ("mobile", True), ("postcode", True), ("date_of_birth", True),
    ("user_agent", True), ("ip", True), ("requester_name", True), ("surname", True), ("homeaddress", True),
    ("summary", False), ("amount", False), ("status", False), ("created_at", False),
])
def test_look_alike_names(name, personal):
    field = models.CharField(max_length=10)
    field.name = name
    assert (looks_personal(field) is not None) is personal


def test_exemptions_and_not_personal_marks_carry_reasons():
    assert all(e.reason.strip() for e in datamap.EXEMPT.values())
    assert all(reason.strip() for d in DATA_MAP.values() for reason in d.not_personal.values())
    with pytest.raises(ValueError):
        datamap.exempt("privacy.Whatever", reason=" ")


# ------------------------------------------------------------------ record of processing


def _declared_field_names() -> set[str]:
    return {f"{label}.{name}" for label, d in DATA_MAP.items() for name in d.fields}


def _check_record(record: dict) -> None:
    assert record["title"].startswith("Record of processing activities")
    purposes = {a["purpose"]: a for a in record["activities"]}
    assert {"customer_relationship", "marketing", "consent_records", "data_protection"} <= set(purposes)
    listed = {f for a in record["activities"] for f in a["fields"]}
    assert listed == _declared_field_names()  # every declared field is in some activity
    person = next(m for m in record["models"] if m["model"] == "people.Person")
    given = next(f for f in person["fields"] if f["field"] == "given_name")
    assert given["category"] == "identity" and given["lawful_basis"] and given["retention"]
    assert any(e["model"] == "access.User" for e in record["exempt_models"])
    assert purposes["marketing"]["lawful_bases"]


@pytest.mark.django_db
def test_processing_record_api(api_client):
    response = api_client.get("/api/v1/privacy/processing-record")
    assert response.status_code == 200
    _check_record(response.json())


@pytest.mark.django_db
def test_processing_record_api_needs_sign_in(client):
    assert client.get("/api/v1/privacy/processing-record").status_code in (401, 403)


@pytest.mark.django_db
def test_processing_record_page_and_downloads(client, staff_user):
    client.force_login(staff_user)
    page = client.get("/privacy/processing-record/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Record of processing" in html and "people.Person" in html and "given_name" in html
    as_json = client.get("/privacy/processing-record/?format=json")
    _check_record(json.loads(as_json.content))
    as_md = client.get("/privacy/processing-record/?format=md")
    assert as_md["Content-Type"].startswith("text/markdown") and b"## Purpose: marketing" in as_md.content


@pytest.mark.django_db
def test_processing_record_cli_json_and_markdown(tmp_path):
    out = StringIO()
    call_command("privacy", "processing-record", "--format", "json", stdout=out)
    _check_record(json.loads(out.getvalue()))

    target = tmp_path / "record.md"
    call_command("privacy", "processing-record", "--format", "md", "--output", str(target), stdout=StringIO())
    text = target.read_text()
    assert text.startswith("# Record of processing activities")
    assert "| people.Person.given_name | identity |" in text
    assert "## Models holding no customer personal data" in text


@pytest.mark.django_db
def test_processing_record_cli_refuses_bad_input(tmp_path):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("privacy", "processing-record", "--format", "pdf")
    with pytest.raises(CommandError):
        call_command("privacy", "processing-record", "--output", str(tmp_path / "missing" / "x.md"),
                     stdout=StringIO())
