"""I1 for imports — exact shortcuts in front of the identity normalisers, for millions of rows.

``normalise_email`` runs ``email_validator`` on every address, about a sixth of an import's
time. Most addresses in a file are plain ASCII of the simplest shape (letters and digits,
single ``. _ + -`` between them, a domain of letter/digit/hyphen labels and an alphabetic
top-level domain that is not a special-use name): for exactly those, ``email_validator``
accepts the address and its normal form is the address lower-cased, so the shortcut answers
without it. Anything else (quotes, Unicode, IDNA, odd dots or lengths, display names) goes
to ``normalise_email``. ``tests/test_fastnorm.py`` checks the shortcut against
``normalise_email`` with generated addresses.

Phones: the parse of a value in a region is cached (files repeat switchboard numbers).
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.conf import settings

from rapport.core.search import fold
from rapport.identity.normalise import (
    NormalisedIdentifier,
    normalise_contact_value,
    normalise_phone,
)

_LABEL = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
_SIMPLE_EMAIL = re.compile(
    rf"[A-Za-z0-9]+(?:[._+-][A-Za-z0-9]+)*@(?:(?:{_LABEL})\.)+[A-Za-z]{{2,63}}")
# email_validator refuses these domains and their subdomains (SPECIAL_USE_DOMAIN_NAMES)
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
    return NormalisedIdentifier(email, fold(email)[:200])


@lru_cache(maxsize=65536)
def _phone(value: str, region: str) -> NormalisedIdentifier:
    return normalise_phone(value, region)


def normalise_point(kind: str, value: str, region: str | None = None) -> NormalisedIdentifier:
    """``normalise_contact_value`` with the shortcuts above (same results, same errors)."""
    if kind == "email":
        return simple_email(value) or normalise_contact_value(kind, value, region)
    if kind == "phone":
        return _phone(value, (region or settings.RAPPORT_DEFAULT_REGION or "GB").upper())
    return normalise_contact_value(kind, value, region)
