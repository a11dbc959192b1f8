"""Test machinery shared by every app's tests: users, token clients, record factories.

Factories go through the real services, so test data obeys the same rules as real data.
"""

from __future__ import annotations

import itertools
from typing import Any

from rest_framework.test import APIClient

from rapport.access.models import User
from rapport.access.services import token_create
from rapport.people.models import Organisation, Person
from rapport.people.services import ContactPointInput, organisation_create, person_create

PASSWORD = "correct-horse-battery-9"  # noqa: S105 - test users only
_counter = itertools.count(1)


def make_user(username: str, *, is_superuser: bool = False, **extra: Any) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, email=f"{username}@staff.test",
                                    is_staff=is_superuser, is_superuser=is_superuser, **extra)
    return user


def token_client(user: User, scopes: list[str] | None = None) -> APIClient:
    _, key = token_create(user=user, name="test", scopes=scopes or ["read", "write", "export", "admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    client.user = user  # type: ignore[attr-defined]
    return client


def make_person(*, actor: Any, given_name: str | None = None, family_name: str | None = None,
                emails: list[str] | None = None, phones: list[str] | None = None,
                **kwargs: Any) -> Person:
    n = next(_counter)
    points = [ContactPointInput(kind="email", value=e) for e in (emails or [])]
    points += [ContactPointInput(kind="phone", value=p) for p in (phones or [])]
    return person_create(
        actor=actor,
        given_name=given_name if given_name is not None else f"Given{n}",
        family_name=family_name if family_name is not None else f"Family{n}",
        contact_points=points, **kwargs,
    )


def make_organisation(*, actor: Any, name: str | None = None, **kwargs: Any) -> Organisation:
    n = next(_counter)
    return organisation_create(actor=actor, name=name or f"Organisation {n}", **kwargs)
