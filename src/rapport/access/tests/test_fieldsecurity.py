"""S3 — field-level security across services, UI, history, search and (when present) the API."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from rapport.access import services
from rapport.access.fieldsecurity import field_level, hidden_fields, readonly_fields, strip_hidden
from rapport.access.selectors import field_history
from rapport.core.testing import make_person, token_client
from rapport.people import services as people


@pytest.fixture
def rich_person(user_in):
    rita = user_in("sales-rep", "rita")
    person = make_person(actor=rita, given_name="Ada", family_name="Lovelace")
    return people.person_update(actor=rita, person=person, changes={
        "income_band": "over_100k", "notes": "Prefers letters"})


def test_seeded_front_desk_rules(user_in):
    desk = user_in("front-desk", "desk")
    assert {"income_band", "payment_history"} <= hidden_fields(desk, "people.Person")
    assert "birth_date" in readonly_fields(desk, "people.Person")
    assert field_level(desk, "people.Person", "given_name") == "write"
    assert strip_hidden(desk, "people.Person", {"given_name": "A", "income_band": "x"}) == {"given_name": "A"}


def test_administrators_have_no_hidden_fields(admin_user):
    assert hidden_fields(admin_user, "people.Person") == frozenset()


def test_service_refuses_writes_to_hidden_and_readonly_fields(user_in, rich_person):
    desk = user_in("front-desk", "desk")
    for field, value in (("income_band", "under_20k"), ("birth_date", "2000-01-01")):
        with pytest.raises(ValidationError) as err:
            people.person_update(actor=desk, person=rich_person, changes={field: value})
        assert field in err.value.message_dict


def test_settings_change_takes_effect_and_is_audited(admin_user, user_in, roles):
    from rapport.access.models import AuditEntry

    rep = user_in("sales-rep", "rep")
    services.field_rules_set(actor=admin_user, role=roles["sales-rep"], model_label="people.Person",
                             levels={"notes": "hidden", "country": "read"})
    assert hidden_fields(rep, "people.Person") == {"notes"} and readonly_fields(rep, "people.Person") == {"country"}
    services.field_rules_set(actor=admin_user, role=roles["sales-rep"], model_label="people.Person",
                             levels={"notes": "write"})
    assert hidden_fields(rep, "people.Person") == frozenset()
    assert AuditEntry.objects.filter(action="permission_change", object_type="access.fieldrule").count() == 2


def test_ui_person_view_leaves_hidden_fields_out(client, user_in, rich_person):
    # given
    desk = user_in("front-desk", "desk")
    rep = user_in("sales-rep", "rep")
    url = reverse("people:person-detail", kwargs={"pk": rich_person.pk})
    # when
    client.force_login(desk)
    desk_page = client.get(url).content.decode()
    client.force_login(rep)
    rep_page = client.get(url).content.decode()
    # then
    assert "Over 100,000" in rep_page and "Income band" in rep_page
    assert "Over 100,000" not in desk_page and "Income band" not in desk_page


def test_ui_demographics_form_drops_hidden_and_freezes_readonly(client, user_in, rich_person, admin_user):
    desk = user_in("front-desk", "desk")
    services.sharing_default_set(actor=admin_user, object_type="people.person", access="read_write")
    client.force_login(desk)
    page = client.get(reverse("access:demographics", kwargs={"pk": rich_person.pk})).content.decode()
    assert 'name="income_band"' not in page
    assert 'name="birth_date"' in page and "disabled" in page.split('name="birth_date"')[1].split(">")[0]
    # a forged POST of the hidden field changes nothing
    client.post(reverse("access:demographics", kwargs={"pk": rich_person.pk}),
                {"income_band": "under_20k", "gender": "female", "version": rich_person.version})
    rich_person.refresh_from_db()
    assert rich_person.income_band == "over_100k" and rich_person.gender == "female"


def test_history_leaves_hidden_fields_out(user_in, rich_person):
    desk, rep = user_in("front-desk", "desk"), user_in("sales-rep", "rep")
    rep_fields = {name for entry in field_history(user=rep, record=rich_person) for name, *_ in entry.changes}
    desk_fields = {name for entry in field_history(user=desk, record=rich_person) for name, *_ in entry.changes}
    assert "income_band" in rep_fields and "income_band" not in desk_fields and "notes" in desk_fields


def test_search_results_show_no_hidden_field(client, user_in, rich_person):
    desk = user_in("front-desk", "desk")
    client.force_login(desk)
    body = client.get(reverse("people:search"), {"q": "Lovelace"}).content.decode()
    assert "Ada" in body and "100,000" not in body and "over_100k" not in body


def test_api_person_payloads_leave_hidden_fields_out(user_in, rich_person, admin_user):
    """Every API endpoint that returns the person (found from the URL map) hides income for the desk."""
    from django.urls import get_resolver

    from rapport.access.tests.routes import iter_routes

    desk = user_in("front-desk", "desk")
    admin, client = token_client(admin_user), token_client(desk, ["read"])
    checked = []
    for route in iter_routes(get_resolver()):
        if not route.path.startswith("/api/") or route.uuid_args != ["pk"] or route.other_args:
            continue
        path = route.fill({"pk": rich_person.pk})
        seen = admin.get(path)
        if seen.status_code != 200 or seen.get("Content-Type", "").split(";")[0] != "application/json":
            continue
        if str(seen.json().get("id")) != str(rich_person.pk) or "income_band" not in seen.json():
            continue
        body = client.get(path).json()
        assert "income_band" not in body, path
        checked.append(path)
    if not checked:
        pytest.skip("no API endpoint returns a person's income band yet (the people API is being built)")
