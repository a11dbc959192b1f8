"""C5 — refusals the privacy core raises; the API turns them into problems, the UI into messages."""

from __future__ import annotations

from rapport.core.errors import DomainError


class ProcessingRestricted(DomainError):
    """Processing of the person's data is restricted (GDPR Art. 18): storage only."""

    status_code = 409
    title = "Processing restricted"
    code = "processing_restricted"


class PersonErased(DomainError):
    """The person was erased; the record is anonymised and takes no new data."""

    status_code = 409
    title = "Person erased"
    code = "erased"


class LegalHoldActive(DomainError):
    """A legal hold keeps the person's data: no erasure, no retention purge."""

    status_code = 409
    title = "Legal hold"
    code = "legal_hold"


class InvalidConfirmation(DomainError):
    """A double opt-in link that is forged, expired, or superseded."""

    status_code = 400
    title = "Invalid confirmation link"
    code = "invalid_confirmation"
