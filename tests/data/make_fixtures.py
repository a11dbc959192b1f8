"""Writes the import fixtures in tests/data/ the way real tools write them (run once, commit the output).

    .venv/bin/python tests/data/make_fixtures.py

- ``outlook_contacts.csv``: Outlook's "Comma Separated Values" export saved as Unicode — UTF-16 LE
  with a BOM, CRLF, every field quoted, the full Outlook header, a multi-line street in quotes,
  "0/0/00" for empty birthdays, categories separated by ";".
- ``google_contacts.csv``: Google Contacts' export (2020+ format) — UTF-8 without BOM, CRLF,
  "E-mail 1 - Label"/"- Value" pairs, several values in one cell joined by " ::: ", labels with
  "* " system groups.
- ``contacts_v30.vcf``: Apple/Android style vCard 3.0, several cards, lines folded at 75 octets,
  a quoted-printable property with a soft line break, a base64 PHOTO, item groups with X-ABLabel.
- ``contacts_v21.vcf``: vCard 2.1 (old Outlook/Nokia): bare TYPE params, QUOTED-PRINTABLE with
  CHARSET, soft line breaks, an unindented base64 PHOTO block ended by a blank line.
- ``contacts_v40.vcf``: vCard 4.0 with TEL;VALUE=uri:tel:…, TYPE="work,voice", PREF=1.
- ``contacts.xlsx``: made with openpyxl: a "Contacts" sheet (a phone typed as a number, real date
  cells) and a second sheet.
- ``windows1252_semicolon.csv``: a European Excel "CSV (semicolon)" export in Windows-1252.
"""

from __future__ import annotations

import codecs
import datetime as dt
from pathlib import Path

HERE = Path(__file__).resolve().parent

OUTLOOK_HEADERS = [
    "Title", "First Name", "Middle Name", "Last Name", "Suffix", "Company", "Department", "Job Title",
    "Business Street", "Business Street 2", "Business Street 3", "Business City", "Business State",
    "Business Postal Code", "Business Country/Region", "Home Street", "Home Street 2", "Home Street 3",
    "Home City", "Home State", "Home Postal Code", "Home Country/Region", "Other Street", "Other Street 2",
    "Other Street 3", "Other City", "Other State", "Other Postal Code", "Other Country/Region",
    "Assistant's Phone", "Business Fax", "Business Phone", "Business Phone 2", "Callback", "Car Phone",
    "Company Main Phone", "Home Fax", "Home Phone", "Home Phone 2", "ISDN", "Mobile Phone", "Other Fax",
    "Other Phone", "Pager", "Primary Phone", "Radio Phone", "TTY/TDD Phone", "Telex", "Account",
    "Anniversary", "Assistant's Name", "Billing Information", "Birthday", "Business Address PO Box",
    "Categories", "Children", "Directory Server", "E-mail Address", "E-mail Type", "E-mail Display Name",
    "E-mail 2 Address", "E-mail 2 Type", "E-mail 2 Display Name", "E-mail 3 Address", "E-mail 3 Type",
    "E-mail 3 Display Name", "Gender", "Government ID Number", "Hobby", "Home Address PO Box", "Initials",
    "Internet Free Busy", "Keywords", "Language", "Location", "Manager's Name", "Mileage", "Notes",
    "Office Location", "Organizational ID Number", "Other Address PO Box", "Priority", "Private",
    "Profession", "Referred By", "Sensitivity", "Spouse", "User 1", "User 2", "User 3", "User 4", "Web Page",
]

OUTLOOK_ROWS = [
    {"Title": "Dr.", "First Name": "Zoë", "Last Name": "Ashworth", "Company": "Analytical Engines Ltd",
     "Job Title": "Head of Research", "Business Street": "12 St James's Square\r\nFloor 3",
     "Business City": "London", "Business Postal Code": "SW1Y 4JH",
     "Business Country/Region": "United Kingdom", "Business Phone": "+44 20 7946 0018",
     "Mobile Phone": "07911 123456", "E-mail Address": "zoe.ashworth@engines.example",
     "E-mail Type": "SMTP", "E-mail Display Name": "Zoë Ashworth (zoe.ashworth@engines.example)",
     "E-mail 2 Address": "zoe@home.example", "E-mail 2 Type": "SMTP", "Categories": "VIP;Customers",
     "Notes": "Met at the Manchester trade fair.\r\nPrefers email.", "Web Page": "www.engines.example",
     "Birthday": "0/0/00", "Anniversary": "0/0/00"},
    {"First Name": "Łukasz", "Last Name": "Nowak", "Company": "Wrocław Widgets",
     "Job Title": "Buyer", "Home Street": "Flat 2, 7 Canal Street", "Home City": "Manchester",
     "Home Postal Code": "M1 3HW", "Home Phone": "0161 496 0000", "E-mail Address": "l.nowak@widgets.example",
     "E-mail Type": "SMTP", "Categories": "Customers", "Birthday": "0/0/00", "Anniversary": "0/0/00"},
    {"First Name": "Grace", "Middle Name": "Brewster", "Last Name": "Hopper", "Company": "Navy Compilers",
     "Business Phone": "+1 202-555-0101", "E-mail Address": "grace@navy.example", "E-mail Type": "SMTP",
     "Birthday": "12/9/1906", "Anniversary": "0/0/00"},
    {"First Name": "Broken", "Last Name": "Address", "E-mail Address": "not-an-email@", "E-mail Type": "SMTP",
     "Birthday": "0/0/00", "Anniversary": "0/0/00"},
    # The same person as the first row, exported twice (a second Outlook folder).
    {"First Name": "Zoe", "Last Name": "Ashworth", "E-mail Address": "Zoe.Ashworth@Engines.Example",
     "E-mail Type": "SMTP", "Home Phone": "020 7946 0999", "Birthday": "0/0/00", "Anniversary": "0/0/00"},
]
OUTLOOK_DEFAULTS = {"Gender": "Unspecified", "Priority": "Normal", "Private": "False", "Sensitivity": "Normal"}

GOOGLE_HEADERS = [
    "First Name", "Middle Name", "Last Name", "Phonetic First Name", "Phonetic Middle Name",
    "Phonetic Last Name", "Name Prefix", "Name Suffix", "Nickname", "File As", "Organization Name",
    "Organization Title", "Organization Department", "Birthday", "Notes", "Photo", "Labels",
    "E-mail 1 - Label", "E-mail 1 - Value", "E-mail 2 - Label", "E-mail 2 - Value",
    "Phone 1 - Label", "Phone 1 - Value", "Phone 2 - Label", "Phone 2 - Value",
    "Address 1 - Label", "Address 1 - Formatted", "Address 1 - Street", "Address 1 - City",
    "Address 1 - PO Box", "Address 1 - Region", "Address 1 - Postal Code", "Address 1 - Country",
    "Address 1 - Extended Address", "Website 1 - Label", "Website 1 - Value",
]
GOOGLE_ROWS = [
    {"First Name": "Ada", "Last Name": "Lovelace", "Nickname": "Ada", "Name Prefix": "Lady",
     "Organization Name": "Analytical Engines Ltd", "Organization Title": "Analyst",
     "Labels": "* myContacts ::: Friends ::: VIP", "E-mail 1 - Label": "* Home",
     "E-mail 1 - Value": "ada@example.com ::: ada.lovelace@example.org", "E-mail 2 - Label": "Work",
     "E-mail 2 - Value": "ada@engines.example", "Phone 1 - Label": "Mobile", "Phone 1 - Value": "07987 654321",
     "Phone 2 - Label": "Work", "Phone 2 - Value": "+44 20 7946 0123", "Address 1 - Label": "Home",
     "Address 1 - Formatted": "10 Downing Lane\nLondon\nNW1 2AB\nGB", "Address 1 - Street": "10 Downing Lane",
     "Address 1 - City": "London", "Address 1 - Postal Code": "NW1 2AB", "Address 1 - Country": "GB",
     "Website 1 - Label": "Profile", "Website 1 - Value": "https://ada.example.com",
     "Notes": "Wrote the first program, \"Note G\".", "Photo": "https://lh3.googleusercontent.com/a/photo"},
    {"First Name": "Charles", "Last Name": "Babbage", "Labels": "* myContacts ::: * starred",
     "E-mail 1 - Label": "* Other", "E-mail 1 - Value": "charles@engines.example",
     "Phone 1 - Label": "Home", "Phone 1 - Value": "+44 161 496 0111", "Birthday": "1791-12-26"},
    {"First Name": "Mary", "Last Name": "Somerville", "E-mail 1 - Label": "* Home",
     "E-mail 1 - Value": "mary@example.net", "Organization Name": "Royal Society", "Organization Title": "Fellow"},
]


def main() -> None:
    write_outlook()
    write_google()
    write_vcards()
    write_xlsx()
    write_windows1252()
    print("wrote", ", ".join(sorted(p.name for p in HERE.iterdir() if p.suffix in (".csv", ".vcf", ".xlsx"))))


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def write_outlook() -> None:
    lines = [",".join(_quote(h) for h in OUTLOOK_HEADERS)]
    for row in OUTLOOK_ROWS:
        values = {**OUTLOOK_DEFAULTS, **row}
        lines.append(",".join(_quote(values.get(h, "")) for h in OUTLOOK_HEADERS))
    text = "\r\n".join(lines) + "\r\n"
    (HERE / "outlook_contacts.csv").write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))


def write_google() -> None:
    import csv
    import io

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(GOOGLE_HEADERS)
    for row in GOOGLE_ROWS:
        writer.writerow([row.get(h, "") for h in GOOGLE_HEADERS])
    (HERE / "google_contacts.csv").write_bytes(buffer.getvalue().encode("utf-8"))


def _fold(line: str) -> str:
    """RFC 6350 folding: at most 75 octets per line, continuation lines start with a space."""
    data = line.encode("utf-8")
    parts = []
    limit = 75
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # never split a UTF-8 sequence
            cut -= 1
        parts.append(data[:cut].decode("utf-8"))
        data = data[cut:]
        limit = 74
    parts.append(data.decode("utf-8"))
    return "\r\n ".join(parts)


PHOTO = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD/" * 2


def write_vcards() -> None:
    v30 = [
        ["BEGIN:VCARD", "VERSION:3.0", "PRODID:-//Apple Inc.//iPhone OS 17.0//EN",
         "N:Lovelace;Ada;Augusta;Lady;", "FN:Lady Ada Augusta Lovelace", "ORG:Analytical Engines Ltd;Research;",
         "TITLE:Analyst", "EMAIL;type=INTERNET;type=HOME;type=pref:ada@example.com",
         "EMAIL;type=INTERNET;type=WORK:ada@engines.example", "TEL;type=CELL;type=VOICE;type=pref:07987 654321",
         "item1.TEL:+44 20 7946 0123", "item1.X-ABLabel:_$!<Other>!$_",
         "ADR;type=HOME;type=pref:;;10 Downing Lane;London;;NW1 2AB;United Kingdom",
         "NOTE:Wrote the first published algorithm for the Analytical Engine\\, and foresaw that "
         "machines could compose music. This note is long enough to be folded several times.",
         "item2.URL;type=pref:https\\://ada.example.com", "item2.X-ABLabel:_$!<HomePage>!$_",
         "CATEGORIES:VIP,Friends", f"PHOTO;ENCODING=b;TYPE=JPEG:{PHOTO}", "END:VCARD"],
        ["BEGIN:VCARD", "VERSION:3.0", "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen;;;",
         "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=BCrgen M=C3=BCller",
         "NOTE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Kunde seit 2019. Bevorzugt Anrufe am Vormittag\\, nie =\r\n"
         "am Wochenende.",
         "TEL;TYPE=WORK:+49 30 12345678", "EMAIL;TYPE=WORK:juergen.mueller@example.de",
         "ORG:Müller & Söhne GmbH", "END:VCARD"],
        ["BEGIN:VCARD", "VERSION:3.0", "N:Babbage;Charles;;;", "FN:Charles Babbage",
         "EMAIL;TYPE=INTERNET:charles@engines.example", "TEL;TYPE=FAX:+44 161 496 0999",
         "TEL;TYPE=HOME:+44 161 496 0111", "END:VCARD"],
        ["BEGIN:VCARD", "VERSION:3.0", "FN:Unreadable", "EMAIL:broken-address", "END:VCARD"],
    ]
    text = ""
    for card in v30:
        text += "".join((_fold(line) if not line.startswith(("NOTE;CHARSET")) else line) + "\r\n"
                        for line in card)
    (HERE / "contacts_v30.vcf").write_bytes(text.encode("utf-8"))

    v21 = ("BEGIN:VCARD\r\nVERSION:2.1\r\n"
           "N;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:Fran=E7ois;Fran=E7oise;;Mme;\r\n"
           "FN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:Fran=E7oise Fran=E7ois\r\n"
           "TEL;CELL:+33 6 12 34 56 78\r\nTEL;WORK;VOICE:+33 1 23 45 67 89\r\n"
           "EMAIL;PREF;INTERNET:francoise@example.fr\r\n"
           "ADR;HOME;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:;;12 rue de l'=C9glise=0D=0A=\r\n"
           "B=E2timent B;Lyon;;69001;France\r\n"
           "PHOTO;ENCODING=BASE64;TYPE=JPEG:\r\n"
           "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsO\r\n"
           "CwkJDRENDg8QEBEQCgwSExIQEw8QEBD/\r\n\r\n"
           "ORG:Lyon Looms\r\nTITLE:Directrice\r\nEND:VCARD\r\n")
    (HERE / "contacts_v21.vcf").write_bytes(v21.encode("latin-1"))

    v40 = ("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Grace Hopper\r\nN:Hopper;Grace;Brewster;Rear Admiral;\r\n"
           'TEL;VALUE=uri;TYPE="work,voice";PREF=1:tel:+1-202-555-0101\r\n'
           "EMAIL;TYPE=work:grace@navy.example\r\nORG:Navy Compilers\r\nLANG:en-US\r\n"
           "TZ;VALUE=text:America/New_York\r\nEND:VCARD\r\n")
    (HERE / "contacts_v40.vcf").write_bytes(v40.encode("utf-8"))


def write_xlsx() -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Contacts"
    sheet.append(["Given name", "Family name", "Email", "Mobile", "Company", "Job title", "Start date",
                  "Country", "Tags", "Newsletter opt-in"])
    sheet.append(["Hedy", "Lamarr", "hedy@example.com", 2025550147, "Frequency Hopping Inc", "Inventor",
                  dt.datetime(2021, 3, 1), "US", "Inventors; VIP", "yes"])
    sheet.append(["Alan", "Turing", "alan@bletchley.example", "07812 345678", "Bletchley Park", "Cryptanalyst",
                  dt.datetime(2020, 9, 4), "GB", "Inventors", "no"])
    sheet.append(["Katherine", "Johnson", "katherine@nasa.example", None, "NASA", "Mathematician",
                  None, "United States", "", ""])
    sheet.append([None, None, None, None, None, None, None, None, None, None])
    sheet.append(["Bad", "Date", "bad.date@example.com", None, "Somewhere", "", "31/02/2020", "", "", ""])
    other = workbook.create_sheet("Suppliers")
    other.append(["Name", "Email"])
    other.append(["Edsger Dijkstra", "edsger@example.nl"])
    workbook.save(HERE / "contacts.xlsx")


def write_windows1252() -> None:
    text = ("Vorname;Nachname;E-Mail;Telefon;Firma;Notizen\r\n"
            "Jürgen;Müller;juergen.mueller@example.de;+49 30 12345678;Müller & Söhne GmbH;Preis: 50 €\r\n"
            "Françoise;Dürer;f.durer@example.fr;+33 1 23 45 67 89;Société Générale;\"Zwei\r\nZeilen\"\r\n")
    (HERE / "windows1252_semicolon.csv").write_bytes(text.encode("cp1252"))


if __name__ == "__main__":
    main()
