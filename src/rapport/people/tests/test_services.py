"""P1–P3 services: people, contact points, employment history, timeline."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from rapport.people import services
from rapport.people.models import ContactPoint, Employment, Interaction
from rapport.people.services import ContactPointInput

pytestmark = pytest.mark.django_db


def test_person_create_normalises_contact_points(staff_user):
    # given / when
    person = services.person_create(
        actor=staff_user, given_name=" Ada ", family_name="Lovelace", country="gb",
        contact_points=[
            ContactPointInput(kind="email", value="Ada.Lovelace@Example.COM"),
            ContactPointInput(kind="phone", value="020 7946 0018", label="work"),
        ],
    )
    # then
    email = person.contact_points.get(kind="email")
    phone = person.contact_points.get(kind="phone")
    assert person.given_name == "Ada" and person.country == "GB"
    assert email.normalised == "ada.lovelace@example.com" and email.primary
    assert phone.normalised == "+442079460018" and phone.search_key == "2079460018"
    assert person.given_key == "ada" and person.family_key == "lovelace"


def test_person_create_rejects_bad_identifiers_and_writes_nothing(staff_user):
    with pytest.raises(ValidationError) as err:
        services.person_create(actor=staff_user, given_name="X", contact_points=[
            ContactPointInput(kind="email", value="not-an-email"),
            ContactPointInput(kind="phone", value="12"),
        ])
    assert set(err.value.message_dict) == {"contact_points.0.value", "contact_points.1.value"}
    assert not ContactPoint.objects.exists()


def test_person_needs_a_name_or_contact_point(staff_user):
    with pytest.raises(ValidationError):
        services.person_create(actor=staff_user)


def test_repeated_contact_point_is_folded_and_primary_is_unique(make_person, staff_user):
    person = make_person(emails=["a@example.com"])
    services.contact_point_add(actor=staff_user, person=person,
                               data=ContactPointInput(kind="email", value="A@EXAMPLE.com", verified=True))
    second = services.contact_point_add(actor=staff_user, person=person,
                                        data=ContactPointInput(kind="email", value="b@example.com", primary=True))
    emails = list(person.contact_points.filter(kind="email").order_by("normalised"))
    assert len(emails) == 2
    assert emails[0].verified and not emails[0].primary
    assert second.primary


def test_update_bumps_version_and_rejects_stale_version(make_person, staff_user):
    person = make_person()
    services.person_update(actor=staff_user, person=person, changes={"given_name": "Grace"})
    assert person.version == 2 and person.given_key == "grace"
    with pytest.raises(ValidationError):
        services.person_update(actor=staff_user, person=person, changes={"notes": "x"}, expected_version=1)


def test_changing_company_ends_the_old_job_and_keeps_history(make_person, make_organisation, staff_user):
    person = make_person()
    old, new = make_organisation(name="Old Ltd"), make_organisation(name="New plc")
    services.employment_start(actor=staff_user, person=person, organisation=old, title="Analyst",
                              start_date=dt.date(2020, 1, 1))
    services.employment_start(actor=staff_user, person=person, organisation=new, title="Lead",
                              start_date=dt.date(2024, 6, 1))
    jobs = {j.organisation.name: j for j in Employment.objects.filter(person=person)}
    assert jobs["Old Ltd"].end_date == dt.date(2024, 6, 1)
    assert jobs["New plc"].is_current


def test_imported_interaction_is_stored_once(make_person, staff_user):
    person = make_person()
    first, created = services.interaction_log(actor=staff_user, person=person, channel="email", kind="email",
                                              summary="Hello", source_system="mailer", external_id="m-1")
    again, created_again = services.interaction_log(actor=staff_user, person=person, channel="email",
                                                    kind="email", summary="Hello", source_system="mailer",
                                                    external_id="m-1")
    assert created and not created_again and first.pk == again.pk
    assert Interaction.objects.count() == 1


def test_organisation_cannot_be_its_own_ancestor(make_organisation, staff_user):
    parent = make_organisation(name="Group")
    child = make_organisation(name="Sub", parent=parent)
    with pytest.raises(ValidationError):
        services.organisation_update(actor=staff_user, organisation=parent, changes={"parent": child})


def test_create_checks_an_explicit_owner_but_does_not_look_up_the_actor(staff_user):
    """The actor was just loaded, so the owner check's query is skipped; a given owner is checked."""
    import uuid

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rapport.access.models import User

    # when the actor becomes the owner
    with CaptureQueriesContext(connection) as ctx:
        ada = services.person_create(actor=staff_user, given_name="Ada")
    # then
    assert ada.owner_id == staff_user.pk
    assert not [q["sql"] for q in ctx.captured_queries if '"access_user"' in q["sql"]]
    # when an owner that does not exist is given
    with pytest.raises(ValidationError) as refused:
        services.person_create(actor=staff_user, given_name="Bob", owner=User(pk=uuid.uuid4(), username="ghost"))
    assert "owner" in refused.value.message_dict
