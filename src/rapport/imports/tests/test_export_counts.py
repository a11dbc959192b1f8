"""A3 — the per-person counts of contact points of each kind that the CSV export's column count
reads (migration imports/0004, decision 0025): every way a point is written keeps them equal to
counting the points themselves, on each database."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from rapport.identity.merge import merge_people
from rapport.imports import exports
from rapport.people import services as people
from rapport.people.models import ContactPoint, Person

pytestmark = pytest.mark.django_db


def kept() -> set[tuple[str, str, int]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT person_id, kind, n FROM {exports.POINT_KIND_COUNTS}")  # noqa: S608 - a constant
        return {(str(uuid.UUID(str(p))), k, n) for p, k, n in cursor.fetchall()}


def counted() -> set[tuple[str, str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT person_id, kind, COUNT(*) FROM people_contactpoint GROUP BY person_id, kind")
        return {(str(uuid.UUID(str(p))), k, n) for p, k, n in cursor.fetchall()}


def test_counts_follow_every_write_of_a_contact_point(make_person, staff_user):
    # given two people with points of several kinds (the services insert them)
    ada = make_person(given_name="Ada", emails=["a1@example.com", "a2@example.com"], phones=["+44 20 7946 0123"])
    bob = make_person(given_name="Bob", emails=["b1@example.com"])
    assert kept() == counted() and (str(ada.pk), "email", 2) in kept()
    # when points are added one by one, in bulk and by raw SQL
    people.contact_point_add(actor=staff_user, person=bob, data=people.ContactPointInput(
        kind="email", value="b2@example.com"))
    ContactPoint.objects.bulk_create([ContactPoint(person=bob, kind="phone", value=f"+44 7700 90000{n}",
                                                   normalised=f"+4477009000{n}") for n in range(3)])
    assert kept() == counted() and (str(bob.pk), "phone", 3) in kept()
    # moved to another kind or another person (one row and many in one statement)
    ContactPoint.objects.filter(person=bob, kind="phone", value="+44 7700 900000").update(kind="social")
    ContactPoint.objects.filter(person=bob, kind="phone").update(person=ada)
    assert kept() == counted() and (str(ada.pk), "phone", 3) in kept() and (str(bob.pk), "social", 1) in kept()
    # changed in a way that does not matter to the counts
    ContactPoint.objects.filter(person=ada).update(verified=True)
    assert kept() == counted()
    # removed one by one, in bulk, and with their person
    people.contact_point_remove(actor=staff_user, point=bob.contact_points.get(kind="social"))
    ContactPoint.objects.filter(person=ada, kind="phone").delete()
    assert kept() == counted() and not any(p == str(ada.pk) and k == "phone" for p, k, _ in kept())
    Person.objects.filter(pk=bob.pk).delete()
    # then the kept counts are the points' own, with no row left at zero
    assert kept() == counted() and not any(p == str(bob.pk) for p, _, _ in kept())
    assert all(n > 0 for _, _, n in kept())


def test_counts_follow_a_merge(make_person, staff_user):
    # given two people with emails and phones
    survivor = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    merged = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@work.example", "ada@old.example"],
                         phones=["+44 20 7946 0123"])
    # when one is merged into the other (its points move to the survivor)
    merge_people(survivor=survivor, merged=merged, actor=staff_user)
    # then the counts are the points' own
    assert kept() == counted()
    assert exports._kind_maxima(Person.objects.all()) == exports._max_points_per_kind(Person.objects.all())


def test_kind_maxima_equal_the_count_over_the_points(make_person):
    # given people with up to three emails, some phones, in and out of a filter
    for n in range(9):
        make_person(given_name=f"P{n}", country="GB" if n % 3 == 0 else "FR",
                    emails=[f"p{n}-{k}@example.com" for k in range(1 + n % 3)],
                    phones=["+44 20 7946 0123"] * (n % 2))
    everyone = Person.objects.all()
    british = Person.objects.filter(country="GB")
    # then the maxima read from the kept counts are those counted over the points
    assert exports._kind_maxima(everyone) == exports._max_points_per_kind(everyone) == {"email": 3, "phone": 1}
    assert exports._kind_maxima(british) == exports._max_points_per_kind(british) == {"email": 1, "phone": 1}
    assert exports._kind_maxima(Person.objects.none()) == {}


@pytest.mark.django_db(transaction=True)  # PostgreSQL refuses TRUNCATE with the points' deferred checks pending
def test_counts_are_emptied_with_the_points(make_person):
    # given people with points, then every point removed at once (PostgreSQL: TRUNCATE, as a
    # test database is flushed; SQLite: one DELETE)
    make_person(given_name="Ada", emails=["a@example.com"])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE people_contactpoint CASCADE")
    else:
        ContactPoint.objects.all().delete()
    # then no count is left behind
    assert kept() == set() == counted()
