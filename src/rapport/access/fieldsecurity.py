"""S3 — field-level security: which fields of a model a user may not see or may not change.

Per role and field: hidden, read or write (no rule means write). Every serializer, form,
template, search result and export asks these functions; hidden means the key is absent,
not blank. Answers are cached with the user's access context (one query per request).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rapport.access.policy import access_context


def hidden_fields(user: Any, model_label: str) -> frozenset[str]:
    """Fields of ``model_label`` (e.g. "people.Person") that ``user`` must not see at all."""
    levels = _levels(user, model_label)
    return frozenset(name for name, level in levels.items() if level == "hidden")


def readonly_fields(user: Any, model_label: str) -> frozenset[str]:
    """Fields of ``model_label`` that ``user`` may see but not change."""
    levels = _levels(user, model_label)
    return frozenset(name for name, level in levels.items() if level == "read")


def field_level(user: Any, model_label: str, field: str) -> str:
    """"hidden", "read" or "write"."""
    return _levels(user, model_label).get(field, "write")


def strip_hidden(user: Any, model_label: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without the keys ``user`` may not see (for exports and API payloads)."""
    hidden = hidden_fields(user, model_label)
    return {key: value for key, value in data.items() if key not in hidden}


def refused_writes(user: Any, model_label: str, fields: Iterable[str]) -> list[str]:
    """Which of ``fields`` ``user`` may not write (hidden or read-only), sorted."""
    levels = _levels(user, model_label)
    return sorted(name for name in fields if levels.get(name, "write") != "write")


def _levels(user: Any, model_label: str) -> dict[str, str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    return access_context(user).field_levels(model_label)
