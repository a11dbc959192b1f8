"""A3 — the CSV export's lines joined with commas (``PagePlan._lines``): the bytes ``csv.writer``
writes, for the cells where a plain join would be wrong (quotes, commas, line ends, formulas
after a comma inside a cell) and for views with no own cells or no middle cells at all."""

from __future__ import annotations

import datetime as dt

import pytest

from rapport.imports import exports
from rapport.imports.tests.test_exports import _reference_csv, body
from rapport.imports.tests.workers import (
    use_export_workers,
)
from rapport.people import services as people
from rapport.people.models import ContactPoint, Person, Tag

ODD = [  # (given, middle, family, preferred, notes): one reason each for csv.writer's quoting or a formula check
    ("Smith, John", "", "Doe", "", "plain"),  # a comma inside a cell, nothing else
    ("a", "", "=b", "", ""),  # a formula, not in the first cell
    ("a", "", "b", "+c", ""),
    ("a", "-d", "b", "", ""),
    ("a", "", "b", "", "@e"),
    ("a", "", "b", "", "carriage\rreturn"),  # a carriage return alone
    ("a", "", "b", "", "line\nend"),  # a line feed alone
    ("a", "", "say \"hi\"", "", ""),  # a quote alone
    ("a", "x,=y", "b", "", ""),  # "=y" after a comma inside a cell: not a formula, but looks like one
    ("", "", "", "", ""),  # every own cell empty
    ("=1+2", "", "b", "+44 20 7946 0123", ""),  # a formula first; a phone number kept as it is
    ("trailing,", ",leading", "\"", ",", ",,"),
]


@pytest.fixture
def odd(make_person, make_organisation, staff_user):
    org = make_organisation(name="=Evil, Ltd")
    made = []
    for n, (given, middle, family, preferred, notes) in enumerate(ODD):
        person = make_person(given_name=given or f"G{n}", family_name=family or f"F{n}", emails=[f"o{n}@example.com"],
                             phones=["+44 7911 123456"] if n % 2 else [], tags=["plain", "x, y"] if n % 3 == 0 else [])
        Person.objects.filter(pk=person.pk).update(given_name=given, middle_names=middle, family_name=family,
                                                   preferred_name=preferred, notes=notes)
        if n % 2 == 0:  # a comma in a middle cell, nothing else
            ContactPoint.objects.filter(person=person, kind="email").update(label="work, main")
        if n % 4 == 0:
            people.contact_point_add(actor=staff_user, person=person, data=people.ContactPointInput(
                kind="address", value=f"{n} High Street\r\nLondon, \"North\"", label="home"))
        if n % 3 == 1:
            people.employment_start(actor=staff_user, person=person, organisation=org, title="Head, \"ops\"",
                                    start_date=dt.date(2020, 1, 1))
        made.append(person)
    Tag.objects.filter(name="x, y").update(name="=x, y")
    return made


@pytest.mark.django_db(transaction=True)  # committed: the export's worker processes read it on their own connections
@pytest.mark.parametrize("workers", ["0", "2"])
def test_joined_lines_are_the_csv_writers_bytes(odd, staff_user, monkeypatch, workers):
    # given people whose cells need quotes, hold commas or line ends, or start formulas; pages of 3
    use_export_workers(monkeypatch, workers)
    monkeypatch.setattr(exports, "PAGE", 3)
    # when
    fast = body(exports.export_people(user=staff_user, fmt="csv"))
    # then the reference's bytes (csv.writer over every cell)
    assert fast == _reference_csv(staff_user)
    text = fast.decode("utf-8-sig")
    assert "\"Smith, John\"" in text and "\"x,=y\"" in text and ",'=b," in text and "'=1+2" in text
    assert "\"carriage\rreturn\"" in text and "\"'=Evil, Ltd\"" in text and "\"'=x, y; plain\"" in text


@pytest.mark.parametrize("hidden", [
    # no own cells: the id, then the middle cells
    {"people.Person": frozenset(f for f, _ in exports.PERSON_COLUMNS)},
    # no middle cells: no job, tags or contact points
    {"people.Person": frozenset({"contact_points", "employments", "tags"})},
    # neither: the id and the timestamps
    {"people.Person": frozenset({*(f for f, _ in exports.PERSON_COLUMNS), "contact_points", "employments", "tags"})},
])
def test_views_without_own_or_middle_cells(odd, staff_user, monkeypatch, hidden):
    # given a role that sees none of the person's own fields, or none of the cells between them and the
    # timestamps, or neither
    monkeypatch.setattr(exports, "hidden_fields", lambda user, label: hidden.get(label, frozenset()))
    monkeypatch.setattr(exports, "PAGE", 3)
    # when
    fast = body(exports.export_people(user=staff_user, fmt="csv"))
    # then the reference's bytes
    assert fast == _reference_csv(staff_user)
    header = fast.decode("utf-8-sig").splitlines()[0]
    assert "Notes" not in header or "Email 1" not in header
