"""I1 — normalisation of identifiers: names, emails, phones, handles, URLs, addresses, dates.

Every contact point is stored twice: as typed (``value``) and normalised (``normalised``),
plus a ``search_key`` that the prefix search uses (digits of the national number for phones,
so "020 7946 0018" and "+44 20 7946 0018" find the same person).

Matching (the identity engine) compares *match keys*, which are deliberately lossier than the
stored normal forms: ``email_match_key`` drops what the mail provider ignores, ``name_parts``
folds case, accents and titles and maps nicknames to the formal name (Bob → robert) from the
table shipped in ``identity/data/nicknames.csv``, ``address_match_key`` expands St/Rd/…
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from django.conf import settings
from email_validator import EmailNotValidError, validate_email
from nameparser import HumanName

from rapport.core.search import fold, fold_tokens


class InvalidIdentifier(ValueError):
    """The value cannot be a valid identifier of its kind; the message says why."""


@dataclass(frozen=True)
class NormalisedIdentifier:
    normalised: str
    search_key: str


def normalise_email(value: str) -> NormalisedIdentifier:
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as err:
        raise InvalidIdentifier(str(err)) from err
    email = result.normalized.lower()
    return NormalisedIdentifier(email, fold(email)[:200])


def parse_phone(value: str, region: str | None = None) -> phonenumbers.PhoneNumber:
    region = (region or settings.RAPPORT_DEFAULT_REGION or "GB").upper()
    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException as err:
        raise InvalidIdentifier(f"Not a phone number: {err}.") from err
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("Not a valid phone number for its country.")
    return number


def normalise_phone(value: str, region: str | None = None) -> NormalisedIdentifier:
    number = parse_phone(value, region)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return NormalisedIdentifier(e164, str(number.national_number))


def phone_search_key(query: str, region: str | None = None) -> str:
    """Digits of the national number as far as ``query`` gives them (it may be partial).

    "+44 20 79" → "2079"; "020 79" → "2079"; "0044 20" → "20".
    """
    text = query.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("+") or digits.startswith("00"):
        digits = digits[2:] if digits.startswith("00") and not text.startswith("+") else digits
        for length in (1, 2, 3):
            code = int(digits[:length]) if digits[:length] else 0
            if phonenumbers.region_code_for_country_code(code) != "ZZ":
                return digits[length:]
        return digits
    return digits.lstrip("0")


def normalise_handle(value: str) -> NormalisedIdentifier:
    handle = value.strip()
    if not handle:
        raise InvalidIdentifier("A social handle cannot be empty.")
    normalised = handle.lower()
    return NormalisedIdentifier(normalised, fold(normalised))


def normalise_url(value: str) -> NormalisedIdentifier:
    url = value.strip()
    if "://" not in url:
        url = "https://" + url
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if not host or "." not in host or " " in host:
        raise InvalidIdentifier("Enter a web address such as https://example.com.")
    normalised = f"{scheme.lower()}://{host.lower()}{slash}{path}"
    return NormalisedIdentifier(normalised, fold(host.lower().removeprefix("www.")))


def normalise_address(value: str) -> NormalisedIdentifier:
    lines = [" ".join(line.split()) for line in value.replace("\r", "").split("\n")]
    text = "\n".join(line for line in lines if line)
    if not text:
        raise InvalidIdentifier("An address cannot be empty.")
    return NormalisedIdentifier(text, fold(text)[:200])


def normalise_contact_value(kind: str, value: str, region: str | None = None) -> NormalisedIdentifier:
    """Normalise ``value`` of contact point ``kind`` or raise InvalidIdentifier."""
    if kind == "email":
        return normalise_email(value)
    if kind == "phone":
        return normalise_phone(value, region)
    if kind == "social":
        return normalise_handle(value)
    if kind == "url":
        return normalise_url(value)
    if kind == "address":
        return normalise_address(value)
    raise InvalidIdentifier(f"Unknown contact point kind {kind!r}.")


# ------------------------------------------------------------------------ match keys (I1)

# Providers that ignore dots in the local part (Gmail) and those that deliver "+tag" mail to
# the base address. The two Google domains are one mailbox.
_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}


def email_match_key(email: str) -> str:
    """The mailbox an address reaches: lower-cased, "+tag" dropped, Gmail dots dropped.

    "John.Smith+news@GoogleMail.com" → "johnsmith@gmail.com". Raises InvalidIdentifier when
    the text is no email address. Suppression hashes use this key, so an erased person
    cannot come back through an alias of the same mailbox.
    """
    text = (email or "").strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain:
        raise InvalidIdentifier(f"Not an email address: {email!r}.")
    domain = _DOMAIN_ALIASES.get(domain, domain)
    local = local.split("+", 1)[0] or local
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


@dataclass(frozen=True)
class NameParts:
    """A personal name split and folded for matching (a-z0-9 only)."""

    title: str
    given: str
    middle: str
    family: str
    suffix: str
    # The formal given name when ``given`` is a known nickname ("bob" → "robert"), else given.
    given_canonical: str


def name_parts(full_name: str = "", *, given_name: str = "", family_name: str = "") -> NameParts:
    """Split and fold a name. Give ``full_name`` or the two parts (parts win when given).

    Titles (Dr, Mrs), suffixes (Jr) and accents go; "Smith, Bob" reads as Bob Smith.
    Multi-word family names keep their words joined ("garcialopez").
    """
    if given_name or family_name:
        title, given, middle = _given_parts(given_name or "")
        family = _family_part(family_name) if family_name else ""
        suffix = ""
    else:
        title, given, middle, family, suffix = _full_parts(full_name or "")
    return NameParts(title, given, middle, family, suffix, canonical_given_name(given))


# nameparser takes about a millisecond a name (half of the API's duplicate check); names repeat
# a lot (a million records hold a few tens of thousands of distinct given and family names), so
# each part is parsed once. One plain word, the usual given or family name and all the API is
# usually sent, is not parsed at all: what nameparser makes of it is known (below), and
# tests/test_normalise compares both ways over nameparser's whole vocabulary and generated words.
@functools.lru_cache(maxsize=200_000)
def _given_parts(given_name: str) -> tuple[str, str, str]:
    # An apostrophe joins a name's letters (O'Tierney), as ``fold`` does for family names;
    # split there, "O'Tierney" would give the given name "o".
    given_name = given_name.replace("'", "").replace("\u2019", "")
    if _one_plain_word(given_name) and given_name.lower() not in _TITLES:
        return "", fold(given_name), ""  # nameparser's first name (or suffix): the word, folded
    return _given_parsed(given_name)


def _given_parsed(given_name: str) -> tuple[str, str, str]:
    given_parsed = HumanName(given_name)
    rest = " ".join(p for p in (given_parsed.first, given_parsed.middle, given_parsed.last) if p)
    given_words = fold_tokens(rest or given_name)
    return (fold(given_parsed.title), given_words[0] if given_words else "",
            "".join(given_words[1:]))


def _family_part(family_name: str) -> str:
    if _one_plain_word(family_name):  # nameparser's last name is the word, or empty (then the word)
        return fold(family_name)
    return _family_parsed(family_name)


@functools.lru_cache(maxsize=200_000)
def _family_parsed(family_name: str) -> str:
    return fold(HumanName(f"x {family_name}").last or family_name)


def _one_plain_word(text: str) -> bool:
    """Letters and digits only: nameparser has nothing to split. Letters may be any script; a
    word with digits is ASCII only (``fold`` of other digits and signs is not one word)."""
    return text.isalpha() or (text.isascii() and text.isalnum())


@functools.lru_cache(maxsize=200_000)
def _full_parts(full_name: str) -> tuple[str, str, str, str, str]:
    parsed = HumanName(full_name)
    return (fold(parsed.title), fold(parsed.first), fold(parsed.middle), fold(parsed.last),
            fold(parsed.suffix))


def _nameparser_words(kind: str) -> frozenset[str]:
    from nameparser.config import CONSTANTS

    return frozenset(w.lower() for w in getattr(CONSTANTS, kind))


_TITLES = _nameparser_words("titles")


def canonical_given_name(name: str) -> str:
    """"Bob" → "robert", "Liz" → "elizabeth"; names not in the table fold unchanged."""
    key = fold(name)
    return _nicknames().get(key, key)


def given_name_variants(name: str) -> set[str]:
    """Every folded form that may stand for the same given name: Bob → {bob, robert, rob, …}."""
    key = fold(name)
    if not key:
        return set()
    canonical = canonical_given_name(key)
    return {key, canonical} | _variants().get(canonical, set())


@functools.cache
def _variants() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for nickname, canonical in _nicknames().items():
        table.setdefault(canonical, set()).add(nickname)
    return table


@functools.cache
def _nicknames() -> dict[str, str]:
    path = Path(__file__).with_name("data") / "nicknames.csv"
    table: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        rows = csv.reader(line for line in handle if not line.startswith("#"))
        next(rows)  # header
        for nickname, canonical in rows:
            table.setdefault(fold(nickname), fold(canonical))
    return table


_ADDRESS_WORDS = {
    "st": "street", "str": "street", "rd": "road", "ave": "avenue", "av": "avenue",
    "dr": "drive", "ln": "lane", "ct": "court", "pl": "place", "sq": "square", "cres": "crescent",
    "cl": "close", "gdns": "gardens", "gr": "grove", "hwy": "highway", "blvd": "boulevard",
    "pk": "park", "ter": "terrace", "terr": "terrace", "mt": "mount", "apt": "flat",
    "apartment": "flat", "ste": "suite", "n": "north", "s": "south", "e": "east", "w": "west",
}


def address_match_key(text: str) -> str:
    """Postal address folded for comparison: case, accents and punctuation gone, St → street.

    "12, Baker St." and "12 BAKER STREET" give the same key ("12 baker street").
    """
    words = fold_tokens(text or "")
    return " ".join(_ADDRESS_WORDS.get(word, word) for word in words)


def postcode_match_key(text: str) -> str:
    """Postcode without spaces or punctuation, upper-cased ("sw1a 1aa" → "SW1A1AA")."""
    return fold(text or "").upper()


_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")


def normalise_date(text: str, date_format: str | None = None) -> dt.date | None:
    """A date from ISO 8601 (optionally with a time) or YYYYMMDD, or from ``date_format``.

    Empty text is ``None``; anything else unreadable raises InvalidIdentifier.
    """
    value = (text or "").strip()
    if not value:
        return None
    return _parse_date(value, date_format)


@functools.lru_cache(maxsize=100_000)
def _parse_date(value: str, date_format: str | None) -> dt.date:
    if not date_format:
        # The two default layouts without strptime (ten times slower, and a million records
        # hold a few hundred thousand dates).
        digits = value.replace("-", "") if len(value) == 10 and value[4] == value[7] == "-" else value
        if len(digits) == 8 and digits.isdigit():
            try:
                return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
            except ValueError:
                pass
    formats = (date_format,) if date_format else _DATE_FORMATS
    for fmt in formats:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    if not date_format:
        try:
            return dt.datetime.fromisoformat(value).date()
        except ValueError:
            pass
    expected = date_format or "YYYY-MM-DD or YYYYMMDD"
    raise InvalidIdentifier(f"Not a date in {expected}: {value!r}.")


_NON_DIGIT = re.compile(r"\D+")


def phone_match_key(value: str, region: str | None = None) -> str:
    """E.164 when the number parses, else its digits (a badly typed number still compares).

    Parsing with phonenumbers costs about half a millisecond, too much for a million records.
    The common layouts ("07700 900123", "+44 7700 900123", "0044 7700 900123",
    "(07700) 900 123") are turned into E.164 directly: digits kept, "00" read as "+", and a
    national number gets the region's country code in place of its trunk prefix. That is
    the E.164 form of every valid number of regions with a plain trunk prefix (GB, US, DE,
    FR, AU, …); unusual layouts and regions with special dialling rules are parsed.
    """
    text = (value or "").strip()
    digits = _NON_DIGIT.sub("", text)
    region = (region or settings.RAPPORT_DEFAULT_REGION or "GB").upper()
    if "(0)" not in text and 7 <= len(digits) <= 15:
        if text.startswith("+"):
            return "+" + digits
        if digits.startswith("00"):
            return "+" + digits[2:]
        prefix = _SIMPLE_TRUNK.get(region)
        if prefix is not None and digits.startswith(prefix[1]) and len(digits) >= 9:
            return f"+{prefix[0]}{digits[len(prefix[1]):]}"
    try:
        return normalise_phone(value, region).normalised
    except InvalidIdentifier:
        return digits


# Region → (country code, trunk prefix) where a national number is the trunk prefix and then
# exactly the E.164 national part.
_SIMPLE_TRUNK = {"GB": ("44", "0"), "IE": ("353", "0"), "DE": ("49", "0"), "FR": ("33", "0"),
                 "NL": ("31", "0"), "BE": ("32", "0"), "CH": ("41", "0"), "AT": ("43", "0"),
                 "SE": ("46", "0"), "AU": ("61", "0"), "NZ": ("64", "0"), "ES": ("34", ""),
                 "US": ("1", ""), "CA": ("1", "")}
