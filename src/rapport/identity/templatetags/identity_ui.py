"""Template filters of the duplicate review screens."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(probability: float | None) -> str:
    """A match probability as a percentage that never rounds a doubt away (0.9996 → "99.9%")."""
    if probability is None:
        return "—"
    value = float(probability) * 100
    if value >= 100:
        return "100%"
    shown = min(int(value * 10) / 10, 99.9)
    return f"{shown:.1f}%"
