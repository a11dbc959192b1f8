"""S5 — the access audit: who viewed, searched, exported or changed a person's data.

Services call these functions inside their own transaction; adapters pass the channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def record_person_access(*, actor: Any, action: str, people: Iterable[Any], channel: str,
                         request: Any = None, reason: str = "", detail: dict | None = None) -> None:
    """Record that ``actor`` performed ``action`` (view, search, export, change) on ``people``."""
    # Filled in by the access-control issue (hash-chained AuditEntry rows).
    return None
