"""What the next request sees: shared by the access-cache tests (per-process caches must never
serve a change late, so they compare against a user loaded the way a request loads one)."""

from __future__ import annotations

from typing import Any

from rapport.access.models import User
from rapport.people.models import Person


def request_user(user: User) -> User:
    """The user as the next session request loads it: a fresh row, nothing cached on it."""
    return User.objects.select_related("role").get(pk=user.pk)


def visible_ids(user: User) -> set[Any]:
    """The ids of the people the next request of ``user`` may see."""
    return set(Person.objects.visible_to(request_user(user)).values_list("pk", flat=True))
