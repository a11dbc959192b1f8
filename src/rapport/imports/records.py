"""A3 — one import row as a validated, normalised record, or the reasons it is invalid.

The same normalisers as the people services (I1, ``rapport.identity.normalise``) and the same
limits as the people models are applied, so an imported person is indistinguishable from one
typed into a form. Hard problems (an unreadable email, a bad date) make the row invalid and
it is not imported; soft ones (an unknown language tag) drop that value with a warning.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from nameparser import HumanName

from rapport.core.search import fold
from rapport.identity.normalise import InvalidIdentifier
from rapport.imports.fastnorm import normalise_point
from rapport.imports.mapping import CONSENT_TARGETS, MappedValue, parse_date

PERSON_FIELDS = ("honorific", "given_name", "middle_names", "family_name", "preferred_name",
                 "language", "timezone", "country", "notes")
MAX_LENGTHS = {"honorific": 32, "given_name": 100, "middle_names": 100, "family_name": 100,
               "preferred_name": 100, "language": 16, "timezone": 64, "country": 2,
               "organisation": 200, "title": 200}
MAX_NORMALISED = 320
MAX_TAG = 64
TRUE_WORDS = {"yes", "y", "true", "1", "x", "✓", "opted in", "opt-in", "optin", "subscribed", "granted",
              "ja", "oui", "si", "on"}
FALSE_WORDS = {"no", "n", "false", "0", "opted out", "opt-out", "optout", "unsubscribed", "withdrawn",
               "nein", "non", "off", "refused"}
COUNTRY_NAMES = {
    "united kingdom": "GB", "uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "united states": "US", "united states of america": "US",
    "usa": "US", "ireland": "IE", "germany": "DE", "deutschland": "DE", "france": "FR",
    "netherlands": "NL", "the netherlands": "NL", "belgium": "BE", "spain": "ES", "españa": "ES",
    "italy": "IT", "italia": "IT", "portugal": "PT", "canada": "CA", "australia": "AU",
    "new zealand": "NZ", "switzerland": "CH", "austria": "AT", "sweden": "SE", "norway": "NO",
    "denmark": "DK", "finland": "FI", "poland": "PL", "india": "IN", "japan": "JP",
}
_POINT_TARGETS = frozenset(("email", "phone", "address", "url", "social"))
_NAME_FIELDS = frozenset(PERSON_FIELDS) - {"notes"}  # notes are joined, not set once (build_record)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class PointValue(NamedTuple):
    kind: str
    value: str
    normalised: str
    search_key: str
    label: str
    column: str


@dataclass
class ImportRecord:
    number: int
    person: dict[str, str] = field(default_factory=dict)
    points: list[PointValue] = field(default_factory=list)
    organisation: str = ""
    title: str = ""
    start_date: dt.date | None = None
    tags: list[str] = field(default_factory=list)
    consents: dict[str, tuple[bool, str]] = field(default_factory=dict)  # channel -> (granted, column)
    consent_date: dt.date | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)     # (column, message)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def __reduce__(self) -> tuple:
        # a chunk's records travel from the read-ahead process (imports.pipeline): as one flat
        # tuple each, and plain tuples for the points, unpickling is several times cheaper
        return _record_from, (self.number, self.person, [tuple(p) for p in self.points], self.organisation,
                              self.title, self.start_date, self.tags, self.consents, self.consent_date,
                              self.errors, self.warnings)

    def identifiers(self) -> set[tuple[str, str]]:
        """Keys that identify one person on their own (kind, normalised)."""
        return {(p.kind, p.normalised) for p in self.points if p.kind in ("email", "phone", "social", "url")}

    def address_keys(self) -> set[tuple[str, str]]:
        """Postal addresses identify a person only together with the family name."""
        addresses = [p.normalised for p in self.points if p.kind == "address"]
        if not addresses:  # most rows: no need to fold the family name
            return set()
        family = fold(self.person.get("family_name", ""))
        if not family:
            return set()
        return {("address", f"{normalised}\x00{family}") for normalised in addresses}

    def display_name(self) -> str:
        first = self.person.get("preferred_name") or self.person.get("given_name", "")
        name = " ".join(p for p in (first, self.person.get("family_name", "")) if p)
        if name:
            return name
        return self.points[0].value if self.points else "(no name)"


def _record_from(number: int, person: dict[str, str], points: list[tuple], *rest: Any) -> ImportRecord:
    return ImportRecord(number, person, [PointValue(*p) for p in points], *rest)


def build_record(number: int, mapped: list[MappedValue], *, default_region: str | None = None) -> ImportRecord:
    """Validate and normalise one row's mapped values."""
    record = ImportRecord(number=number)
    person = record.person
    full_names: list[MappedValue] = []
    raw_points: list[MappedValue] = []
    for item in mapped:
        target = item.target
        if target in _POINT_TARGETS:  # the most common targets first
            raw_points.append(item)
        elif target in _NAME_FIELDS:
            _person_field(record, item)
        elif target == "full_name":
            full_names.append(item)
        elif target == "tags":
            tag = " ".join(str(item.value).split())
            if len(tag) > MAX_TAG:
                record.errors.append((item.column, f"A tag is at most {MAX_TAG} characters."))
            elif tag and tag not in record.tags:
                record.tags.append(tag)
        elif target in CONSENT_TARGETS:
            _consent(record, item)
        elif target in ("start_date", "consent_date"):
            raw, date_format = item.value
            try:
                value = parse_date(raw, date_format)
            except ValueError as err:
                record.errors.append((item.column, str(err)))
                continue
            setattr(record, target, value)
        elif target in ("organisation", "title"):
            text = " ".join(str(item.value).split())
            if _too_long(record, item.column, target, text):
                continue
            if not getattr(record, target):
                setattr(record, target, text)
        elif target == "notes":
            text = str(item.value).replace("\r\n", "\n").replace("\r", "\n").strip()
            person["notes"] = f"{person['notes']}\n{text}" if person.get("notes") else text
        elif target in PERSON_FIELDS:
            _person_field(record, item)
    if full_names and not (person.get("given_name") or person.get("family_name")):
        _split_full_name(record, full_names[0])
    region = person.get("country") or default_region
    seen: set[tuple[str, str]] = set()
    for item in raw_points:
        try:
            result = normalise_point(item.target, str(item.value), region=region)
        except InvalidIdentifier as err:
            record.errors.append((item.column, f"{item.value!s:.80}: {err}"))
            continue
        if len(result.normalised) > MAX_NORMALISED:
            record.errors.append((item.column, f"At most {MAX_NORMALISED} characters."))
            continue
        key = (item.target, result.normalised)
        if key in seen:
            continue
        seen.add(key)
        record.points.append(PointValue(item.target, str(item.value).strip(), result.normalised,
                                        result.search_key, (item.label or "")[:32], item.column))
    if record.valid and not (person.get("given_name") or person.get("family_name")
                             or person.get("preferred_name") or record.points):
        record.errors.append(("", "Give a name or at least one contact point."))
    return record


def _too_long(record: ImportRecord, column: str, name: str, text: str) -> bool:
    limit = MAX_LENGTHS.get(name)
    if limit is not None and len(text) > limit:
        record.errors.append((column, f"At most {limit} characters (this has {len(text)})."))
        return True
    return False


def _person_field(record: ImportRecord, item: MappedValue) -> None:
    name = item.target
    text = " ".join(str(item.value).split())
    if name == "country":
        code = _country_code(text)
        if not code:
            record.warnings.append((item.column, f"{text!r} is not a country Rapport knows; left blank."))
            return
        text = code
    elif name == "language" and not _LANGUAGE.match(text):
        record.warnings.append((item.column, f"{text!r} is not a language tag such as en-GB; left blank."))
        return
    elif name == "timezone" and text not in _timezones():
        record.warnings.append((item.column, f"{text!r} is not a timezone such as Europe/London; left blank."))
        return
    if _too_long(record, item.column, name, text):
        return
    if not record.person.get(name):
        record.person[name] = text
    elif name in ("given_name", "family_name", "middle_names") and text != record.person[name]:
        record.person[name] = f"{record.person[name]} {text}"[: MAX_LENGTHS[name]]


def _split_full_name(record: ImportRecord, item: MappedValue) -> None:
    name = HumanName(str(item.value))
    parts = {"honorific": name.title, "given_name": name.first, "middle_names": name.middle,
             "family_name": name.last}
    if name.nickname and not record.person.get("preferred_name"):
        parts["preferred_name"] = name.nickname
    for target, text in parts.items():
        text = " ".join(text.split())
        if text and not record.person.get(target) and not _too_long(record, item.column, target, text):
            record.person[target] = text


def _consent(record: ImportRecord, item: MappedValue) -> None:
    text = str(item.value).strip().lower()
    channel = item.target.removeprefix("consent_")
    if text in TRUE_WORDS:
        record.consents[channel] = (True, item.column)
    elif text in FALSE_WORDS:
        record.consents[channel] = (False, item.column)
    elif text:
        record.errors.append((item.column, f"{item.value!s:.40} is neither yes nor no."))


def _country_code(text: str) -> str:
    if len(text) == 2 and text.isalpha() and text.isascii():
        return text.upper()
    return COUNTRY_NAMES.get(text.lower(), "")


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def person_values(record: ImportRecord) -> dict[str, Any]:
    """The Person columns a new person gets from this record (name keys folded)."""
    values = {name: record.person.get(name, "") for name in PERSON_FIELDS}
    values["given_key"] = fold(values["given_name"])[:100]
    values["family_key"] = fold(values["family_name"])[:100]
    values["preferred_key"] = fold(values["preferred_name"])[:100]
    return values
