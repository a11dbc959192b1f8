"""``PreparedQuery``: compiled once, run with new ids, the same rows as the ORM, and counted."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.core.api.prepared import PreparedQuery
from rapport.core.testing import make_person
from rapport.people.models import ContactPoint

pytestmark = pytest.mark.django_db

POINTS = PreparedQuery(
    lambda ids: (ContactPoint.objects.filter(person_id__in=ids).order_by("kind", "created_at")
                 .values_list("person_id", "kind", "normalised", "primary", "created_at")),
    prep_field=ContactPoint._meta.get_field("person"))


def test_rows_equal_the_orm_and_each_run_is_one_logged_query(staff_user):
    # given
    people = [make_person(actor=staff_user, emails=[f"p{i}@example.com"], phones=[f"+44207946001{i}"])
              for i in range(3)]
    for chosen in (people, people[:1], people, people[1:]):
        ids = [p.pk for p in chosen]
        expected = list(ContactPoint.objects.filter(person_id__in=ids).order_by("kind", "created_at")
                        .values_list("person_id", "kind", "normalised", "primary", "created_at"))
        # when
        with CaptureQueriesContext(connection) as ctx:
            rows = POINTS.rows(ids)
        # then: converted values (uuid, bool, aware datetime) exactly as the ORM gives them
        assert rows == expected and len(rows) == 2 * len(chosen)
        assert len(ctx.captured_queries) == 1
    assert POINTS.rows([]) == []


def test_a_query_that_varies_in_more_than_its_ids_is_refused(staff_user):
    import itertools

    counter = itertools.count()
    moving = PreparedQuery(
        lambda ids: ContactPoint.objects.filter(person_id__in=ids, value=str(next(counter))).values_list("pk"),
        prep_field=ContactPoint._meta.get_field("person"))
    with pytest.raises(ValueError, match="only in its ids"):
        moving.rows([make_person(actor=staff_user).pk])


def test_objects_are_the_orm_s_instances_with_related_rows_and_annotations(staff_user):
    from django.db.models import Value

    # given
    people = [make_person(actor=staff_user, emails=[f"o{i}@example.com"]) for i in range(2)]
    points = PreparedQuery(
        lambda ids: (ContactPoint.objects.select_related("person").filter(person_id__in=ids)
                     .annotate(marked=Value(7)).order_by("created_at")),
        prep_field=ContactPoint._meta.get_field("person"))
    ids = [p.pk for p in people]
    expected = list(ContactPoint.objects.select_related("person").filter(person_id__in=ids).order_by("created_at"))
    # when
    with CaptureQueriesContext(connection) as ctx:
        found = points.objects(ids)
        names = [point.person.family_name for point in found]  # no query: the person came with the row
    # then
    assert [p.pk for p in found] == [p.pk for p in expected] and len(ctx.captured_queries) == 1
    assert [(p.kind, p.normalised, p.created_at, p.person_id) for p in found] == [
        (p.kind, p.normalised, p.created_at, p.person_id) for p in expected]
    assert names == [p.person.family_name for p in expected] and {p.marked for p in found} == {7}
    assert not found[0]._state.adding and found[0]._state.db == "default"
    assert points.objects([]) == []
