"""Template helpers for the import wizard."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    """``{{ counts|get_item:"created" }}`` — a dict value by a variable key."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None
