"""A3 — mapping: suggestions from headers, Outlook/Google presets, split and join, date formats."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapport.imports.mapping import (
    MappingError,
    compile_mapping,
    detect_preset,
    normalise_label,
    parse_date,
    suggest_mapping,
    validate_mapping,
)
from rapport.imports.records import build_record
from rapport.imports.sources import inspect_source
from rapport.imports.tests.conftest import DATA


def headers_of(name: str) -> list[str]:
    return inspect_source(lambda: open(DATA / name, "rb")).headers


def targets(mapping: dict) -> dict[str, tuple[str, str]]:
    return {h: (r["target"], r.get("label", "")) for h, r in mapping["columns"].items()}


def test_outlook_headers_are_recognised_and_mapped_without_asking():
    # given the 92 columns of an Outlook export
    headers = headers_of("outlook_contacts.csv")
    # when
    mapping = suggest_mapping(headers)
    # then
    assert mapping["preset"] == "outlook"
    t = targets(mapping)
    assert t["Title"] == ("honorific", "") and t["Job Title"] == ("title", "")
    assert t["E-mail 2 Address"] == ("email", "") and "E-mail Type" not in t and "E-mail Display Name" not in t
    assert t["Mobile Phone"] == ("phone", "mobile") and t["Business Phone"] == ("phone", "work")
    assert t["Home Street"] == ("address", "home") and t["Business Postal Code"] == ("address", "work")
    assert "Business Fax" not in t and "Birthday" not in t and "Assistant's Phone" not in t
    assert t["Categories"] == ("tags", "")


def test_google_headers_pair_values_with_their_label_columns():
    headers = headers_of("google_contacts.csv")
    mapping = suggest_mapping(headers)
    assert mapping["preset"] == "google" and detect_preset(headers) == "google"
    t = targets(mapping)
    assert t["E-mail 1 - Value"] == ("email", "") and t["E-mail 1 - Label"] == ("label", "")
    assert t["Address 1 - Formatted"] == ("address", "")
    assert "Address 1 - Street" not in t  # the formatted address wins over its parts
    assert t["Labels"] == ("tags", "") and t["Nickname"] == ("preferred_name", "")
    # and applying it: " ::: " splits, labels come from the paired column, system groups dropped
    compiled = compile_mapping(mapping, headers)
    row = dict.fromkeys(headers, "")
    row.update({"E-mail 1 - Label": "* Home", "E-mail 1 - Value": "a@example.com ::: b@example.com",
                "Labels": "* myContacts ::: Friends"})
    values = compiled.apply([row[h] for h in headers])
    assert {(v.target, v.value, v.label) for v in values} == {
        ("email", "a@example.com", "home"), ("email", "b@example.com", "home"), ("tags", "Friends", "")}


@pytest.mark.parametrize(("header", "expected"), [
    ("First name", "given_name"), ("surname", "family_name"), ("Full Name", "full_name"),
    ("Email Address", "email"), ("Mobile", "phone"), ("Telefon", "phone"), ("Company", "organisation"),
    ("Job title", "title"), ("Tags", "tags"), ("Website", "url"), ("Twitter", "social"),
    ("Country", "country"), ("Time zone", "timezone"), ("Newsletter opt-in", "consent_email"),
    ("SMS consent", "consent_sms"), ("Consent date", "consent_date"), ("Postal mailing opt-in", "consent_post"),
    ("Favourite colour", None),
])
def test_generic_headers_are_suggested_by_name(header, expected):
    mapping = suggest_mapping([header, "Other"])
    assert mapping["columns"].get(header, {}).get("target") == expected


def test_address_columns_with_one_label_are_joined_in_file_order():
    headers = ["Name", "Street", "City", "Postcode", "Work street"]
    mapping = {"columns": {"Name": {"target": "full_name"}, "Street": {"target": "address", "label": "home"},
                           "City": {"target": "address", "label": "home"},
                           "Postcode": {"target": "address", "label": "home"},
                           "Work street": {"target": "address", "label": "work"}}}
    values = compile_mapping(mapping, headers).apply(["Dr Ada Lovelace", "1 High St", "", "AB1 2CD", "2 Mill Rd"])
    assert [(v.target, v.value, v.label) for v in values] == [
        ("full_name", "Dr Ada Lovelace", ""), ("address", "1 High St\nAB1 2CD", "home"),
        ("address", "2 Mill Rd", "work")]
    record = build_record(2, values)
    assert record.person == {"honorific": "Dr", "given_name": "Ada", "family_name": "Lovelace"}


def test_custom_date_format_and_split_separator():
    headers = ["Email", "Joined"]
    mapping = {"columns": {"Email": {"target": "email"}, "Joined": {"target": "start_date"}},
               "date_format": "%m/%d/%Y", "split": "|"}
    values = compile_mapping(mapping, headers).apply(["a@example.com|b@example.com", "03/31/2024"])
    record = build_record(2, values)
    assert [p.normalised for p in record.points] == ["a@example.com", "b@example.com"]
    assert record.start_date == dt.date(2024, 3, 31)
    bad = build_record(3, compile_mapping(mapping, headers).apply(["c@example.com", "31/03/2024"]))
    assert bad.errors == [("Joined", "'31/03/2024' is not a date in the format %m/%d/%Y (e.g. 03/31/2024).")]


def test_invalid_mappings_are_refused_with_field_errors():
    with pytest.raises(MappingError) as caught:
        validate_mapping({"columns": {"A": {"target": "shoe_size"}, "B": {"target": "start_date",
                                                                          "date_format": "%H:%M"}}})
    assert set(caught.value.field_errors) == {"columns.A", "columns.B"}
    with pytest.raises(MappingError, match="Map at least one column"):
        compile_mapping({"columns": {}}, ["A"])


@pytest.mark.parametrize(("text", "label"), [("* Home", "home"), ("Business", "work"), ("CELL", "mobile"),
                                             ("_$!<Mobile>!$_", "mobile"), ("", ""), ("Profile", "profile")])
def test_labels_are_normalised(text, label):
    assert normalise_label(text) == label


FORMATS = ["%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d", "%d.%m.%Y", "%d %b %Y", "%Y%m%d"]


@given(day=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)), fmt=st.sampled_from(FORMATS))
def test_any_date_written_in_a_format_reads_back_in_that_format(day, fmt):
    assert parse_date(day.strftime(fmt), fmt) == day


@given(day=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_without_a_format_iso_and_day_first_are_understood(day):
    assert parse_date(day.isoformat()) == day
    assert parse_date(day.strftime("%d/%m/%Y")) == day


def test_empty_outlook_dates_are_blank_not_errors():
    assert parse_date("0/0/00") is None and parse_date("") is None
