"""``insert_together``'s shortcuts for ids, foreign keys and timestamps write what Django writes."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection

from rapport.core.api.prepared import _NOW, _UUID, _db_values, _insert_fields, _quick_plan
from rapport.people.models import ContactPoint, Person

pytestmark = pytest.mark.django_db


def _written(model, obj):  # type: ignore[no-untyped-def]
    return dict(zip(_insert_fields(model), _db_values(model, obj, connection), strict=True))


def test_the_shortcuts_cover_a_create_s_ids_foreign_keys_and_timestamps():
    kinds = {field.name: quick for field, quick in zip(_insert_fields(ContactPoint), _quick_plan(ContactPoint),
                                                       strict=True)}
    assert kinds["id"] == kinds["person"] == _UUID
    assert kinds["created_at"] == kinds["updated_at"] == _NOW
    assert kinds["value"] is None and kinds["primary"] is None
    person_kinds = {f.name: q for f, q in zip(_insert_fields(Person), _quick_plan(Person), strict=True)}
    assert person_kinds["owner"] == _UUID  # a user's key is a UUID too
    assert person_kinds["birth_date"] is None and person_kinds["gender_index"] is None  # sealed, indexed


@pytest.mark.parametrize("owner", ["user", None, "text"])
def test_ids_and_foreign_keys_as_django_prepares_them(staff_user, owner):
    # given: a person owned by a user (or nobody, or an id given as text), and a contact point
    person = Person(given_name="Ada", owner=staff_user if owner == "user" else None)
    if owner == "text":
        person.owner_id = str(staff_user.pk)
    point = ContactPoint(person=person, kind="email", value="a@example.com", normalised="a@example.com",
                         search_key="aexamplecom")
    for model, obj in ((Person, person), (ContactPoint, point)):
        # when
        written = _written(model, obj)
        # then: each id and key as the field's own preparation gives it, of the same type
        for field, quick in zip(_insert_fields(model), _quick_plan(model), strict=True):
            if quick == _UUID:
                expected = field.get_db_prep_save(field.pre_save(obj, True), connection)
                assert written[field] == expected and type(written[field]) is type(expected), field.name
    if connection.vendor == "sqlite":
        assert _written(ContactPoint, point)[ContactPoint._meta.get_field("person")] == person.pk.hex


def test_an_id_given_as_text_is_prepared_by_django(staff_user):
    point = ContactPoint(person=Person(given_name="Ada"), kind="email", value="a@example.com")
    point.id = str(uuid.uuid4())
    written = _written(ContactPoint, point)[ContactPoint._meta.get_field("id")]
    assert written == ContactPoint._meta.get_field("id").get_db_prep_save(point.id, connection)
    assert written != point.id  # PostgreSQL: a UUID; SQLite: the hex digits


def test_timestamps_are_taken_on_the_insert_and_adapted_as_django_does(staff_user):
    # given: a contact point whose timestamps were set by hand (an insert replaces them, as save() does)
    point = ContactPoint(person=Person(given_name="Ada"), kind="email", value="a@example.com")
    point.created_at = point.updated_at = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    before = dt.datetime.now(dt.UTC)
    # when
    written = _written(ContactPoint, point)
    # then: now, set on the instance, and written as the field's preparation of that value
    for name in ("created_at", "updated_at"):
        field = ContactPoint._meta.get_field(name)
        assert getattr(point, name) >= before
        expected = field.get_db_prep_save(getattr(point, name), connection)
        assert written[field] == expected and type(written[field]) is type(expected)
