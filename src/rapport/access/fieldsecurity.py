"""S3 — field-level security: which fields of a model a user may not see or may not change.

Every serializer, form, template, search result and export asks these two functions.
Foundation rule until per-role field security lands: nothing is hidden or read-only.
"""

from __future__ import annotations

from typing import Any


def hidden_fields(user: Any, model_label: str) -> frozenset[str]:
    """Fields of ``model_label`` (e.g. "people.Person") that ``user`` must not see at all."""
    return frozenset()


def readonly_fields(user: Any, model_label: str) -> frozenset[str]:
    """Fields of ``model_label`` that ``user`` may see but not change."""
    return frozenset()
