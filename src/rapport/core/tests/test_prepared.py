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
        # logged with its text, as every query is (prepared statements included)
        assert '"people_contactpoint"' in ctx.captured_queries[0]["sql"]
        assert ids[0].hex in ctx.captured_queries[0]["sql"].replace("-", "")
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


def test_insert_together_writes_what_save_writes_in_one_round_trip_on_postgresql(staff_user):
    import datetime as dt

    from django.db.models import signals

    from rapport.core.api.prepared import insert_together
    from rapport.people.models import Person

    # given: a person with sealed fields and blind indexes, saved the usual way
    def new_person(name: str) -> Person:
        return Person(given_name=name, family_name="Lovelace", given_key=name.lower(), owner=staff_user,
                      birth_date=dt.date(1815, 12, 10), gender="female", country="GB")

    saved = new_person("Ada")
    saved.save()
    person = new_person("Ada")
    points = [ContactPoint(person=person, kind="email", value=f"a{i}@example.com", normalised=f"a{i}@example.com",
                           search_key=f"a{i}@example.com", primary=i == 0) for i in range(3)]
    heard = []

    def listen(sender, instance, **kwargs):
        heard.append((sender, kwargs.get("created")))

    signals.post_save.connect(listen, sender=Person)
    try:
        # when
        with CaptureQueriesContext(connection) as ctx:
            insert_together((Person, [person]), (ContactPoint, points))
    finally:
        signals.post_save.disconnect(listen, sender=Person)
    # then: one statement on PostgreSQL, one per model elsewhere; the rows as save() writes them
    assert len(ctx.captured_queries) == (1 if connection.vendor == "postgresql" else 2)
    assert heard == [(Person, True)]
    assert not person._state.adding and all(not p._state.adding for p in points)
    stored, reference = Person.objects.get(pk=person.pk), Person.objects.get(pk=saved.pk)
    skip = {"id", "created_at", "updated_at"}
    for field in Person._meta.concrete_fields:
        if field.attname not in skip:
            assert getattr(stored, field.attname) == getattr(reference, field.attname), field.name
    assert stored.created_at is not None and stored.birth_date == dt.date(1815, 12, 10)
    assert stored.created_at == person.created_at
    assert Person.objects.filter(gender_index=reference.gender_index).count() == 2
    assert sorted(ContactPoint.objects.filter(person=person).values_list("normalised", "primary")) == [
        ("a0@example.com", True), ("a1@example.com", False), ("a2@example.com", False)]


def test_insert_together_splits_rows_within_the_parameter_limit(staff_user, monkeypatch):
    from rapport.core.api import prepared
    from rapport.people.models import Person

    person = make_person(actor=staff_user)
    points = [ContactPoint(person=person, kind="url", value=f"https://e.example/{i}",
                           normalised=f"https://e.example/{i}", search_key=str(i)) for i in range(7)]
    monkeypatch.setattr(prepared, "PG_MAX_PARAMS", 30)  # ContactPoint has 12 columns: 2 rows a statement
    monkeypatch.setattr(connection.features, "max_query_params", 30)
    with CaptureQueriesContext(connection) as ctx:
        prepared.insert_together((ContactPoint, points))
    assert len(ctx.captured_queries) == 4
    assert ContactPoint.objects.filter(person=person, kind="url").count() == 7
    with pytest.raises(ValueError, match="filled in by the database"):
        from rapport.core.models import IdempotencyRecord

        prepared.insert_together((IdempotencyRecord, [IdempotencyRecord(user=staff_user, key="k")]))
    assert Person.objects.filter(pk=person.pk).exists()


def test_statements_prepared_prepares_what_runs_inside_the_block_only():
    from rapport.core.api.prepared import statements_prepared

    marker = "/* statements_prepared test */"

    def run() -> tuple[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) {marker} FROM people_person WHERE given_name = %s", ["Ada"])  # noqa: S608 - a constant
            client_side = connection.vendor == "postgresql" and _client_binding(cursor.cursor)
            return "client binding" if client_side else type(cursor.cursor).__name__, cursor.fetchone()[0]

    def prepared() -> int:  # this connection's server-side prepared statements of the marked query
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{marker}%"])
            return cursor.fetchone()[0]

    outside, _ = run()
    with statements_prepared():
        inside, count = run()
        with statements_prepared():  # nested: still preparing, and restored by the outer block only
            assert run()[0] == inside
        assert run()[0] == inside and count == 0
    assert run()[0] == outside
    if connection.vendor == "postgresql" and connection.connection.prepare_threshold is not None:
        assert (outside, inside) == ("client binding", "PreparingCursor")
        assert prepared() == 1
    else:  # nothing changes elsewhere
        assert inside == outside


def _client_binding(cursor) -> bool:
    from psycopg import ClientCursor

    return isinstance(cursor, ClientCursor)


def test_statements_prepared_run_their_generic_plan_planned_once():
    from rapport.core.api.prepared import statements_prepared

    if connection.vendor != "postgresql" or connection.connection.prepare_threshold is None:
        pytest.skip("PostgreSQL's plan cache")
    # given: a statement whose value-specific plans look cheaper (an IN list and a LIMIT), which
    # PostgreSQL would otherwise plan again on every run
    marker = "/* generic plan test */"
    sql = f"SELECT id {marker} FROM people_person WHERE family_key = %s AND given_key IN (%s, %s) LIMIT 20"  # noqa: S608 - a constant
    # when
    with statements_prepared(), connection.cursor() as cursor:
        for n in range(8):
            cursor.execute(sql, [f"family{n}", "ada", "grace"])
            cursor.fetchall()
    # then
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
                       [f"%{marker}%"])
        assert cursor.fetchall() == [(8, 0)]


@pytest.mark.parametrize("value", ["Ada", "", None, 42, True, False, 1, 0, "t", "lazy"])
def test_insert_values_taken_as_they_are_equal_what_the_field_prepares(staff_user, value):
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext_lazy

    from rapport.core.api.prepared import _db_values, _insert_plan
    from rapport.people.models import Person

    # given: every field written without its preparation holding the value (a lazy string
    # too), where Django's preparation takes it
    value = gettext_lazy("Lovelace") if value == "lazy" else value
    person = Person(given_name="Ada", owner=staff_user)
    point = ContactPoint(person=person, kind="email", value="a@example.com")
    for model, obj in ((Person, person), (ContactPoint, point)):
        plain = [field for field, passes in _insert_plan(model) if passes]
        assert {f.name for f in plain} >= ({"given_name", "notes"} if model is Person else {"value", "primary"})
        taken = []
        for field in plain:
            try:
                field.get_db_prep_save(value, connection)
            except ValidationError:
                continue
            setattr(obj, field.attname, value)
            taken.append(field)
        plain = taken
        # when
        written = dict(zip([f for f, _ in _insert_plan(model)], _db_values(model, obj, connection), strict=True))
        # then: what Django's own preparation gives, of the same type
        for field in plain:
            expected = field.get_db_prep_save(field.pre_save(obj, True), connection)
            assert written[field] == expected and type(written[field]) is type(expected), field.name
    assert not any(passes for field, passes in _insert_plan(Person) if field.name in {"gender", "birth_date", "id"})


def test_sql_is_the_compiled_query_with_the_ids_bound(staff_user):
    # given
    people = [make_person(actor=staff_user, emails=[f"s{i}@example.com"]) for i in range(3)]
    for chosen in (people[:2], people, people[:2]):
        ids = [p.pk for p in chosen]
        expected = list(ContactPoint.objects.filter(person_id__in=ids).order_by("kind", "created_at")
                        .values_list("person_id", "kind", "normalised", "primary", "created_at"))
        # when: the statement run by a caller's own cursor, as inside a larger statement
        sql, params = POINTS.sql(ids)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({sql}) AS inner_rows", params)  # noqa: S608 - compiled SQL
            (count,) = cursor.fetchone()
        # then: the ORM's statement for these ids (placeholders and values), the same rows
        assert (sql, tuple(params)) == POINTS.build(ids).query.sql_with_params()
        assert count == len(expected) == len(chosen)
