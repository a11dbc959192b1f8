"""S3 — field-level security on every path out and in: API input and output (detail, list,
search filter), UI forms, the export endpoint (CSV and JSON) and the privacy access export.

Marketing has ``notes`` hidden (seed rule); the front desk has income hidden and birth date
read-only. Hidden means the key or column is absent, not blank.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from rapport.access import services
from rapport.access.models import Access
from rapport.core.testing import make_person, token_client
from rapport.people import services as people

SECRET_NOTE = "Prefers letters; husband unwell"


@pytest.fixture
def ada(user_in, admin_user):
    services.sharing_default_set(actor=admin_user, object_type="people.person", access=Access.READ_WRITE)
    rita = user_in("sales-rep", "rita")
    person = make_person(actor=rita, given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    return people.person_update(actor=rita, person=person, changes={
        "income_band": "over_100k", "notes": SECRET_NOTE})


# ------------------------------------------------------------------------------------ API


def test_api_detail_and_list_leave_hidden_keys_out(user_in, ada):
    # given
    desk = token_client(user_in("front-desk", "desk"), ["read"])
    rep = token_client(user_in("sales-rep", "rep"), ["read"])
    detail = reverse("api:person-detail", kwargs={"pk": ada.pk})
    listing = reverse("api:person-list")
    # when
    desk_detail, rep_detail = desk.get(detail).json(), rep.get(detail).json()
    desk_hits = desk.get(listing, {"name": "Lovelace"}).json()["results"]
    # then
    assert rep_detail["income_band"] == "over_100k"
    assert "income_band" not in desk_detail and "birth_date" in desk_detail
    assert desk_hits and all("income_band" not in hit for hit in desk_hits)


def test_api_input_refuses_hidden_and_readonly_fields_with_field_errors(user_in, ada):
    # given
    desk = token_client(user_in("front-desk", "desk"), ["read", "write"])
    url = reverse("api:person-detail", kwargs={"pk": ada.pk})
    # when
    hidden = desk.patch(url, {"income_band": "under_20k"}, format="json")
    readonly = desk.patch(url, {"birth_date": "1990-01-01"}, format="json")
    allowed = desk.patch(url, {"given_name": "Augusta"}, format="json")
    # then
    assert hidden.status_code == 400 and "income_band" in json.dumps(hidden.json())
    assert readonly.status_code == 400 and "birth_date" in json.dumps(readonly.json())
    assert allowed.status_code == 200, allowed.content
    ada.refresh_from_db()
    assert ada.income_band == "over_100k" and ada.birth_date is None and ada.given_name == "Augusta"


# ------------------------------------------------------------------------------ UI forms


def test_ui_edit_form_has_no_hidden_field_and_a_forged_post_changes_nothing(client, user_in, admin_user, roles, ada):
    # given: sales reps may not see notes
    services.field_rules_set(actor=admin_user, role=roles["sales-rep"], model_label="people.Person",
                             levels={"notes": "hidden"})
    client.force_login(user_in("sales-rep", "rep"))
    url = reverse("people:person-edit", kwargs={"pk": ada.pk})
    # when
    page = client.get(url).content.decode()
    client.post(url, {"given_name": "Ada", "family_name": "Lovelace", "notes": "overwritten",
                      "version": ada.version})
    detail = client.get(reverse("people:person-detail", kwargs={"pk": ada.pk})).content.decode()
    # then
    assert 'name="notes"' not in page and SECRET_NOTE not in page
    assert SECRET_NOTE not in detail
    ada.refresh_from_db()
    assert ada.notes == SECRET_NOTE


# -------------------------------------------------------------------------------- exports


def _csv(response) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_export_endpoint_drops_hidden_columns(user_in, ada):
    # given: marketing may export but not see notes; the rep sees them
    marketing = token_client(user_in("marketing", "mark"), ["read", "export"])
    rep = token_client(user_in("sales-rep", "rep"), ["read", "export"])
    url = reverse("api:export-people")
    # when
    marketing_rows, rep_rows = _csv(marketing.get(url, {"format": "csv"})), _csv(rep.get(url, {"format": "csv"}))
    marketing_json = b"".join(marketing.get(url, {"format": "json"}).streaming_content).decode()
    # then
    assert rep_rows[0]["Notes"] == SECRET_NOTE
    assert marketing_rows and "Notes" not in marketing_rows[0]
    assert SECRET_NOTE not in marketing_json and '"notes"' not in marketing_json


def test_roles_without_export_get_403_from_the_export_endpoint_and_page(client, user_in, ada):
    desk = user_in("front-desk", "desk")
    assert token_client(desk, ["read", "export"]).get(reverse("api:export-people"), {"format": "csv"}).status_code == 403
    client.force_login(desk)
    response = client.get(reverse("imports:export-download"), {"what": "people", "format": "csv"})
    assert response.status_code == 403


def test_privacy_access_export_drops_hidden_fields(user_in, ada):
    # given
    marketing = token_client(user_in("marketing", "mark"), ["read", "export"])
    rep = token_client(user_in("sales-rep", "rep"), ["read", "export"])
    url = reverse("api:privacy-export", kwargs={"pk": ada.pk})
    # when
    marketing_doc, rep_doc = marketing.get(url), rep.get(url)
    # then
    assert rep_doc.status_code == 200 and SECRET_NOTE in rep_doc.content.decode()
    assert marketing_doc.status_code == 200 and SECRET_NOTE not in marketing_doc.content.decode()


# -------------------------------------------------------------------------------- search


def test_search_answers_show_no_hidden_field(client, user_in, admin_user, roles, ada):
    services.field_rules_set(actor=admin_user, role=roles["sales-rep"], model_label="people.Person",
                             levels={"notes": "hidden"})
    client.force_login(user_in("sales-rep", "rep"))
    for query in ("Lovelace", "ada@example.com"):
        body = client.get(reverse("people:search"), {"q": query}).content.decode()
        assert "Lovelace" in body and SECRET_NOTE not in body
