"""A3 — exports: formats, filters like the list views, field security, audit, streaming, and
the round trip export → import giving back the same people."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

import openpyxl
import pytest
import vobject

from rapport.imports import exports
from rapport.imports.tests.test_services import snapshot
from rapport.imports.tests.workers import (
    use_export_workers,
)
from rapport.people import services as people
from rapport.people.models import Organisation, Person, Tag

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm(make_person, make_organisation, staff_user):
    """A small CRM: people with several contact points of each kind, jobs, tags, odd characters."""
    engines = make_organisation(name="Analytical Engines", domain="engines.example", tags=["partner"])
    ada = make_person(given_name="Ada", family_name="Lovelace", honorific="Lady", preferred_name="Ada",
                      middle_names="Augusta", emails=["ada@example.com", "ada@engines.example"],
                      phones=["+44 20 7946 0123", "07911 123456"], tags=["vip", "friends"], country="GB",
                      language="en-GB", timezone_name="Europe/London",
                      notes="Wrote \"Note G\"; loved poetry,\nmathematics and =formulas.")
    people.contact_point_add(actor=staff_user, person=ada, data=people.ContactPointInput(
        kind="address", value="10 Downing Lane\nLondon\nNW1 2AB", label="home"))
    people.contact_point_add(actor=staff_user, person=ada, data=people.ContactPointInput(
        kind="url", value="https://ada.example.com", label="blog"))
    people.contact_point_add(actor=staff_user, person=ada, data=people.ContactPointInput(
        kind="social", value="@ada", label="mastodon"))
    people.employment_start(actor=staff_user, person=ada, organisation=engines, title="Analyst, Research",
                            start_date=dt.date(2021, 3, 1))
    make_person(given_name="Jürgen", family_name="Müller", emails=["juergen@example.de"], tags=["vip"])
    make_person(given_name="", family_name="", emails=["only.email@example.com"])
    return {"ada": ada, "engines": engines}


def body(export: exports.Export) -> bytes:
    return b"".join(export.chunks)


def test_csv_has_a_column_pair_per_contact_point_and_neutralises_formulas(crm, staff_user):
    export = exports.export_people(user=staff_user, fmt="csv")
    assert export.content_type == "text/csv; charset=utf-8" and export.filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(body(export).decode("utf-8-sig"))))
    assert len(rows) == 3
    ada = next(r for r in rows if r["Family name"] == "Lovelace")
    assert (ada["Email 1"], ada["Email 2"], ada["Phone 1"], ada["Phone 2"]) == (
        "ada@example.com", "ada@engines.example", "+44 20 7946 0123", "07911 123456")
    assert ada["Organisation"] == "Analytical Engines" and ada["Job title"] == "Analyst, Research"
    assert ada["Job start"] == "2021-03-01" and ada["Tags"] == "friends; vip"
    assert ada["Address 1"] == "10 Downing Lane\nLondon\nNW1 2AB" and ada["Address 1 label"] == "home"
    assert ada["Rapport ID"] == str(crm["ada"].pk)
    assert "Email 3" not in rows[0]  # as many columns as the most emails anyone has
    assert ada["Notes"].startswith("Wrote") and "=formulas" in ada["Notes"]


def test_hidden_fields_are_not_exported(crm, staff_user, monkeypatch):
    monkeypatch.setattr(exports, "hidden_fields", lambda user, label: {
        "people.Person": frozenset({"notes", "tags"}), "people.ContactPoint": frozenset()}.get(label, frozenset()))
    header = body(exports.export_people(user=staff_user, fmt="csv")).decode("utf-8-sig").splitlines()[0]
    assert "Notes" not in header and "Tags" not in header and "Given name" in header
    data = json.loads(body(exports.export_people(user=staff_user, fmt="json")))
    assert all("notes" not in p and "tags" not in p for p in data)
    vcards = body(exports.export_people(user=staff_user, fmt="vcf")).decode()
    assert "NOTE:" not in vcards and "CATEGORIES:" not in vcards


def test_every_exported_person_is_audited_page_by_page(crm, staff_user, monkeypatch):
    audited = []
    monkeypatch.setattr(exports, "record_people_access_bulk", lambda **kw: audited.append(kw))
    monkeypatch.setattr(exports, "PAGE", 2)
    export = exports.export_people(user=staff_user, fmt="csv", filters={"tag": "vip"})
    chunks = iter(export.chunks)
    next(chunks)  # the header: nothing has left yet
    assert audited == []
    rest = list(chunks)
    assert len(rest) == 1  # two vip people, one page of two
    [entry] = audited
    assert entry["action"] == "export" and entry["channel"] == "export"
    # ids as the database gives them (strings: no UUID objects on the hot path)
    assert {uuid.UUID(pid) for pid in entry["people"]} == set(Person.objects.filter(tags__name="vip")
                                                                .values_list("pk", flat=True))
    assert entry["detail"]["filters"] == {"tag": "vip"}


def test_an_export_is_answerable_per_person_and_the_chain_verifies(crm, staff_user, monkeypatch):
    from rapport.access.audit import person_entries, verify_chain

    monkeypatch.setattr(exports, "PAGE", 2)
    body(exports.export_people(user=staff_user, fmt="csv", filters={"tag": "vip"}))
    vip = set(Person.objects.filter(tags__name="vip").values_list("pk", flat=True))
    for person in Person.objects.all():
        exported = [e for e in person_entries(person.pk) if e.action == "export"]
        assert len(exported) == (person.pk in vip)
        assert all(e.actor_name == "staff" and e.channel == "export" for e in exported)
    assert verify_chain().ok


def test_csv_equals_the_people_read_through_the_orm(crm, staff_user, make_person, make_organisation):
    """The raw SQL path (per vendor) against a reference built from model instances."""
    # given: more variety — a former and a current job, a person with no points, several pages
    engines = crm["engines"]
    bea = make_person(given_name="Bea", family_name="Former", emails=["bea@example.com"], tags=["b", "a"])
    people.employment_start(actor=staff_user, person=bea, organisation=make_organisation(name="Old Co"),
                            title="Clerk", start_date=dt.date(2001, 1, 1))
    people.employment_end(actor=staff_user, employment=bea.employments.get(), end_date=dt.date(2002, 1, 1))
    people.employment_start(actor=staff_user, person=bea, organisation=engines, title="",
                            start_date=None)
    nobody = make_person(given_name="Nobody", family_name="Reachable")
    # timestamps with no fraction and with trailing zeros (isoformat differs; the SQL must follow)
    Person.objects.filter(pk=nobody.pk).update(created_at=dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                                               updated_at=dt.datetime(2020, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC))
    # when
    rows = list(csv.reader(io.StringIO(body(exports.export_people(user=staff_user, fmt="csv"))
                                       .decode("utf-8-sig"))))
    header, rows = rows[0], rows[1:]
    # then: the same cells as the model instances give, person by person
    expected = {}
    for person in Person.objects.prefetch_related("contact_points", "tags", "employments__organisation"):
        cells = {"Rapport ID": str(person.pk), "Given name": person.given_name, "Family name": person.family_name,
                 "Notes": exports._safe_cell(person.notes), "Country": person.country,
                 "Created": person.created_at.isoformat(), "Updated": person.updated_at.isoformat(),
                 "Tags": "; ".join(sorted(t.name for t in person.tags.all()))}
        current = sorted((j for j in person.employments.all() if j.end_date is None),
                         key=lambda j: (j.start_date is None, j.start_date or dt.date.min), reverse=True)
        job = current[0] if current else None
        cells["Organisation"] = job.organisation.name if job else ""
        cells["Job title"] = job.title if job else ""
        cells["Job start"] = job.start_date.isoformat() if job and job.start_date else ""
        for kind, title in exports.KIND_HEADERS.items():
            points = sorted((p for p in person.contact_points.all() if p.kind == kind),
                            key=lambda p: (not p.primary, p.created_at, p.pk))
            for n, point in enumerate(points, 1):
                cells[f"{title} {n}"] = exports._safe_cell(point.value)
                cells[f"{title} {n} label"] = point.label
        expected[str(person.pk)] = cells
    assert len(rows) == len(expected) == 5
    assert [r[0] for r in rows] == sorted(expected, key=lambda pid: uuid.UUID(pid))  # keyset order
    for row in rows:
        got = dict(zip(header, row, strict=True))
        assert {k: got[k] for k in expected[row[0]]} == {k: v for k, v in expected[row[0]].items()}
        assert all(got[k] == "" for k in header if k not in expected[row[0]] and k not in
                   ("Honorific", "Middle names", "Preferred name", "Language", "Timezone"))


def test_csv_neutralises_formulas_in_every_text_cell_but_keeps_phone_numbers(staff_user, make_person,
                                                                              make_organisation):
    # given: a person whose every text can start a formula
    evil = make_person(given_name="=HYPERLINK(\"http://x\")", family_name="+SUM(A1)", middle_names="-1",
                       preferred_name="@cmd", notes="=1+1", emails=["plain@example.com"],
                       phones=["+44 20 7946 0123"], tags=["=tag"])
    people.contact_point_add(actor=staff_user, person=evil, data=people.ContactPointInput(
        kind="url", value="https://example.com", label="=label"))
    people.employment_start(actor=staff_user, person=evil, organisation=make_organisation(name="@Org"),
                            title="-Boss", start_date=dt.date(2020, 1, 1))
    make_person(given_name="Plain", family_name="Person", phones=["+1-202-555-0100"])
    # when
    rows = {r["Given name"]: r for r in csv.DictReader(io.StringIO(
        body(exports.export_people(user=staff_user, fmt="csv")).decode("utf-8-sig")))}
    # then: every such cell is text, phone numbers in international form are left alone
    row = rows["'=HYPERLINK(\"http://x\")"]
    assert (row["Family name"], row["Middle names"], row["Preferred name"], row["Notes"]) == (
        "'+SUM(A1)", "'-1", "'@cmd", "'=1+1")
    assert (row["Tags"], row["Organisation"], row["Job title"], row["Web address 1 label"]) == (
        "'=tag", "'@Org", "'-Boss", "'=label")
    assert row["Phone 1"] == "+44 20 7946 0123" and rows["Plain"]["Phone 1"] == "+1-202-555-0100"
    assert [(k, v) for r in rows.values() for k, v in r.items() if v[:1] in ("=", "+", "-", "@") and not k.startswith("Phone")] == []


def test_filters_are_those_of_the_list_view(crm, staff_user):
    from rapport.people.selectors import person_list

    for filters in ({"name": "ada"}, {"email": "juergen@example.de"}, {"tag": "vip"}, {"country": "gb"},
                    {"organisation": "Analytical"}):
        exported = {p["id"] for p in json.loads(body(exports.export_people(user=staff_user, fmt="json",
                                                                            filters=filters)))}
        listed = {str(pk) for pk in person_list(user=staff_user, **filters).values_list("pk", flat=True)}
        assert exported == listed and exported


def test_pages_stream_with_flat_memory(make_person, staff_user, monkeypatch):
    for i in range(7):
        make_person(given_name=f"P{i}", family_name="Page", emails=[f"p{i}@example.com"])
    monkeypatch.setattr(exports, "PAGE", 3)
    chunks = list(exports.export_people(user=staff_user, fmt="csv").chunks)
    assert len(chunks) == 1 + 3  # header, then one chunk per page of 3
    assert sum(c.count(b"@example.com") for c in chunks[1:]) == 7


def test_unknown_format_or_filter_is_refused(staff_user):
    with pytest.raises(exports.ExportError, match="Unknown export format"):
        exports.export_people(user=staff_user, fmt="pdf")
    with pytest.raises(exports.ExportError, match="Unknown filter"):
        exports.export_people(user=staff_user, fmt="csv", filters={"salary": "high"})


def test_vcard_40_is_valid_and_json_complete(crm, staff_user):
    text = body(exports.export_people(user=staff_user, fmt="vcf")).decode()
    cards = list(vobject.readComponents(text))
    assert len(cards) == 3 and all(c.version.value == "4.0" for c in cards)
    ada = next(c for c in cards if c.n.value.family == "Lovelace")
    assert ada.org.value == ["Analytical Engines"] and ada.title.value == "Analyst, Research"
    assert {t.value for t in ada.tel_list} == {"+44 20 7946 0123", "07911 123456"}
    assert ada.note.value.startswith('Wrote "Note G"; loved poetry,\nmathematics')
    data = json.loads(body(exports.export_people(user=staff_user, fmt="json")))
    ada_json = next(p for p in data if p["family_name"] == "Lovelace")
    assert {c["kind"] for c in ada_json["contact_points"]} == {"email", "phone", "address", "url", "social"}
    assert ada_json["employments"][0]["organisation"] == "Analytical Engines"


def test_organisations_export(crm, staff_user):
    rows = list(csv.DictReader(io.StringIO(body(exports.export_organisations(user=staff_user, fmt="csv"))
                                           .decode("utf-8-sig"))))
    assert [(r["Name"], r["Domain"], r["Tags"]) for r in rows] == [("Analytical Engines", "engines.example", "partner")]
    workbook = openpyxl.load_workbook(io.BytesIO(body(exports.export_organisations(user=staff_user, fmt="xlsx"))))
    assert workbook.active["B2"].value == "Analytical Engines"
    cards = list(vobject.readComponents(body(exports.export_organisations(user=staff_user, fmt="vcf")).decode()))
    assert cards[0].kind.value == "org"


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "vcf", "json"])
def test_round_trip_export_then_import_gives_the_same_people(crm, staff_user, upload, run_import, fmt):
    # given the CRM exported
    before = snapshot()
    data = body(exports.export_people(user=staff_user, fmt=fmt))
    # when everything is deleted and the export imported
    Person.objects.all().delete()
    Organisation.objects.all().delete()
    Tag.objects.all().delete()
    imp = run_import(upload(data, f"people.{fmt}"))
    # then the same people are back (names, contact points with labels and primaries, jobs, tags)
    assert imp.counts["created"] == 3 and imp.counts.get("invalid", 0) == 0
    assert snapshot() == before


def test_the_real_field_rules_and_sharing_decide_what_is_exported(db, admin_user):
    # given people private to their owner (the one sharing mechanism) and the seeded roles:
    # marketing may not see notes
    from rapport.access.models import Role
    from rapport.access.services import sharing_default_set
    from rapport.core.testing import make_person, make_user
    from rapport.people.selectors import person_list

    roles = {role.key: role for role in Role.objects.all()}
    rita = make_user("rita", role=roles["sales-rep"])
    sam = make_user("sam", role=roles["sales-rep"])
    mia = make_user("mia", role=roles["marketing"])
    ada = make_person(actor=rita, given_name="Ada", family_name="Lovelace", emails=["ada@example.com"],
                      notes="Prefers letters")
    alan = make_person(actor=mia, given_name="Alan", family_name="Turing", emails=["alan@example.com"],
                       notes="Runs marathons")
    sharing_default_set(actor=admin_user, object_type="people.Person", access="private")

    def exported(user, fmt="json"):
        return body(exports.export_people(user=user, fmt=fmt))

    # then each user's export is exactly their list view: rita has Ada, mia has Alan, sam nobody
    for user, expected in ((rita, {ada.pk}), (mia, {alan.pk}), (sam, set())):
        assert set(person_list(user=user).values_list("pk", flat=True)) == expected
        assert {p["id"] for p in json.loads(exported(user))} == {str(pk) for pk in expected}
    assert exported(sam, "csv").decode("utf-8-sig").count("\n") == 1  # the header only
    # and a field the role may not see is absent from every format
    assert json.loads(exported(rita))[0]["notes"] == "Prefers letters"
    [alan_json] = json.loads(exported(mia))
    assert "notes" not in alan_json and alan_json["family_name"] == "Turing"
    assert "Notes" not in exported(mia, "csv").decode("utf-8-sig").splitlines()[0]
    assert "Runs marathons" not in exported(mia, "vcf").decode()
    workbook = openpyxl.load_workbook(io.BytesIO(exported(mia, "xlsx")))
    assert "Notes" not in [cell.value for cell in workbook.active[1]]


def _reference_csv(user, filters=None) -> bytes:
    """The CSV as the row-object path writes it (``_PersonColumns.row`` and ``_safe_cell`` per cell)."""
    people = exports._people_queryset(user, filters or {})
    columns = exports._PersonColumns(user, people)
    pages = exports._people_pages(people, columns, user=user, channel="export", request=None, detail={},
                                  points_in_full=True)
    return b"".join(exports._csv(exports._person_rows(pages), columns))


@pytest.fixture
def varied(make_person, make_organisation, staff_user):
    """Several points per kind, primaries, former and current jobs, tags, sealed demographics,
    formula-like values (and phone numbers that are not), people in and out of a filter."""
    orgs = [make_organisation(name=name) for name in ("Analytical Engines", "=Evil Ltd", "Old Co")]
    made = []
    for n in range(23):
        person = make_person(
            given_name=["Ada", "=cmd", "Zoë", "", "+1 (555)"][n % 5], family_name=f"Family {n}",
            middle_names="@x" if n % 7 == 0 else "", notes=['', 'said "hi", left\nearly', '-', '+44 call'][n % 4],
            country="GB" if n % 3 == 0 else "FR", tags=[["vip"], ["b", "a"], [], ["=t", "vip"]][n % 4],
            emails=[f"p{n}@example.com"] + ([f"p{n}@work.example"] if n % 2 else []),
            phones=[["+44 20 7946 0123"], ["+44 7911 123456", "+44 7911 123457"], [], ["+44 7911 123458", "+44 7911 123459", "+1-202-555-0100"]][n % 4])
        # values an older system let in (the services refuse them): digits that are not ASCII, a bare "+"
        odd = {"+44 7911 123457": "+٤٤ ٧٧", "+44 7911 123458": "+", "+44 7911 123459": "+44a"}
        for value, stored in odd.items():
            person.contact_points.filter(value=value).update(value=stored)
        if n % 5 == 0:
            people.contact_point_add(actor=staff_user, person=person, data=people.ContactPointInput(
                kind="address", value=f"{n} High Street\nLondon", label="=home" if n % 10 == 0 else "home"))
        if n % 6 == 0:
            people.contact_point_add(actor=staff_user, person=person, data=people.ContactPointInput(
                kind="url", value="https://example.com", label="blog"))
            people.contact_point_add(actor=staff_user, person=person, data=people.ContactPointInput(
                kind="email", value=f"primary{n}@example.com", primary=True))
        if n % 4 == 1:
            people.employment_start(actor=staff_user, person=person, organisation=orgs[2], title="Clerk",
                                    start_date=dt.date(2001, 1, 1))
            people.employment_end(actor=staff_user, employment=person.employments.get(), end_date=dt.date(2002, 1, 1))
        if n % 2:
            people.employment_start(actor=staff_user, person=person, organisation=orgs[n % 2], title="-Boss, ops",
                                    start_date=dt.date(2020, 1, n % 28 + 1) if n % 3 else None)
        if n % 3 == 1:
            person.birth_date, person.gender = dt.date(1980, 1, n + 1), "female"  # sealed: never exported
            person.save()
        made.append(person)
    return made


@pytest.mark.django_db(transaction=True)  # committed: the export's worker processes read it on their own connections
@pytest.mark.parametrize("workers", ["0", "2"])
def test_csv_pages_equal_the_row_by_row_reference(varied, staff_user, monkeypatch, workers):
    # given pages of 4 (six pages), workers on or off, and a restricted view with hidden fields
    from rapport.access.models import AuditEntryPerson
    from rapport.imports import export_csv

    use_export_workers(monkeypatch, workers)
    monkeypatch.setattr(exports, "PAGE", 4)
    hidden = {"people.Person": frozenset({"notes", "middle_names"}), "people.Employment": frozenset({"title"})}
    for restricted in (False, True):
        if restricted:
            monkeypatch.setattr(exports, "hidden_fields", lambda user, label: hidden.get(label, frozenset()))
        for filters in (None, {"country": "GB"}, {"tag": "vip"}):
            forked = []
            monkeypatch.setattr(export_csv, "_pages_in_workers", _counting(export_csv._pages_in_workers, forked))
            before = set(AuditEntryPerson.objects.values_list("entry_seq", flat=True))
            # when
            fast = body(exports.export_people(user=staff_user, fmt="csv", filters=filters))
            audited = list(AuditEntryPerson.objects.exclude(entry_seq__in=before).values_list("person_id", flat=True))
            # then the same bytes as the reference, through the workers when asked for
            assert fast == _reference_csv(staff_user, filters)
            assert forked == ([True] if workers != "0" else [])
            rows = list(csv.reader(io.StringIO(fast.decode("utf-8-sig"))))[1:]
            assert len(rows) > 4 and (not restricted or "Notes" not in fast.decode("utf-8-sig").splitlines()[0])
            # and exactly the exported people are in the audit
            assert sorted(uuid.UUID(str(pid)) for pid in audited) == sorted(uuid.UUID(r[0]) for r in rows)


def _counting(function, calls):
    def counted(*args, **kwargs):
        calls.append(True)
        yield from function(*args, **kwargs)
    return counted


def test_csv_cells_are_text_and_formula_safe_in_sql_and_python_alike(varied, staff_user):
    # the reference's cells, checked on their own: sealed values absent, formulas neutralised
    text = body(exports.export_people(user=staff_user, fmt="csv")).decode("utf-8-sig")
    assert "1980-01" not in text and "female" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    cells = [(k, v) for r in rows for k, v in r.items()]
    assert ("Phone 2", "+٤٤ ٧٧") in cells  # _safe_cell's str.isdigit() takes any digit, not only ASCII
    assert ("Phone 1", "'+") in cells and ("Phone 2", "'+44a") in cells and ("Phone 3", "+1-202-555-0100") in cells
    assert ("Given name", "'=cmd") in cells and ("Given name", "'+1 (555)") in cells and ("Tags", "'=t; vip") in cells
    assert [(k, v) for k, v in cells if v[:1] in "=+-@" and v and not k.startswith("Phone")] == []


@pytest.mark.django_db(transaction=True)  # committed: the worker processes read it on their own connections
@pytest.mark.parametrize("workers", ["0", "2"])
def test_csv_timestamps_are_isoformat_whatever_their_fraction(varied, staff_user, monkeypatch, workers):
    # given timestamps that are whole seconds or whose microseconds end in zeros (PostgreSQL's
    # timestamp text drops those zeros; isoformat() writes six digits or none)
    use_export_workers(monkeypatch, workers)
    monkeypatch.setattr(exports, "PAGE", 4)
    stamps = [dt.datetime(2026, 1, 2, 3, 4, 5, us, tzinfo=dt.UTC) for us in (0, 500000, 120000, 1, 999999)]
    for person, stamp in zip(varied, stamps, strict=False):
        Person.objects.filter(pk=person.pk).update(created_at=stamp, updated_at=stamp + dt.timedelta(microseconds=10))
    # when
    text = body(exports.export_people(user=staff_user, fmt="csv"))
    # then the reference's bytes, with every timestamp as isoformat() writes it
    assert text == _reference_csv(staff_user)
    rows = {r["Rapport ID"]: r for r in csv.DictReader(io.StringIO(text.decode("utf-8-sig")))}
    for person, stamp in zip(varied, stamps, strict=False):
        row = rows[str(person.pk)]
        assert (row["Created"], row["Updated"]) == (stamp.isoformat(), (stamp + dt.timedelta(microseconds=10)).isoformat())
