"""S2 — record visibility. ``restrict`` is the one place that decides who sees which record.

Foundation rule until roles and sharing land: active staff users see every record;
anonymous or inactive users see none.
"""

from __future__ import annotations

from django.db.models import QuerySet


def restrict(queryset: QuerySet, user, action: str = "read") -> QuerySet:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return queryset.none()
    return queryset
