"""What the next request sees: shared by the access-cache tests (per-process caches must never
serve a change late, so they compare against a user loaded the way a request loads one)."""

from __future__ import annotations

from typing import Any

from django.apps import apps

from rapport.access import services
from rapport.access.models import Access, Role, User
from rapport.access.seeds import seed_access
from rapport.people.models import Person


def request_user(user: User) -> User:
    """The user as the next session request loads it: a fresh row, nothing cached on it."""
    return User.objects.select_related("role").get(pk=user.pk)


def visible_ids(user: User) -> set[Any]:
    """The ids of the people the next request of ``user`` may see."""
    return set(Person.objects.visible_to(request_user(user)).values_list("pk", flat=True))


def a_rep_and_a_colleagues_private_person() -> tuple[User, User, Person]:
    """The seeded roles, people private by default, two sales reps and a person the second one
    owns: ``(rep, colleague, theirs)``; the rep cannot see ``theirs`` (asserted)."""
    seed_access(apps)
    rep = User.objects.create_user("rep", password=None, role=Role.objects.get(key="sales-rep"))
    colleague = User.objects.create_user("colleague", password=None, role=Role.objects.get(key="sales-rep"))
    services.sharing_default_set(actor=None, object_type="people.person", access=Access.PRIVATE)
    theirs = Person.objects.create(given_name="Pat", family_name="Lee", given_key="pat", family_key="lee",
                                   owner=colleague)
    assert theirs.pk not in visible_ids(rep)
    return rep, colleague, theirs
