"""``PreparedQuery.objects`` works out how to build instances once per compiled query; every
run still gets its own instances and related rows."""

from __future__ import annotations

import pytest

from rapport.core.api.prepared import PreparedQuery
from rapport.core.testing import make_person
from rapport.people.models import ContactPoint, Person

pytestmark = pytest.mark.django_db

POINTS_WITH_PEOPLE = PreparedQuery(
    lambda ids: ContactPoint.objects.select_related("person__owner").filter(person_id__in=ids).order_by("created_at"),
    prep_field=ContactPoint._meta.get_field("person"))


def test_each_run_has_its_own_instances_and_related_rows(staff_user, django_assert_num_queries):
    # given: two people, one owned by nobody (a null related row)
    owned = make_person(actor=staff_user, emails=["owned@example.com"])
    unowned = make_person(actor=staff_user, emails=["unowned@example.com"])
    Person.objects.filter(pk=unowned.pk).update(owner=None, family_name="Nobody's")
    # when: the same compiled query runs three times
    first = POINTS_WITH_PEOPLE.objects([owned.pk])
    second = POINTS_WITH_PEOPLE.objects([unowned.pk])
    again = POINTS_WITH_PEOPLE.objects([owned.pk])
    # then: the rows of each run, related rows attached (no query to reach them), nothing shared
    with django_assert_num_queries(0):
        assert [p.normalised for p in first] == ["owned@example.com"] == [p.normalised for p in again]
        assert first[0].person.pk == owned.pk and first[0].person.owner.pk == staff_user.pk
        assert second[0].person.family_name == "Nobody's" and second[0].person.owner is None
        assert first[0] is not again[0] and first[0].person is not again[0].person
        assert again[0].person.owner.pk == staff_user.pk
