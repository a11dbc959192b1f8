"""``TogetherInsert.run_after``: the rows go in only where the fragment's condition holds, in its statement."""

from __future__ import annotations

import pytest
from django.db import DataError, connection

from rapport.core.api.prepared import Fragment, TogetherInsert, _cast_type
from rapport.people.models import ContactPoint, Person

pytestmark = [pytest.mark.django_db, pytest.mark.skipif("connection.vendor != 'postgresql'")]


def _gate(open_: bool) -> Fragment:
    return Fragment("gate AS (SELECT 1 AS one WHERE %s)", [open_], "EXISTS (SELECT FROM gate)",
                    "SELECT count(*) FROM gate")


def _new(given_name: str = "Ada") -> tuple[Person, ContactPoint]:
    person = Person(given_name=given_name)
    point = ContactPoint(person=person, kind="email", value="a@example.com", normalised="a@example.com",
                         search_key="aexamplecom")
    return person, point


@pytest.mark.parametrize("open_", [True, False], ids=["condition-holds", "condition-fails"])
def test_the_rows_are_written_only_where_the_condition_holds(open_):
    # given
    person, point = _new()
    insert = TogetherInsert((Person, [person]), (ContactPoint, [point]))
    # when
    found = insert.run_after(_gate(open_))
    # then: the fragment's outcome comes back; the rows exist exactly when it held
    assert found == [(1 if open_ else 0,)]
    assert Person.objects.filter(pk=person.pk).exists() is open_
    assert ContactPoint.objects.filter(pk=point.pk, person_id=person.pk).exists() is open_
    if open_:
        insert.done()
        assert not person._state.adding
        stored = Person.objects.get(pk=person.pk)
        assert (stored.given_name, stored.created_at) == ("Ada", person.created_at)


def test_a_too_long_value_still_fails_as_an_insert_would():
    # the casts leave the length out, so the column's own check refuses it (a cast would cut it)
    assert _cast_type(Person._meta.get_field("given_name"), connection) == "varchar"
    person, _ = _new("x" * (Person._meta.get_field("given_name").max_length + 1))
    with pytest.raises(DataError):
        TogetherInsert((Person, [person])).run_after(_gate(True))


def test_run_after_refuses_more_than_one_statement_can_hold():
    people = [Person(given_name=f"P{i}") for i in range(65535 // len(Person._meta.local_concrete_fields) + 1)]
    insert = TogetherInsert((Person, people))
    assert not insert.one_statement
    with pytest.raises(ValueError, match="one PostgreSQL statement"):
        insert.run_after(_gate(True))
