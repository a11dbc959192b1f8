"""I5 — suppression: erased people's identifiers (keyed hashes) block re-creation."""

from __future__ import annotations

from collections.abc import Iterable


def ensure_not_suppressed(*, emails: Iterable[str] = (), phones: Iterable[str] = ()) -> None:
    """Raise ``Suppressed`` when any normalised identifier belongs to an erased person.

    Filled in by the privacy issue (keyed-hash suppression list).
    """
    return None
