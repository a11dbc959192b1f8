"""I1 for imports — exact shortcuts in front of the identity normalisers, for millions of rows.

``normalise_email`` runs ``email_validator`` on every address, about a sixth of an import's
time. Most addresses in a file are plain ASCII of the simplest shape (letters and digits,
single ``. _ + -`` between them, a domain of letter/digit/hyphen labels and an alphabetic
top-level domain that is not a special-use name): for exactly those, ``email_validator``
accepts the address and its normal form is the address lower-cased, so the shortcut answers
without it. Anything else (quotes, Unicode, IDNA, odd dots or lengths, display names) goes
to ``normalise_email``. ``tests/test_fastnorm.py`` checks the shortcut against
``normalise_email`` with generated addresses.

Phones: ``phonenumbers.parse`` + ``is_valid_number`` were about a third of an import's time
(twenty-odd regular expressions through the library's helpers for each number). For digits
with the usual separators, in national form or after a "+", ``simple_phone`` follows the same
steps on the same metadata with the patterns compiled once, and gives up (falls back to
``normalise_phone``) wherever the library takes a rarer turn, and for invalid numbers (so the
error message is the normaliser's). ``tests/test_fastnorm.py`` checks it against
``normalise_phone`` with numbers generated from every region's metadata. Results are cached
per (value, region) (files repeat switchboard numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from django.conf import settings

from rapport.identity.normalise import (
    NormalisedIdentifier,
    normalise_contact_value,
    normalise_phone,
)

_LABEL = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
_SIMPLE_EMAIL = re.compile(
    rf"[A-Za-z0-9]+(?:[._+-][A-Za-z0-9]+)*@(?:(?:{_LABEL})\.)+[A-Za-z]{{2,63}}")
# email_validator refuses these domains and their subdomains (SPECIAL_USE_DOMAIN_NAMES)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")  # core.search.fold's
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")


def simple_email(value: str) -> NormalisedIdentifier | None:
    """``normalise_email(value)`` for the simplest ASCII addresses; None when unsure."""
    text = value.strip()
    if len(text) > 254 or not _SIMPLE_EMAIL.fullmatch(text):
        return None
    local, _, domain = text.partition("@")
    if len(local) > 64 or len(domain) > 253:
        return None
    email = text.lower()
    labels = email[len(local) + 1:].split(".")
    if labels[-1] in _SPECIAL_USE or any(len(label) > 63 for label in labels):
        return None
    # fold() of lower-case ASCII only drops what is not a letter or digit: the same, without
    # its Unicode decomposition
    return NormalisedIdentifier(email, _NOT_ALNUM.sub("", email)[:200])


def _phone_uncached(value: str, region: str) -> NormalisedIdentifier:
    return simple_phone(value, region) or normalise_phone(value, region)


_phone = lru_cache(maxsize=65536)(_phone_uncached)


def normalise_point(kind: str, value: str, region: str | None = None, *,
                    cache_phones: bool = True) -> NormalisedIdentifier:
    """``normalise_contact_value`` with the shortcuts above (same results, same errors).

    ``cache_phones=False`` for callers that see each value once (an API worker's creates and
    edits): the cache, kept for real files' repeated switchboards, would only fill up."""
    if kind == "email":
        return simple_email(value) or normalise_contact_value(kind, value, region)
    if kind == "phone":
        return (_phone if cache_phones else _phone_uncached)(
            value, (region or settings.RAPPORT_DEFAULT_REGION or "GB").upper())
    return normalise_contact_value(kind, value, region)


# ---------------------------------------------------------------------------------- phones

# An optional "+", then ASCII digits with the usual separators between them; anything else
# (letters, extensions, other pluses, Unicode digits, "tel:" URIs) goes to normalise_phone.
_SIMPLE_PHONE = re.compile(r"\+?[0-9(][0-9 ().\-]*")
_NOT_DIGIT = re.compile(r"[^0-9]")
_MAX_NSN = 17  # libphonenumber's longest national significant number


@dataclass(frozen=True)
class _Desc:
    lengths: frozenset[int] | None      # None: any length
    pattern: re.Pattern[str] | None      # None: matches nothing

    def matches(self, nsn: str) -> bool:
        if self.pattern is None or (self.lengths is not None and len(nsn) not in self.lengths):
            return False
        return self.pattern.fullmatch(nsn) is not None


@dataclass(frozen=True)
class _Region:
    country_code: int
    international_prefix: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    simple: bool                          # no national prefix transform rule
    leading_digits: re.Pattern[str] | None
    general: _Desc
    possible: tuple[int, ...]
    local_only: frozenset[int]
    types: tuple[_Desc, ...]              # any of them: a valid number (libphonenumber's type != UNKNOWN)

    def has_type(self, nsn: str) -> bool:
        return self.general.matches(nsn) and any(desc.matches(nsn) for desc in self.types)


def _desc(desc: Any) -> _Desc:
    if desc is None or not desc.national_number_pattern:
        return _Desc(None, None)
    lengths = frozenset(desc.possible_length) if desc.possible_length else None
    return _Desc(lengths, re.compile(desc.national_number_pattern))


@lru_cache(maxsize=512)
def _region(code: str) -> _Region | None:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(code, None)
    if meta is None:
        return None
    # libphonenumber's _number_type_helper: the special types, fixed line, and mobile unless
    # mobile shares the fixed-line pattern (then a number that is not fixed line is unknown).
    # Any type makes the number valid, so the order is free: the common ones first
    types = [meta.fixed_line]
    if not meta.same_mobile_and_fixed_line_pattern:
        types.append(meta.mobile)
    types += [meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip, meta.personal_number, meta.pager,
              meta.uan, meta.voicemail]
    general = meta.general_desc
    return _Region(
        country_code=meta.country_code,
        international_prefix=re.compile(meta.international_prefix) if meta.international_prefix else None,
        national_prefix=re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None,
        # a transform rule (Argentina, Brazil…), or no usable lengths: left to the library
        simple=not meta.national_prefix_transform_rule and bool(general.possible_length)
        and general.possible_length[0] != -1,
        leading_digits=re.compile(meta.leading_digits) if meta.leading_digits is not None else None,
        general=_desc(general), possible=tuple(general.possible_length),
        local_only=frozenset(general.possible_length_local_only), types=tuple(_desc(d) for d in types))


def simple_phone(value: str, region: str) -> NormalisedIdentifier | None:
    """``normalise_phone(value, region)`` for valid numbers in the usual layouts; None when unsure.

    Follows libphonenumber's ``parse`` + ``is_valid_number`` for the inputs it accepts: digits
    with spaces, dots, hyphens and brackets, in national form or after a "+". It gives up (None)
    wherever the library takes a rarer turn — an international dialling prefix (00…), a number
    that starts with the country code without "+", a national prefix transform rule, a
    leading zero kept in the number (Italy), non-geographic codes — and for invalid numbers, so
    that the error message is always the normaliser's own.
    """
    text = value.strip()
    if not _SIMPLE_PHONE.fullmatch(text) or not text[-1].isdigit() or len(text) > 250:
        return None
    digits = _NOT_DIGIT.sub("", text)
    if len(digits) < 3:
        return None
    if text[0] == "+":
        country_code, national = _country_code(digits)
        if not country_code:
            return None
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code]
        meta = _region(regions[0])
    else:
        meta = _region(region)
        if meta is None or (meta.international_prefix is not None and meta.international_prefix.match(digits)):
            return None
        country_code, national = meta.country_code, digits
        if national.startswith(str(country_code)):
            return None
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if meta is None or not meta.simple or len(national) < 2 or not regions or regions[0] == "001":
        return None
    nsn = _strip_national_prefix(national, meta)
    if not 2 <= len(nsn) <= _MAX_NSN or nsn[0] == "0":
        return None
    if not _valid(country_code, regions, nsn):
        return None
    return NormalisedIdentifier(f"+{country_code}{nsn}", nsn)


def _country_code(digits: str) -> tuple[int, str]:
    if digits[0] == "0":
        return 0, digits
    for length in (1, 2, 3):
        code = int(digits[:length])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[length:]
    return 0, digits


def _strip_national_prefix(number: str, meta: _Region) -> str:
    """libphonenumber's national prefix stripping, kept only when the rest has a possible length."""
    if meta.national_prefix is None:
        return number
    found = meta.national_prefix.match(number)
    if not found:
        return number
    rest = number[found.end():]
    general = meta.general.pattern
    if general is not None and general.fullmatch(number) and not general.fullmatch(rest):
        return number
    length = len(rest)
    if length in meta.local_only:
        return number
    possible = meta.possible
    if length < possible[0]:
        return number  # too short
    if length == possible[0] or length > possible[-1] or length in possible[1:]:
        return rest  # possible, or too long (libphonenumber strips then)
    return number


def _valid(country_code: int, regions: tuple[str, ...], nsn: str) -> bool:
    """libphonenumber's ``is_valid_number``: the region the number belongs to, then its types."""
    if len(regions) == 1:
        meta = _region(regions[0])
        return meta is not None and meta.has_type(nsn)
    for code in regions:
        meta = _region(code)
        if meta is None:
            continue
        if meta.leading_digits is not None:
            if meta.leading_digits.match(nsn):
                return meta.has_type(nsn)
        elif meta.has_type(nsn):
            return True
    return False
