"""A3 — vCard 2.1, 3.0 and 4.0 in: one card at a time, parsed by vobject.

Cards are cut out of the line stream here (so a file of 100,000 cards never sits in memory)
and each is handed to ``vobject.readOne`` with quoted-printable allowed (2.1 soft line
breaks). Photos, logos, sounds and keys are dropped before parsing: they are not imported and
their base64 is often malformed in real exports. A card that cannot be parsed becomes a row
with a ``problem``; the rest of the file still imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from rapport.imports.mapping import MappedValue, normalise_label
from rapport.imports.sources import SourceRow

VCARD_COLUMNS = ("N", "FN", "NICKNAME", "EMAIL", "TEL", "ADR", "ORG", "TITLE", "NOTE", "URL",
                 "CATEGORIES", "X-SOCIALPROFILE", "LANG", "TZ", "X-RAPPORT-COUNTRY", "X-RAPPORT-JOB-START")
MAX_CARD_CHARS = 1024 * 1024
_SKIPPED = re.compile(r"^(?:[\w-]+\.)?(PHOTO|LOGO|SOUND|KEY)[;:]", re.IGNORECASE)
_PROPERTY = re.compile(r"^[\w.-]+[;:]")
_IGNORED_TYPES = {"internet", "pref", "voice", "x400", "msg", "bbs", "modem", "video", "text", "dom",
                  "intl", "parcel", "postal"}
_SKIP_PHONE_TYPES = {"fax", "pager"}


def vcard_rows(lines: Iterable[str]) -> Iterator[SourceRow]:
    """One ``SourceRow`` per card, numbered from 1, with ``mapped`` values or a ``problem``."""
    number = 0
    card: list[str] | None = None
    size = 0
    skipping = False
    for line in lines:
        stripped = line.rstrip("\r\n")
        upper = stripped.strip().upper()
        if card is None:
            if upper == "BEGIN:VCARD":
                number += 1
                card, size, skipping = [stripped], len(stripped), False
            continue
        if upper == "END:VCARD":
            card.append(stripped)
            yield _card_row(number, card, size)
            card = None
            continue
        if skipping:
            if not stripped.strip() or stripped[:1] in (" ", "\t") or not _PROPERTY.match(stripped):
                continue
            skipping = False
        if _SKIPPED.match(stripped):
            skipping = True
            continue
        if not stripped.strip():
            continue
        size += len(stripped)
        if size <= MAX_CARD_CHARS:
            card.append(stripped)
    if card is not None:
        yield SourceRow(number=number, problem="The last card has no END:VCARD line; the file is cut short.")


def _card_row(number: int, lines: list[str], size: int) -> SourceRow:
    if size > MAX_CARD_CHARS:
        return SourceRow(number=number, problem=f"Card {number} is larger than 1 MiB without its photo.")
    import vobject

    text = "\r\n".join(lines) + "\r\n"
    try:
        card = vobject.readOne(text, allowQP=True, ignoreUnreadable=True)
        mapped = _map_card(card)
    except Exception as err:  # vobject raises ParseError, ValueError, binascii errors…
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        return SourceRow(number=number, problem=f"Card {number} cannot be read: {reason}")
    return SourceRow(number=number, mapped=mapped)


def _map_card(card: Any) -> list[MappedValue]:
    out: list[MappedValue] = []
    group_labels: dict[str, str] = {}
    children = list(card.getChildren())
    for child in children:
        if child.name.upper() == "X-ABLABEL" and child.group:
            group_labels[child.group.lower()] = normalise_label(str(child.value))
    name_given = False
    preferred: list[MappedValue] = []
    others: list[MappedValue] = []
    for child in children:
        prop = child.name.upper()
        value = child.value
        label = _label(child, group_labels)
        if prop == "N":
            for target, part in (("family_name", value.family), ("given_name", value.given),
                                 ("middle_names", value.additional), ("honorific", value.prefix)):
                text = _join(part)
                if text:
                    out.append(MappedValue(target, text, "", "N"))
                    name_given = name_given or target in ("family_name", "given_name")
        elif prop == "FN":
            fn = _join(value)
            if fn:
                out.append(MappedValue("full_name", fn, "", "FN"))
        elif prop == "NICKNAME":
            _add(out, "preferred_name", value, "", prop)
        elif prop == "EMAIL":
            item = MappedValue("email", _join(value).strip(), label, prop)
            (preferred if _is_pref(child) else others).append(item)
        elif prop == "TEL":
            types = _types(child)
            if types & _SKIP_PHONE_TYPES:
                continue
            number = _join(value).strip()
            number = number[4:] if number.lower().startswith("tel:") else number
            item = MappedValue("phone", number, label, prop)
            (preferred if _is_pref(child) else others).append(item)
        elif prop == "ADR":
            parts = [_join(getattr(value, name, "")) for name in
                     ("box", "extended", "street", "city", "region", "code", "country")]
            text = "\n".join(p.strip() for p in parts if p and p.strip()).replace("\r\n", "\n").replace("\r", "\n")
            if text:
                others.append(MappedValue("address", text, label, prop))
        elif prop == "ORG":
            org = value[0] if isinstance(value, list) and value else value
            _add(out, "organisation", org, "", prop)
        elif prop == "TITLE":
            _add(out, "title", value, "", prop)
        elif prop == "NOTE":
            _add(out, "notes", value, "", prop)
        elif prop == "URL":
            others.append(MappedValue("url", _join(value).replace("\\:", ":").strip(), label, prop))
        elif prop in ("X-SOCIALPROFILE", "IMPP"):
            handle = _join(value).strip()
            handle = re.sub(r"^(x-apple|xmpp|sip|skype|aim|msn):", "", handle, flags=re.IGNORECASE)
            user = child.params.get("X-USER") or child.params.get("x-user")
            others.append(MappedValue("social", (user[0] if user else handle), label, prop))
        elif prop == "CATEGORIES":
            values = value if isinstance(value, list) else str(value).split(",")
            for tag in values:
                _add(out, "tags", tag, "", prop)
        elif prop == "LANG":
            _add(out, "language", value, "", prop)
        elif prop == "TZ":
            text = _join(value)
            if "/" in text:
                _add(out, "timezone", text, "", prop)
        elif prop == "X-RAPPORT-COUNTRY":
            _add(out, "country", value, "", prop)
        elif prop == "X-RAPPORT-JOB-START":
            out.append(MappedValue("start_date", (_join(value).strip(), "%Y-%m-%d"), "", prop))
    identifiers = {m.value for m in preferred + others}
    if name_given:
        out = [m for m in out if m.target != "full_name"]
    else:  # a nameless contact's FN is often just its email or number: not a name
        out = [m for m in out if not (m.target == "full_name" and m.value in identifiers)]
    return out + preferred + others


def _add(out: list[MappedValue], target: str, value: Any, label: str, column: str) -> None:
    text = _join(value).strip()
    if text:
        out.append(MappedValue(target, text, label, column))


def _join(part: Any) -> str:
    if part is None:
        return ""
    if isinstance(part, list | tuple):
        return " ".join(str(p) for p in part if p)
    if isinstance(part, bytes):
        return part.decode("utf-8", errors="replace")
    return str(part)


def _types(child: Any) -> set[str]:
    types: set[str] = set()
    for raw in child.params.get("TYPE", []) + list(getattr(child, "singletonparams", [])):
        for part in str(raw).split(","):
            part = part.strip().strip('"').lower()
            if part:
                types.add(part)
    return types


def _is_pref(child: Any) -> bool:
    return "pref" in _types(child) or bool(child.params.get("PREF"))


def _label(child: Any, group_labels: dict[str, str]) -> str:
    if child.group and child.group.lower() in group_labels:
        return group_labels[child.group.lower()]
    for kind in sorted(_types(child) - _IGNORED_TYPES - _SKIP_PHONE_TYPES):
        label = normalise_label(kind)
        if label:
            return label
    return ""
