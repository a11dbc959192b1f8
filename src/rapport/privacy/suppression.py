"""I5 — suppression: identifiers that must not be re-created or contacted, kept only as hashes.

Two kinds of entry share one table:

- The internal suppression list (erased people's identifiers, and identifiers staff added by
  hand): HMAC-SHA-256 under a key of our own, so the list cannot be reversed or matched by
  anyone without the key. ``ensure_not_suppressed`` refuses to create people or contact
  points with these identifiers; the gate denies marketing to them (``suppressed``).
- External do-not-contact lists (telephone and mail preference services, email lists),
  imported plain (hashed on the way in, never stored in clear) or pre-hashed with SHA-256,
  with the date they were screened. They never block storing a customer; the gate denies
  marketing on the matching channel (``dnc_list``) and refuses telephone marketing when the
  person's national list was last screened longer ago than it allows (28 days for the UK
  TPS, 31 for the US and Canadian registries: ``jurisdictions.PHONE_LISTS``).

Emails are compared in their provider-canonical form too: Gmail ignores dots and ``+tags``
in the local part (and googlemail.com is gmail.com); other providers ignore ``+tags``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import transaction

from rapport.core.api.prepared import PreparedQuery
from rapport.core.errors import DomainError
from rapport.privacy.models import SuppressionEntry, SuppressionList

GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}
INTERNAL_SOURCES = (SuppressionEntry.Source.ERASURE, SuppressionEntry.Source.MANUAL)
INTERNAL_KINDS = (SuppressionEntry.Kind.EMAIL, SuppressionEntry.Kind.PHONE)
PREPARED_DIGESTS = 32  # up to this many digests (a person's identifiers) the lookup is prepared
LIST_IDENTIFIER_KIND = {
    SuppressionList.Kind.TPS: SuppressionEntry.Kind.PHONE,
    SuppressionList.Kind.CTPS: SuppressionEntry.Kind.PHONE,
    SuppressionList.Kind.US_DNC: SuppressionEntry.Kind.PHONE,
    SuppressionList.Kind.CA_DNCL: SuppressionEntry.Kind.PHONE,
    SuppressionList.Kind.PHONE_DNC: SuppressionEntry.Kind.PHONE,
    SuppressionList.Kind.MPS: SuppressionEntry.Kind.ADDRESS,
    SuppressionList.Kind.EMAIL_DNC: SuppressionEntry.Kind.EMAIL,
}


class Suppressed(DomainError):
    """The identifier belongs to an erased person (or was suppressed by staff)."""

    status_code = 409
    title = "Suppressed identifier"
    code = "suppressed"


# --------------------------------------------------------------------------------- contract


def ensure_not_suppressed(*, emails: Iterable[str] = (), phones: Iterable[str] = (),
                          normalised: bool = False) -> None:
    """Raise ``Suppressed`` when any normalised identifier is on the internal suppression list.

    People and imports call this before creating a person or adding a contact point, so an
    erased person cannot quietly come back through a form, an import or the API.
    ``normalised=True`` says the values are already normalised (an import's contact points):
    they are not parsed again, which is most of the cost for thousands of rows.
    """
    by_digest = digests_to_check(emails=emails, phones=phones, normalised=normalised)
    if not by_digest:
        return
    # One person's identifiers: compiled once per connection and digest count, a prepared
    # statement on PostgreSQL (compiled by the ORM it was a fifth of an API create's CPU). An
    # import's chunks come in every size, each of which would be compiled and kept: the ORM.
    refuse_hits(by_digest, internal_hits(list(by_digest)))


def internal_hits(digests: list[str]) -> set[str]:
    """The digests among ``digests`` on the internal list (prepared up to ``PREPARED_DIGESTS``)."""
    found = _INTERNAL_HITS.rows(digests) if len(digests) <= PREPARED_DIGESTS else _internal_hits(digests)
    return {digest for (digest,) in found}


def digests_to_check(*, emails: Iterable[str] = (), phones: Iterable[str] = (),
                     normalised: bool = False) -> dict[str, tuple[str, str]]:
    """The digests ``ensure_not_suppressed`` looks up, each with what it stands for (label and
    value), in the order the values were given."""
    emails, phones = [e for e in emails if e], [p for p in phones if p]
    digests_of = _stored_digests if normalised else identifier_digests
    by_digest: dict[str, tuple[str, str]] = {}
    for value in emails:
        for digest in digests_of(SuppressionEntry.Kind.EMAIL, value):
            by_digest[digest] = ("email address", value)
    for value in phones:
        for digest in digests_of(SuppressionEntry.Kind.PHONE, value):
            by_digest[digest] = ("phone number", value)
    return by_digest


def internal_hits_sql(digests: list[str]) -> tuple[str, list[str]]:
    """``internal_hits``' lookup of ``digests`` as SQL and parameters, for a caller that runs it
    inside a statement of its own (the API create's duplicate check). Selects ``digest``.

    The same query (``_internal_hits``), compiled once per connection and digest count."""
    return _INTERNAL_HITS.sql(digests)


def refuse_hits(by_digest: dict[str, tuple[str, str]], hits: set[str]) -> None:
    """Raise ``Suppressed`` for the first given value whose digest is among ``hits``."""
    hit = next((digest for digest in by_digest if digest in hits), None)  # the first given value
    if hit is not None:
        label, value = by_digest[hit]
        field = "emails" if label == "email address" else "phones"
        message = (f"The {label} {value} is on the suppression list (its owner asked to be erased "
                   "or not to be contacted); it cannot be added again.")
        raise Suppressed(message, field_errors={field: [message]})


def _internal_hits(digests: list[str]) -> Any:
    # Internal entries are emails and phones only (``suppress``); naming the kinds lets the
    # (kind, digest) index serve the lookup however many list entries the table holds.
    return (SuppressionEntry.objects.order_by()
            .filter(kind__in=INTERNAL_KINDS, source__in=INTERNAL_SOURCES, digest__in=digests)
            .values_list("digest"))


_INTERNAL_HITS = PreparedQuery(_internal_hits, prep_field=SuppressionEntry._meta.get_field("digest"),
                               sample=lambda: os.urandom(32).hex())


# ---------------------------------------------------------------------------------- hashing


def canonical_email(email: str) -> str:
    """The form a mail provider delivers to: Gmail drops dots and +tags, others drop +tags."""
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at:
        return email
    local = local.split("+", 1)[0] or local
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def normalise_identifier(kind: str, value: str) -> str:
    """Normalise like the people app does (I1), falling back to a trimmed value."""
    from rapport.identity.normalise import InvalidIdentifier, normalise_contact_value

    value = (value or "").strip()
    try:
        return normalise_contact_value(kind, value).normalised
    except InvalidIdentifier:
        return value.lower() if kind == SuppressionEntry.Kind.EMAIL else value


def identifier_forms(kind: str, value: str) -> set[str]:
    """Every form of an identifier that is compared: normalised, and canonical for emails."""
    return stored_forms(kind, normalise_identifier(kind, value))


def stored_forms(kind: str, normalised: str) -> set[str]:
    """The compared forms of an already normalised value (a contact point's ``normalised``)."""
    if kind == SuppressionEntry.Kind.ADDRESS:
        from rapport.core.search import fold

        return {fold(normalised)}
    if kind == SuppressionEntry.Kind.EMAIL:
        return {normalised, canonical_email(normalised)}
    return {normalised}


def identifier_digests(kind: str, value: str) -> set[str]:
    """Digests to look up for ``value``: our HMAC and plain SHA-256 of each compared form."""
    digests = set()
    for form in identifier_forms(kind, value):
        digests.add(keyed_digest(form))
        digests.add(plain_digest(form))
    return digests


def _stored_digests(kind: str, normalised: str) -> set[str]:
    """``identifier_digests`` of a value that is already normalised."""
    digests = set()
    for form in stored_forms(kind, normalised):
        digests.add(keyed_digest(form))
        digests.add(plain_digest(form))
    return digests


def keyed_digest(form: str) -> str:
    return hmac.digest(suppression_key(), form.encode(), "sha256").hex()


def keyed_digests(forms: list[bytes]) -> list[str]:
    """``keyed_digest`` of many encoded forms at once (the gate's batch hashes every address).

    HMAC-SHA-256 spelled out (RFC 2104) from two SHA-256 states primed with the padded key
    once: half the cost per form of ``hmac.digest``. The key is 32 bytes, under the block size.
    """
    key = suppression_key().ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    digests = []
    append = digests.append
    for form in forms:
        step = inner.copy()
        step.update(form)
        last = outer.copy()
        last.update(step.digest())
        append(last.hexdigest())
    return digests


def plain_digest(form: str) -> str:
    return hashlib.sha256(form.encode()).hexdigest()


@lru_cache(maxsize=1)
def suppression_key() -> bytes:
    """The HMAC key: ``RAPPORT_SUPPRESSION_KEY`` (setting or environment), else var/suppression_key.

    A dedicated key, not SECRET_KEY: rotating SECRET_KEY must not silently empty the list.
    Back the key file up with the database (without it the list matches nothing).
    """
    configured = getattr(settings, "RAPPORT_SUPPRESSION_KEY", None) or os.environ.get("RAPPORT_SUPPRESSION_KEY")
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    path = settings.VAR_DIR / "suppression_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    key = os.urandom(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key


# -------------------------------------------------------------------------------- services


def suppress(*, emails: Iterable[str] = (), phones: Iterable[str] = (),
             source: str = SuppressionEntry.Source.MANUAL, reason: str = "") -> int:
    """Add identifiers to the internal suppression list (HMAC only). Returns entries added."""
    if source not in INTERNAL_SOURCES:
        raise DomainError("Only erasure and manual entries belong on the internal list.")
    wanted: set[tuple[str, str]] = set()
    for kind, values in ((SuppressionEntry.Kind.EMAIL, emails), (SuppressionEntry.Kind.PHONE, phones)):
        for value in values:
            if value and value.strip():
                wanted.update((kind, keyed_digest(form)) for form in identifier_forms(kind, value))
    if not wanted:
        return 0
    with transaction.atomic():
        existing = set(SuppressionEntry.objects.filter(
            source__in=INTERNAL_SOURCES, digest__in=[d for _, d in wanted]).values_list("kind", "digest"))
        new = [SuppressionEntry(kind=kind, digest=digest, source=source, reason=reason[:200])
               for kind, digest in sorted(wanted - existing)]
        SuppressionEntry.objects.bulk_create(new, batch_size=1000)
    return len(new)


def import_list(*, name: str, kind: str, screened_on: date, values: Iterable[str],
                hashed: bool = False, actor: Any = None) -> SuppressionList:
    """Import an external do-not-contact list; plain values are hashed, never stored.

    ``hashed=True`` takes lines that are already SHA-256 hex digests of the normalised
    identifier (as some list providers distribute them).
    """
    if kind not in LIST_IDENTIFIER_KIND:
        raise DomainError(f"Unknown list kind {kind!r}.",
                          field_errors={"kind": [f"Choose one of {', '.join(LIST_IDENTIFIER_KIND)}."]})
    if not name.strip():
        raise DomainError("Give the list a name.", field_errors={"name": ["Give the list a name."]})
    if screened_on > date.today():
        raise DomainError("The screening date cannot be in the future.",
                          field_errors={"screened_on": ["The screening date cannot be in the future."]})
    identifier_kind = LIST_IDENTIFIER_KIND[kind]
    digests: set[tuple[str, str]] = set()
    bad: list[str] = []
    for line_no, raw in enumerate(values, start=1):
        value = raw.strip()
        if not value or value.startswith("#"):
            continue
        if hashed:
            digest = value.lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                bad.append(f"line {line_no}: not a SHA-256 hex digest")
                continue
            digests.add((digest, SuppressionEntry.Algorithm.SHA256))
        else:
            for form in identifier_forms(identifier_kind, value):
                digests.add((keyed_digest(form), SuppressionEntry.Algorithm.HMAC_SHA256))
    if bad:
        shown = "; ".join(bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
        raise DomainError(f"The list has invalid lines: {shown}.", field_errors={"values": [shown]})
    with transaction.atomic():
        suppression_list = SuppressionList.objects.create(
            name=name.strip(), kind=kind, screened_on=screened_on, imported_by=_as_user(actor))
        SuppressionEntry.objects.bulk_create(
            [SuppressionEntry(kind=identifier_kind, digest=d, algorithm=a, source=SuppressionEntry.Source.LIST,
                              list=suppression_list) for d, a in sorted(digests)], batch_size=2000)
        suppression_list.entry_count = len(digests)
        suppression_list.save(update_fields=["entry_count", "updated_at"])
    return suppression_list


def remove_entry(*, entry: SuppressionEntry) -> None:
    """Remove one manual entry (erasure entries stay: the erased person cannot ask again)."""
    if entry.source != SuppressionEntry.Source.MANUAL:
        raise DomainError("Only entries added by staff can be removed.")
    entry.delete()


def _as_user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None
