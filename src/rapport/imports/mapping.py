"""A3 — mapping file columns to Rapport's fields: suggestions, presets, split and join.

A mapping is plain data, the same in the wizard, the API, the CLI and saved templates::

    {"columns": {"First Name": {"target": "given_name"},
                 "Home Street": {"target": "address", "label": "home"},
                 "Start": {"target": "start_date", "date_format": "%d/%m/%Y"}},
     "date_format": "",        # default for date columns; "" = ISO or day-first
     "split": ";"}             # extra separator inside multi-value cells (" ::: " always splits)

Columns mapped to ``address`` with the same label are joined, in file order, into one
address; ``full_name`` is split into its parts; a column mapped to ``label`` names the kind
(home, work…) of the value column sharing its prefix (Google's "E-mail 1 - Label").
Outlook's and Google Contacts' exports are recognised by their headers (``detect_preset``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from rapport.core.errors import DomainError


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    group: str
    multi: bool = False  # several values per row (contact points, tags)


TARGETS: dict[str, Target] = {t.key: t for t in (
    Target("honorific", "Honorific (Mr, Dr…)", "Person"),
    Target("given_name", "Given name", "Person"),
    Target("middle_names", "Middle names", "Person"),
    Target("family_name", "Family name", "Person"),
    Target("preferred_name", "Preferred name / nickname", "Person"),
    Target("full_name", "Full name (split into parts)", "Person"),
    Target("language", "Language (BCP 47, e.g. en-GB)", "Person"),
    Target("timezone", "Timezone (e.g. Europe/London)", "Person"),
    Target("country", "Country (ISO code)", "Person"),
    Target("notes", "Notes", "Person"),
    Target("tags", "Tags", "Person", multi=True),
    Target("email", "Email", "Contact points", multi=True),
    Target("phone", "Phone", "Contact points", multi=True),
    Target("address", "Postal address (columns with one label are joined)", "Contact points", multi=True),
    Target("url", "Web address", "Contact points", multi=True),
    Target("social", "Social handle", "Contact points", multi=True),
    Target("label", "Label of the value column with the same prefix", "Contact points"),
    Target("organisation", "Organisation", "Job"),
    Target("title", "Job title", "Job"),
    Target("start_date", "Job start date", "Job"),
    Target("consent_email", "Marketing by email: yes/no", "Consent"),
    Target("consent_sms", "Marketing by SMS: yes/no", "Consent"),
    Target("consent_phone", "Marketing by phone: yes/no", "Consent"),
    Target("consent_post", "Marketing by post: yes/no", "Consent"),
    Target("consent_date", "Date consent was collected", "Consent"),
)}
CONTACT_TARGETS = ("email", "phone", "address", "url", "social")
CONSENT_TARGETS = ("consent_email", "consent_sms", "consent_phone", "consent_post")
DATE_TARGETS = ("start_date", "consent_date")
LABELS = ("home", "work", "mobile", "personal", "other", "main", "school")
GOOGLE_SEPARATOR = " ::: "


class MappingError(DomainError):
    title = "The mapping is not valid"
    code = "bad_mapping"


class MappedValue(NamedTuple):
    """One value of a row, already assigned to a Rapport field (a tuple: a file makes millions)."""

    target: str
    value: Any
    label: str = ""
    column: str = ""


# ------------------------------------------------------------------------------ presets

_OUTLOOK_SIGNATURE = {"First Name", "Last Name", "E-mail Address", "Business Phone", "Mobile Phone",
                      "Home Street", "Business Street", "Job Title", "Company"}
_GOOGLE_SIGNATURE = re.compile(r"^(E-mail|Phone|Address|Website) \d+ - (Value|Label|Type|Formatted)$")


def detect_preset(headers: Sequence[str]) -> str:
    """"outlook", "google" or "" from the header names alone."""
    names = set(headers)
    if len(names & _OUTLOOK_SIGNATURE) >= 6:
        return "outlook"
    if sum(1 for h in headers if _GOOGLE_SIGNATURE.match(h)) >= 2 and (
            {"First Name", "Given Name", "Name"} & names):
        return "google"
    return ""


def suggest_mapping(headers: Sequence[str]) -> dict[str, Any]:
    """A mapping for ``headers``: the Outlook/Google preset when recognised, else by name."""
    preset = detect_preset(headers)
    columns: dict[str, dict[str, str]] = {}
    for header in headers:
        rule = _suggest_column(header, preset)
        if rule:
            columns[header] = rule
    has_parts = any(r["target"] in ("given_name", "family_name") for r in columns.values())
    if has_parts:  # "Name" beside "Given Name"/"Family Name" would fight them; keep the parts
        columns = {h: r for h, r in columns.items() if r["target"] != "full_name"}
    # Component address columns are only joined when the file has no formatted address.
    if any(r["target"] == "address" and "formatted" in h.lower() for h, r in columns.items()):
        columns = {h: r for h, r in columns.items()
                   if r["target"] != "address" or "formatted" in h.lower()}
    return {"columns": columns, "date_format": "", "split": ";", "preset": preset}


_IGNORE = re.compile(r"fax|pager|telex|isdn|radio|tty|callback|assistant|e-?mail( \d)? display name|e-?mail( \d)? type$"
                     r"|yomi|phonetic|suffix|birthday|anniversary|gender|photo|file as|initials|"
                     r"billing|mileage|priority|sensitivity|private|directory server|spouse|children|"
                     r"hobby|manager|referred by|user \d|free busy|government|organizational id|"
                     r"po box|extended address|department|subject|location|profession|keywords|account$|"
                     r"short name|maiden name|nickname yomi|office location")


def _words_label(text: str) -> str:
    text = text.lower()
    for word, label in (("home", "home"), ("business", "work"), ("work", "work"), ("office", "work"),
                        ("company main", "work"), ("mobile", "mobile"), ("cell", "mobile"),
                        ("personal", "personal"), ("private", "personal"), ("other", "other"),
                        ("primary", ""), ("main", "main")):
        if word in text:
            return label
    return ""


def _suggest_column(header: str, preset: str) -> dict[str, str] | None:
    h = " ".join(header.lower().replace("_", " ").split())
    if re.match(r"^(rapport id|id|uuid)$", h):
        return None
    if re.search(r" - (label|type)$", h) or re.match(r"^(email|phone|address|web address|social) \d+ label$", h):
        return {"target": "label"}
    if re.match(r"^(e-?mail|phone|address|web address|website|social) \d+ label$", h):
        return {"target": "label"}
    if (h == "title" and preset == "outlook") or re.match(r"^(name prefix|prefix|salutation|honorific)$", h):
        return {"target": "honorific"}
    if _IGNORE.search(h):
        return None
    if re.match(r"^(first|given|fore) ?name$|^first$|^forename$|^vorname$|^pr[ée]nom$", h):
        return {"target": "given_name"}
    if re.match(r"^(middle|additional|other) names?$", h):
        return {"target": "middle_names"}
    if re.match(r"^(last|family|sur) ?name$|^surname$|^nachname$|^nom$", h):
        return {"target": "family_name"}
    if re.match(r"^(nick ?name|preferred name|known as)$", h):
        return {"target": "preferred_name"}
    if re.match(r"^(name|full name|display name|contact name|contact)$", h):
        return {"target": "full_name"}
    consent = _consent_target(h)
    if consent:
        return {"target": consent}
    if re.search(r"e-?mail", h):
        return {"target": "email", "label": _words_label(h)}
    if re.search(r"phone|mobile|\btel\b|telefon|t[ée]l[ée]phone|\bcell\b|handy|portable", h):
        return {"target": "phone", "label": _words_label(h)}
    if re.match(r"^address \d+ - formatted$", h):
        return {"target": "address"}
    if re.search(r"street|address|\bcity\b|\btown\b|\bstate\b|county|region|postcode|postal code|"
                 r"\bzip\b|country/region", h) and not re.search(r"web|e-?mail|ip address", h):
        if re.match(r"^(address \d+ - )", h):
            return {"target": "address"}
        return {"target": "address", "label": _words_label(h)}
    if re.match(r"^(country|country code)$", h):
        return {"target": "country"}
    if re.match(r"^(company|organi[sz]ation|employer|organi[sz]ation( 1)? - name|organi[sz]ation name|"
                r"company name|firma|unternehmen|soci[ée]t[ée]|entreprise)$", h):
        return {"target": "organisation"}
    if re.match(r"^(job title|position|role|occupation|organi[sz]ation( 1)? - title|organi[sz]ation title|"
                r"title)$", h):
        return {"target": "title"}
    if re.match(r"^(job start|start date|started|employment start)$", h):
        return {"target": "start_date"}
    if re.match(r"^(notes?|comments?|description|notizen|bemerkungen?|remarques?)$", h):
        return {"target": "notes"}
    if re.match(r"^(tags?|categories|labels|groups?|group membership)$", h):
        return {"target": "tags"}
    if re.search(r"web ?(page|site)|\burl\b|homepage|web address", h):
        return {"target": "url", "label": _words_label(h)}
    if re.search(r"twitter|linkedin|facebook|instagram|mastodon|social|handle", h):
        return {"target": "social"}
    if re.match(r"^(language|lang|locale|preferred language)$", h):
        return {"target": "language"}
    if re.match(r"^time ?zone$", h):
        return {"target": "timezone"}
    return None


def _consent_target(h: str) -> str:
    if not re.search(r"opt.?in|opt.?out|consent|permission|subscribed|newsletter", h):
        return ""
    if re.search(r"date|\bon\b|\bwhen\b|collected", h):
        return "consent_date"
    if re.search(r"\bsms\b|\btext\b", h):
        return "consent_sms"
    if re.search(r"phone|call|tele", h):
        return "consent_phone"
    if re.search(r"\bpost\b|postal|\bmail\b|\bletters?\b", h) and not re.search(r"e-?mail", h):
        return "consent_post"
    return "consent_email"


# ------------------------------------------------------------------------------ compile


@dataclass
class CompiledMapping:
    """A mapping bound to one file's headers, ready to apply to each row quickly."""

    headers: list[str]
    singles: list[tuple[int, str, str, str, int | None]]  # index, target, label, date fmt, label idx
    addresses: list[tuple[str, list[int]]]               # label, column indexes joined in order
    separators: tuple[str, ...]
    date_format: str

    def apply(self, values: Sequence[Any]) -> list[MappedValue]:
        """Turn one row's cells into mapped values (strings, dates from Excel kept as dates)."""
        out: list[MappedValue] = []
        append = out.append
        separators = self.separators
        for index, target, label, date_format, label_index, column, kind in self._plan():
            raw = values[index]
            if raw is None or raw == "":
                continue
            if label_index is not None:
                label = normalise_label(_text(values[label_index])) or label
            if kind == _DATE_VALUE:
                append(MappedValue(target, (raw, date_format or self.date_format), label, column))
                continue
            text = raw if raw.__class__ is str and raw[:1] != "'" else _text(raw)  # the usual cell as is
            if kind == _ONE_VALUE:
                text = text.strip()
                if text:
                    append(MappedValue(target, text, label, column))
            elif kind == _MULTI_VALUE:
                if target != "tags" and not any(sep in text for sep in separators):
                    text = text.strip()  # the usual cell holds one value: split_multi's answer, cheaper
                    if text:
                        append(MappedValue(target, text, label, column))
                    continue
                for part in split_multi(text, separators, target):
                    append(MappedValue(target, part, label, column))
        headers = self.headers
        for label, indexes in self.addresses:
            parts = [_text(values[i]).strip() for i in indexes]
            text = "\n".join(p for p in parts if p)
            if text:
                append(MappedValue("address", text, label, headers[indexes[0]]))
        return out

    def _plan(self) -> list[tuple[int, str, str, str, int | None, str, int]]:
        """``singles`` with each column's header and kind of value, worked out once per mapping."""
        plan = self.__dict__.get("_compiled")
        if plan is None:
            plan = [(index, target, label, date_format, label_index, self.headers[index],
                     _DATE_VALUE if target in DATE_TARGETS else _MULTI_VALUE if TARGETS[target].multi
                     else _ONE_VALUE)
                    for index, target, label, date_format, label_index in self.singles]
            self.__dict__["_compiled"] = plan
        return plan


_ONE_VALUE, _MULTI_VALUE, _DATE_VALUE = 0, 1, 2


def compile_mapping(mapping: dict[str, Any], headers: Sequence[str]) -> CompiledMapping:
    """Check ``mapping`` against the file's ``headers`` and prepare it; raises MappingError."""
    columns = validate_mapping(mapping)
    position = {h: i for i, h in enumerate(headers)}
    singles: list[tuple[int, str, str, str, int | None]] = []
    address_groups: dict[str, list[int]] = {}
    label_columns = {h for h, r in columns.items() if r["target"] == "label" and h in position}
    for header in headers:
        rule = columns.get(header)
        if not rule or rule["target"] == "label":
            continue
        index = position[header]
        target, label = rule["target"], rule.get("label", "")
        if target == "address":
            paired = _paired_label_column(header, label_columns)
            if paired is None:
                address_groups.setdefault(label, []).append(index)
                continue
            singles.append((index, target, label, "", position[paired]))
            continue
        paired = _paired_label_column(header, label_columns) if target in CONTACT_TARGETS else None
        singles.append((index, target, label, rule.get("date_format", ""),
                        position[paired] if paired else None))
    if not singles and not address_groups:
        raise MappingError("Map at least one column to a Rapport field.",
                           field_errors={"mapping": ["No column is mapped."]})
    split = mapping.get("split", ";")
    separators = tuple(s for s in (GOOGLE_SEPARATOR, split) if s)
    return CompiledMapping(list(headers), singles, sorted(address_groups.items()), separators,
                           mapping.get("date_format", "") or "")


def validate_mapping(mapping: Any) -> dict[str, dict[str, str]]:
    """The ``columns`` part of a mapping, checked: known targets, sane labels and formats."""
    if not isinstance(mapping, dict) or not isinstance(mapping.get("columns", {}), dict):
        raise MappingError("A mapping is an object with a ‘columns’ object.",
                           field_errors={"mapping": ["Expected {\"columns\": {...}}."]})
    errors: dict[str, list[str]] = {}
    columns: dict[str, dict[str, str]] = {}
    for header, rule in mapping.get("columns", {}).items():
        if isinstance(rule, str):
            rule = {"target": rule}
        if not isinstance(rule, dict):
            errors[f"columns.{header}"] = ["Expected {\"target\": …}."]
            continue
        target = rule.get("target", "")
        if not target:
            continue
        if target not in TARGETS:
            errors[f"columns.{header}"] = [f"Unknown field {target!r}."]
            continue
        label = str(rule.get("label", "") or "")[:32]
        date_format = str(rule.get("date_format", "") or "")
        if date_format and not _valid_date_format(date_format):
            errors[f"columns.{header}"] = [f"Date format {date_format!r} needs %d, %m and %Y (or %y)."]
            continue
        columns[str(header)] = {"target": target, "label": label, "date_format": date_format}
    default_format = mapping.get("date_format", "") or ""
    if default_format and not _valid_date_format(default_format):
        errors["date_format"] = [f"Date format {default_format!r} needs %d, %m and %Y (or %y)."]
    split = mapping.get("split", ";")
    if not isinstance(split, str) or len(split) > 8:
        errors["split"] = ["A separator is at most 8 characters."]
    if errors:
        raise MappingError("The mapping has errors.", field_errors=errors)
    return columns


def _valid_date_format(fmt: str) -> bool:
    if not ("%d" in fmt and "%m" in fmt and ("%Y" in fmt or "%y" in fmt)) and fmt not in ("%Y%m%d",):
        return "%b" in fmt or "%B" in fmt
    try:
        dt.date(2001, 2, 3).strftime(fmt)
    except ValueError:
        return False
    return True


def _paired_label_column(header: str, label_columns: Iterable[str]) -> str | None:
    """"E-mail 1 - Value" pairs with "E-mail 1 - Label"/"- Type"; "Email 1" with "Email 1 label"."""
    prefix = header.rsplit(" - ", 1)[0] if " - " in header else header
    for candidate in label_columns:
        other = candidate.rsplit(" - ", 1)[0] if " - " in candidate else candidate
        if other == prefix or candidate.lower() == f"{header.lower()} label":
            return candidate
    return None


# -------------------------------------------------------------------------------- values


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = str(value)
    if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@"):
        return text[1:]  # the quote our exports (and OWASP's advice) put before formula-like text
    return text


def split_multi(text: str, separators: tuple[str, ...], target: str) -> list[str]:
    parts = [text]
    seps = separators + ((",",) if target == "tags" else ())
    for sep in seps:
        if target == "address" and sep != GOOGLE_SEPARATOR:
            continue  # addresses contain commas and semicolons
        parts = [p for part in parts for p in part.split(sep)]
    cleaned = [p.strip() for p in parts if p.strip()]
    if target == "tags":  # Google's system groups are not tags
        cleaned = [p for p in cleaned if not p.startswith("* ")]
    return cleaned


def normalise_label(text: str) -> str:
    """"* Home", "HOME", "Business", "_$!<Mobile>!$_" → home, work, mobile."""
    cleaned = re.sub(r"[^a-z ]", " ", (text or "").lower()).strip()
    if not cleaned:
        return ""
    for word, label in (("home", "home"), ("work", "work"), ("business", "work"), ("office", "work"),
                        ("mobile", "mobile"), ("cell", "mobile"), ("iphone", "mobile"),
                        ("personal", "personal"), ("private", "personal"), ("other", "other"),
                        ("main", "main"), ("school", "school")):
        if word in cleaned.split() or cleaned.startswith(word):
            return label
    return cleaned.split()[0][:32]


DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%y", "%Y/%m/%d",
                        "%d %b %Y", "%d %B %Y", "%Y%m%d")
EMPTY_DATES = {"0/0/00", "00/00/0000", "0000-00-00", "-", "n/a"}


def parse_date(raw: Any, date_format: str = "") -> dt.date | None:
    """A date cell in ``date_format`` (or ISO / day-first when none); None when empty.

    Raises ValueError with a readable message when the text is not a date in that format.
    """
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    text = str(raw or "").strip()
    if not text or text.lower() in EMPTY_DATES:
        return None
    if "T" in text and len(text) >= 16 and text[:4].isdigit():
        text = text[:10]  # an ISO timestamp: keep the date
    formats = (date_format,) if date_format else DEFAULT_DATE_FORMATS
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    if date_format:
        example = dt.date(2024, 3, 31).strftime(date_format)
        raise ValueError(f"{text!r} is not a date in the format {date_format} (e.g. {example}).")
    raise ValueError(f"{text!r} is not a date; use 2024-03-31 or 31/03/2024, or set the date format.")
