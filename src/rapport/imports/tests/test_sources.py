"""A3 — reading files: encodings, dialects, Excel, vCard, and bad files that must fail clearly."""

from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import os
import zipfile

import pytest

from rapport.imports.mapping import suggest_mapping
from rapport.imports.sources import MAX_COLUMNS, FileProblem, inspect_source, iter_rows
from rapport.imports.tests.conftest import DATA


def opener(data: bytes):
    return lambda: io.BytesIO(data)


def fixture(name: str):
    return lambda: open(DATA / name, "rb")


# ------------------------------------------------------------------------------ formats


def test_outlook_unicode_export_is_utf16_with_every_field_quoted():
    # given Outlook's export saved as Unicode (UTF-16 LE, BOM, CRLF)
    raw = (DATA / "outlook_contacts.csv").read_bytes()
    assert raw.startswith(codecs.BOM_UTF16_LE)
    # when
    info = inspect_source(fixture("outlook_contacts.csv"))
    # then
    assert (info.format, info.encoding, info.delimiter, info.total_rows) == ("csv", "utf-16", ",", 5)
    assert info.headers[:4] == ["Title", "First Name", "Middle Name", "Last Name"]
    rows = list(iter_rows(fixture("outlook_contacts.csv"), info))
    first = dict(zip(info.headers, rows[0].values, strict=True))
    assert first["First Name"] == "Zoë"
    assert first["Business Street"] == "12 St James's Square\r\nFloor 3"  # a quoted newline stays in its field
    assert [r.number for r in rows] == [2, 3, 4, 5, 6]


def test_google_export_is_utf8_and_recognised():
    info = inspect_source(fixture("google_contacts.csv"))
    assert (info.encoding, info.delimiter, info.total_rows) == ("utf-8", ",", 3)
    assert suggest_mapping(info.headers)["preset"] == "google"


def test_windows_1252_semicolon_file_with_quoted_newline():
    info = inspect_source(fixture("windows1252_semicolon.csv"))
    assert (info.encoding, info.delimiter, info.total_rows) == ("cp1252", ";", 2)
    rows = list(iter_rows(fixture("windows1252_semicolon.csv"), info))
    assert rows[0].values[:2] == ["Jürgen", "Müller"]
    assert rows[0].values[5] == "Preis: 50 €"
    assert rows[1].values[5] == "Zwei\r\nZeilen"


@pytest.mark.parametrize(("data", "encoding", "delimiter"), [
    (codecs.BOM_UTF8 + "Name\tEmail\r\nÅsa\tasa@example.se\r\n".encode(), "utf-8-sig", "\t"),
    (b"Name|Email\nJo|jo@example.com\n", "utf-8", "|"),
    (codecs.BOM_UTF16_BE + "Name;Email\r\nJo;jo@example.com\r\n".encode("utf-16-be"), "utf-16", ";"),
    ("Name,Email\r\nJo,jo@example.com\r\n".encode("utf-16-le"), "utf-16-le", ","),
])
def test_encodings_and_dialects_are_detected(data, encoding, delimiter):
    info = inspect_source(opener(data))
    assert (info.encoding, info.delimiter) == (encoding, delimiter)
    [row] = list(iter_rows(opener(data), info))
    assert row.values[0] in ("Åsa", "Jo")
    assert info.headers == ["Name", "Email"]


def test_declared_encoding_and_delimiter_are_used():
    data = "Name;Email\nJosé;jose@example.es\n".encode("latin-1")
    info = inspect_source(opener(data), encoding="latin-1", delimiter=";")
    [row] = list(iter_rows(opener(data), info))
    assert row.values == ["José", "jose@example.es"]


def test_xlsx_first_sheet_or_chosen_sheet_with_typed_cells():
    info = inspect_source(fixture("contacts.xlsx"))
    assert (info.format, info.sheet, info.sheets, info.total_rows) == ("xlsx", "Contacts", ["Contacts", "Suppliers"], 4)
    rows = list(iter_rows(fixture("contacts.xlsx"), info))
    hedy = dict(zip(info.headers, rows[0].values, strict=True))
    assert hedy["Mobile"] == "2025550147"                    # a number cell, without ".0"
    assert hedy["Start date"] == dt.datetime(2021, 3, 1)    # a real date cell
    assert [r.number for r in rows] == [2, 3, 4, 6]         # the empty sheet row is skipped, numbers kept
    suppliers = inspect_source(fixture("contacts.xlsx"), sheet="Suppliers")
    assert suppliers.headers == ["Name", "Email"] and suppliers.total_rows == 1


def test_vcard_30_with_quoted_printable_folding_and_photo():
    info = inspect_source(fixture("contacts_v30.vcf"))
    assert (info.format, info.total_rows) == ("vcard", 4)
    rows = list(iter_rows(fixture("contacts_v30.vcf"), info))
    ada = {(m.target, m.value) for m in rows[0].mapped}
    assert ("family_name", "Lovelace") in ada and ("honorific", "Lady") in ada
    assert ("organisation", "Analytical Engines Ltd") in ada and ("tags", "VIP") in ada
    note = next(m.value for m in rows[0].mapped if m.target == "notes")
    assert "machines could compose music. This note is long enough" in note  # unfolded
    juergen = {m.target: m.value for m in rows[1].mapped}
    assert juergen["given_name"] == "Jürgen"  # quoted-printable UTF-8
    assert juergen["notes"] == "Kunde seit 2019. Bevorzugt Anrufe am Vormittag, nie am Wochenende."  # soft break
    labels = {(m.value, m.label) for m in rows[0].mapped if m.target == "phone"}
    assert ("+44 20 7946 0123", "other") in labels  # item1.X-ABLabel
    babbage = [m for m in rows[2].mapped if m.target == "phone"]
    assert [m.value for m in babbage] == ["+44 161 496 0111"]  # the fax is not a phone to import


def test_vcard_21_latin1_quoted_printable_and_unindented_base64_photo():
    info = inspect_source(fixture("contacts_v21.vcf"))
    assert info.encoding == "utf-8" and info.total_rows == 1  # quoted-printable keeps the file ASCII
    [row] = list(iter_rows(fixture("contacts_v21.vcf"), info))
    values = {m.target: m.value for m in row.mapped}
    assert values["family_name"] == "François" and values["title"] == "Directrice"
    address = next(m for m in row.mapped if m.target == "address")
    assert address.value == "12 rue de l'Église\nBâtiment B\nLyon\n69001\nFrance" and address.label == "home"
    assert {(m.value, m.label) for m in row.mapped if m.target == "phone"} == {
        ("+33 6 12 34 56 78", "mobile"), ("+33 1 23 45 67 89", "work")}


def test_vcard_40_tel_uri_and_pref():
    [row] = list(iter_rows(fixture("contacts_v40.vcf"), inspect_source(fixture("contacts_v40.vcf"))))
    values = {m.target: m.value for m in row.mapped}
    assert values["phone"] == "+1-202-555-0101"
    assert values["language"] == "en-US" and values["timezone"] == "America/New_York"


def test_an_unreadable_card_is_a_row_problem_not_a_file_failure():
    data = (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Good\r\nEND:VCARD\r\n"
            b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Cut;Short\r\n")
    info = inspect_source(opener(data))
    rows = list(iter_rows(opener(data), info))
    assert rows[0].problem == "" and "END:VCARD" in rows[1].problem


def test_resume_skips_rows_already_done():
    info = inspect_source(fixture("outlook_contacts.csv"))
    assert [r.number for r in iter_rows(fixture("outlook_contacts.csv"), info, start=3)] == [5, 6]


# ---------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(("data", "message"), [
    (b"", "The file is empty."),
    (b"\n\r\n  \n", "The file is empty."),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + os.urandom(2000), "does not look like a text file"),
    (bytes(range(256)) * 40, "does not look like a text file"),
    (b"First Name,Last Name,Email\r\n", "header row but no data rows"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old Excel .xls"),
    (b'Name,Notes\r\nJo,"' + b"x" * 200_000 + b"\r\n", "longer than 128 KiB"),
])
def test_bad_files_fail_with_a_clear_message(data, message):
    with pytest.raises(FileProblem) as caught:
        inspect_source(opener(data))
    assert message in str(caught.value)


def test_ten_thousand_columns_are_refused_at_the_header():
    header = ",".join(f"col{i}" for i in range(10_000)).encode()
    with pytest.raises(FileProblem, match=rf"10,000 columns; Rapport imports at most {MAX_COLUMNS}\."):
        inspect_source(opener(header + b"\r\n" + b"," * 9_999 + b"\r\n"))


def test_a_zip_that_is_not_a_workbook():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(FileProblem, match=r"not an Excel \.xlsx workbook"):
        inspect_source(opener(buffer.getvalue()))


@pytest.mark.parametrize(("declared", "data", "message"), [
    ("utf-8", "Name\nMüller\n".encode("cp1252"), "not valid UTF-8: byte 6 (line 2)"),
    ("cp1252", "Name\nMüller\n".encode(), "but it is UTF-8"),
    ("utf-16", b"Name\nJo\n", "but it is not UTF-16"),
    ("utf-8", "Name\nJo\n".encode("utf-16"), "but it is UTF-16"),
])
def test_a_wrong_declared_encoding_is_refused(declared, data, message):
    with pytest.raises(FileProblem) as caught:
        inspect_source(opener(data), encoding=declared)
    assert message in str(caught.value)
    assert caught.value.field_errors == {"encoding": ["Does not match the file."]}


class GigabyteLine(io.RawIOBase):
    """A 1 GiB file that is one line, produced on demand (never held in memory), counting reads."""

    SIZE = 1024 ** 3

    def __init__(self) -> None:
        self.position = 0
        self.delivered = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self.position >= self.SIZE:
            return 0
        header = b"Name,Notes\r\nJo,"
        count = min(len(buffer), self.SIZE - self.position)
        chunk = bytearray(b"a" * count)
        if self.position < len(header):
            start = header[self.position:self.position + count]
            chunk[:len(start)] = start
        buffer[:count] = chunk
        self.position += count
        self.delivered += count
        return count


def test_a_gigabyte_line_fails_fast_without_reading_the_file():
    # given a 1 GiB single-line file, generated lazily
    streams: list[GigabyteLine] = []

    def open_huge():
        stream = GigabyteLine()
        streams.append(stream)
        return io.BufferedReader(stream)

    # when
    with pytest.raises(FileProblem, match="Line 2 is longer than 1 MiB"):
        inspect_source(open_huge)
    # then it stopped after a few MiB, not a gigabyte
    assert sum(s.delivered for s in streams) < 16 * 1024 ** 2


# ---------------------------------------------------------------------------------- JSON


def test_json_array_is_read_object_by_object_pretty_or_one_per_line():
    people = [{"given_name": "Ada", "family_name": "Lovelace", "tags": ["vip"],
               "contact_points": [{"kind": "email", "value": "ada@example.com", "label": "work", "primary": True}],
               "employments": [{"organisation": "Old Co", "title": "", "start_date": "2001-01-01",
                                "end_date": "2002-01-01"},
                               {"organisation": "Engines", "title": "Analyst", "start_date": "2021-03-01",
                                "end_date": None}]},
              {"given_name": "Alan", "notes": "x" * 100_000}, "not a person"]
    for text in (json.dumps(people, indent=2), "[" + ",\n".join(json.dumps(p) for p in people) + "\n]\n"):
        info = inspect_source(opener(text.encode()))
        assert (info.format, info.total_rows) == ("json", 3)
        rows = list(iter_rows(opener(text.encode()), info))
        ada = {(m.target, m.value if m.target != "start_date" else m.value[0], m.label) for m in rows[0].mapped}
        assert ada == {("given_name", "Ada", ""), ("family_name", "Lovelace", ""), ("tags", "vip", ""),
                       ("email", "ada@example.com", "work"), ("organisation", "Engines", ""),
                       ("title", "Analyst", ""), ("start_date", "2021-03-01", "")}
        assert rows[1].mapped[1].value == "x" * 100_000
        assert rows[2].problem == "Item 3 is not a person (a JSON object)."
        assert [r.number for r in iter_rows(opener(text.encode()), info, start=2)] == [3]


@pytest.mark.parametrize(("data", "message"), [
    (b'{"given_name": "Ada"}', "must be an array of people"),
    (b'[{"given_name": "Ada"},\n{"given_name": "Al', "not valid JSON"),
    (b'[{"given_name": "Ada"}', "not closed"),
    (b"[]", "holds no people"),
])
def test_bad_json_files_fail_with_a_clear_message(data, message):
    with pytest.raises(FileProblem, match=message):
        inspect_source(opener(data))
