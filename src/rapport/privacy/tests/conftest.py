"""Fixtures of the privacy tests: people with consents, staff clients."""

from __future__ import annotations

import pytest
from django.core import mail

from rapport.privacy import outbound
from rapport.privacy.models import ConsentBasis, ConsentSource
from rapport.privacy.services import record_consent


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """A private MEDIA_ROOT: imports and attachments write files there."""
    from pathlib import Path

    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def history(admin_user, admin_api_client):
    """A person who came in by import and then did everything Rapport records (histories.py)."""
    from rapport.privacy.tests.histories import full_history

    return full_history(admin_user, admin_api_client)


@pytest.fixture(autouse=True)
def _clean_outbox():
    outbound.OUTBOX.clear()
    mail.outbox = []
    yield
    outbound.OUTBOX.clear()


@pytest.fixture
def grant(staff_user):
    """Record a confirmed consent (no double opt-in) for a person, purpose and channel."""

    def give(person, purpose="newsletter", channel="email", basis=ConsentBasis.CONSENT, **kwargs):
        kwargs.setdefault("source", ConsentSource.STAFF)
        kwargs.setdefault("captured_by", staff_user)
        kwargs.setdefault("double_opt_in", False)
        if basis == ConsentBasis.SOFT_OPT_IN:
            kwargs.setdefault("proof", {"refusal_offered": True, "sale": "order 1"})
        return record_consent(person=person, purpose=purpose, channel=channel, granted=True,
                              lawful_basis=basis, **kwargs)

    return give


@pytest.fixture
def withdraw(staff_user):
    def take(person, purpose="newsletter", channel="email", **kwargs):
        kwargs.setdefault("source", ConsentSource.STAFF)
        kwargs.setdefault("captured_by", staff_user)
        return record_consent(person=person, purpose=purpose, channel=channel, granted=False,
                              lawful_basis=ConsentBasis.CONSENT, **kwargs)

    return take


OFFICER_PERMISSIONS = {
    "people.person": ["create", "read", "update", "delete", "export", "erase"],
    "privacy.rightsrequest": ["create", "read", "update", "execute"],
    "privacy.settings": ["manage"],
}


def make_officer(user):
    """Give ``user`` a data-protection officer role (every privacy permission)."""
    from rapport.access.models import Role
    from rapport.access.policy import forget

    role, _ = Role.objects.get_or_create(key="privacy-officer", defaults={
        "name": "Privacy officer", "permissions": OFFICER_PERMISSIONS})
    user.role = role
    user.save(update_fields=["role"])
    forget(user)
    return user


@pytest.fixture
def officer(staff_user):
    """The ``staff`` user, made a privacy officer (the people they create are theirs)."""
    return make_officer(staff_user)


@pytest.fixture
def officer_client(officer, client):
    client.force_login(officer)
    return client


@pytest.fixture
def officer_api(officer):
    from rapport.core.testing import token_client

    return token_client(officer)
