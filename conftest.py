"""Shared pytest fixtures: users, API clients and record factories (see rapport.core.testing)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings as hypothesis_settings

from rapport.core import testing

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from the
# test body are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Property tests judge answers, never speed: on a loaded 2-core CI machine one slow example
# past hypothesis's 200 ms deadline would fail a correct test (speed lives in bench/).
hypothesis_settings.register_profile("rapport", deadline=None)
hypothesis_settings.load_profile("rapport")


@pytest.fixture
def admin_user(db):
    return testing.make_user("admin", is_superuser=True)


@pytest.fixture
def staff_user(db):
    return testing.make_user("staff")


@pytest.fixture
def api_client(staff_user):
    return testing.token_client(staff_user)


@pytest.fixture
def admin_api_client(admin_user):
    return testing.token_client(admin_user)


@pytest.fixture
def make_person(db, staff_user):
    def make(**kwargs):
        kwargs.setdefault("actor", staff_user)
        return testing.make_person(**kwargs)

    return make


@pytest.fixture
def make_organisation(db, staff_user):
    def make(**kwargs):
        kwargs.setdefault("actor", staff_user)
        return testing.make_organisation(**kwargs)

    return make
