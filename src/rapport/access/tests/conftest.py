"""Fixtures of the access tests: users in seed roles, a private keyring, request factories."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from rapport.access import policy
from rapport.access.encryption import Keyring, use_keyring
from rapport.access.models import Role
from rapport.core import testing


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Argon2 is slow on purpose; these tests sign in often and test nothing about hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def roles(db) -> dict[str, Role]:
    return {role.key: role for role in Role.objects.all()}


@pytest.fixture
def user_in(db, roles):
    """``user_in("sales-rep", "rita")``: an active user with that seed role."""

    def make(role_key: str, username: str | None = None, **extra):
        return testing.make_user(username or role_key.replace("-", "_"), role=roles[role_key], **extra)

    return make


@pytest.fixture
def private_keyring(tmp_path):
    """A keyring of this test's own (rotation must not touch the shared var/keys.json)."""
    ring = Keyring.generate(source=tmp_path / "keys.json")
    with use_keyring(ring):
        yield ring


@pytest.fixture
def another_process(monkeypatch):
    """Run a change as another process would: this process's cached configuration and
    generation are put back as they were, so only the database knows of the change."""

    def run(change):
        kept = policy._generation, policy._config
        change()
        monkeypatch.setattr(policy, "_generation", kept[0])
        monkeypatch.setattr(policy, "_config", kept[1])

    return run


@pytest.fixture
def on_another_connection():
    """Run ``change`` in a thread, which has a database connection of its own (closed after);
    an error there fails the test here."""

    def run(change):
        errors = []

        def target():
            try:
                change()
            except Exception as err:  # pragma: no cover - reported below
                errors.append(err)
            finally:
                connection.close()

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        assert not errors, errors

    return run
