"""I1 — normalisation of identifiers: emails, phones, handles, URLs and addresses.

Every contact point is stored twice: as typed (``value``) and normalised (``normalised``),
plus a ``search_key`` that the prefix search uses (digits of the national number for phones,
so "020 7946 0018" and "+44 20 7946 0018" find the same person).
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from email_validator import EmailNotValidError, validate_email

from rapport.core.search import fold


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
