"""C5 — access and portability: the export holds every declared field that has data, the consent
history and who accessed the person; as JSON (API, CLI, UI download) and as a readable page."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from io import StringIO

import pytest
from django.core.management import call_command

from rapport.access.models import AuditEntry
from rapport.core.testing import make_user, token_client
from rapport.privacy.datamap import declared_models, rows_of
from rapport.privacy.export import SCHEMA, build_export
from rapport.privacy.tests.histories import EMAIL_WORK, FAMILY, GIVEN, IP, USER_AGENT

pytestmark = pytest.mark.django_db


def _plain(value):
    """What a stored value looks like in JSON (written independently of the exporter)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    return value


def _records(doc) -> dict[str, dict]:
    return {block["model"]: {row["id"]: row["fields"] for row in block["rows"]} for block in doc["records"]}


def test_every_declared_field_with_data_appears_in_the_export(history):
    # when
    doc = build_export(person=history)
    # then: it is JSON, of the documented schema
    json.dumps(doc)
    assert doc["schema"] == SCHEMA and doc["subject"]["person_id"] == str(history.pk)
    records = _records(doc)
    checked: set[str] = set()
    for declaration, model in declared_models():
        for row in rows_of(declaration, model, history):
            exported = records[declaration.model_label][_plain(row.pk)]
            for name in declaration.fields:
                model_field = model._meta.get_field(name)
                if model_field.many_to_many:
                    value = sorted(str(item) for item in getattr(row, name).all())
                    assert sorted(exported[name]) == value
                else:
                    value = _plain(getattr(row, model_field.attname))
                    assert exported[name] == value, (declaration.model_label, name)
                if value not in (None, "", [], {}):
                    checked.add(f"{declaration.model_label}.{name}")
            assert set(exported) == set(declaration.fields)
    # and the history really covered the data map, so this cannot pass on an empty export
    for expected in ("people.Person.given_name", "people.Person.birth_date", "people.ContactPoint.value",
                     "people.Interaction.body", "privacy.ConsentEvent.user_agent", "privacy.ConsentEvent.ip",
                     "privacy.ContactPreference.max_per_week", "privacy.TopicSubscription.topic",
                     "privacy.Touch.channel", "privacy.DecisionOutcome.reasons",
                     "privacy.RightsRequest.requester_contact", "privacy.LegalHold.reason",
                     "access.Attachment.filename", "access.AuditEntry.action", "imports.Import.sample",
                     "imports.ImportedPerson.person_id"):
        assert expected in checked, expected
    # what each field is for travels with it
    definition = doc["field_definitions"]["people.ContactPoint.value"]
    assert definition["category"] == "contact" and definition["lawful_basis"] and definition["retention"]


def test_export_holds_consent_history_preferences_requests_and_who_accessed(history, admin_user):
    doc = build_export(person=history)
    receipts = doc["consent"]["receipts"]
    assert len(receipts) == 2
    form = next(r for r in receipts if r["x-rapport"]["source"] == "form")
    assert form["version"] == "KI-CR-v1.1.0" and form["x-rapport"]["ip"] == IP
    assert form["x-rapport"]["userAgent"] == USER_AGENT and form["piiPrincipalId"] == str(history.pk)
    assert {(s["purpose"], s["channel"], s["status"]) for s in doc["consent"]["state"]} == {
        ("newsletter", "email", "granted"), ("offers", "sms", "withdrawn")}
    assert doc["preferences"]["max_per_week"] == 2 and doc["preferences"]["topics"] == {"newsletter": True}
    assert [r["kind"] for r in doc["rights_requests"]] == ["access"]
    log = doc["access_log"]
    assert log["available"]
    actions = {(e["actor"], e["action"], e["channel"]) for e in log["entries"]}
    assert ("admin", "view", "ui") in actions and ("admin", "export", "ui") in actions  # the access request
    assert ("admin", "create", "import") in actions


def test_export_page_renders_and_is_audited(client, admin_user, history):
    client.force_login(admin_user)
    exports_before = AuditEntry.objects.filter(person_id=history.pk, action="export").count()
    page = client.get(f"/privacy/people/{history.pk}/export/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Everything we hold about", GIVEN, FAMILY, EMAIL_WORK, "Who accessed this data",
                 "Consent", "Why each item is held", "receipt"):
        assert text in html, text
    assert AuditEntry.objects.filter(person_id=history.pk, action="export").count() == exports_before + 1
    download = client.get(f"/privacy/people/{history.pk}/export/?format=json")
    assert download["Content-Disposition"].startswith("attachment;")
    assert json.loads(download.content)["schema"] == SCHEMA


def test_export_api_needs_the_export_scope_and_permission(admin_user, history):
    response = token_client(admin_user).get(f"/api/v1/privacy/people/{history.pk}/export/")
    assert response.status_code == 200
    assert response.json()["subject"]["person_id"] == str(history.pk)
    read_only = token_client(admin_user, scopes=["read"]).get(f"/api/v1/privacy/people/{history.pk}/export/")
    assert read_only.status_code == 403
    from rapport.access.models import Role

    reader = make_user("reader", role=Role.objects.create(key="reader", name="Reader",
                                                          permissions={"people.person": ["read"]}))
    refused = token_client(reader).get(f"/api/v1/privacy/people/{history.pk}/export/")
    assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"
    missing = token_client(admin_user).get(f"/api/v1/privacy/people/{uuid.uuid4()}/export/")
    assert missing.status_code == 404


def test_export_cli_json_and_html(history, tmp_path):
    out = StringIO()
    call_command("privacy", "export", str(history.pk), stdout=out)
    doc = json.loads(out.getvalue())
    assert doc["schema"] == SCHEMA and any(b["model"] == "people.Person" for b in doc["records"])
    target = tmp_path / "export.html"
    call_command("privacy", "export", str(history.pk), "--format", "html", "--output", str(target),
                 stdout=StringIO())
    html = target.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and GIVEN in html
    assert AuditEntry.objects.filter(person_id=history.pk, action="export", channel="cli").count() == 2
