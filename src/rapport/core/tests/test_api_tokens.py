"""``core.api.tokens``: the prepared token lookup decides exactly as ``token_authenticate``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rapport.access.models import ApiToken
from rapport.access.services import token_authenticate, token_create, token_revoke
from rapport.core import testing
from rapport.core.api.tokens import PreparedTokenAuthentication, token_lookup

pytestmark = pytest.mark.django_db


def _same(raw: str) -> ApiToken | None:
    """Both lookups, which must agree; returns the prepared one's answer."""
    expected, got = token_authenticate(raw), token_lookup(raw)
    assert (expected is None) == (got is None), raw
    if got is not None:
        assert got.pk == expected.pk and got.user.pk == expected.user.pk
        assert got.user.role_id == expected.user.role_id
        assert (got.user.role.pk if got.user.role_id else None) == (
            expected.user.role.pk if expected.user.role_id else None)
        assert got.access_generation == expected.access_generation
        assert got.scopes == expected.scopes and got.expires_at == expected.expires_at
    return got


def test_it_is_the_api_s_token_authentication():
    assert settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0] == (
        "rapport.core.api.tokens.PreparedTokenAuthentication")


def test_every_case_decides_as_token_authenticate(staff_user):
    # given
    token, key = token_create(user=staff_user, name="t", scopes=["read"])
    other_user = testing.make_user("other")
    _, other_key = token_create(user=other_user, name="o")
    _, prefix, secret = key.split("_", 2)
    # then: good keys, malformed ones, a wrong secret, an unknown prefix
    assert _same(key) is not None and _same(other_key).user == other_user
    for raw in ("", "rpt", "rpt_x", f"xyz_{prefix}_{secret}", f"rpt_{prefix}_{secret}x",
                f"rpt_{prefix}_", f"rpt_nope_{secret}", f"rpt_{prefix}_{secret[:-1]}"):
        assert _same(raw) is None
    # when: expired, then revoked, then the user deactivated — each counts on the next lookup
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _same(key) is None
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() + timedelta(days=1))
    assert _same(key) is not None
    token_revoke(token=ApiToken.objects.get(pk=token.pk))
    assert _same(key) is None
    assert _same(other_key) is not None
    other_user.is_active = False
    other_user.save(update_fields=["is_active"])
    assert _same(other_key) is None


def test_a_lookup_is_one_statement_and_last_use_is_written_once_a_minute(staff_user):
    # given
    token, key = token_create(user=staff_user, name="t")
    # when: first use writes last_used_at
    with CaptureQueriesContext(connection) as first:
        assert token_lookup(key) is not None
    with CaptureQueriesContext(connection) as again:
        assert token_lookup(key) is not None
    # then
    assert len(first.captured_queries) == 2 and "UPDATE" in first.captured_queries[1]["sql"]
    assert len(again.captured_queries) == 1
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_api_requests_are_refused_once_the_token_is_revoked(staff_user):
    # given
    token, key = token_create(user=staff_user, name="t")
    client = testing.APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/people/").status_code == 200
    # when
    token_revoke(token=token)
    # then
    response = client.get("/api/v1/people/")
    assert response.status_code == 401 and response["Content-Type"].startswith("application/problem+json")
    client.credentials(HTTP_AUTHORIZATION="Token nonsense and more")
    assert client.get("/api/v1/people/").status_code == 401


def test_the_class_keeps_access_s_header_rules(rf, staff_user):
    _, key = token_create(user=staff_user, name="t")
    auth = PreparedTokenAuthentication()
    from rest_framework.request import Request

    assert auth.authenticate(Request(rf.get("/"))) is None
    assert auth.authenticate(Request(rf.get("/", HTTP_AUTHORIZATION="Basic abc"))) is None
    user, token = auth.authenticate(Request(rf.get("/", HTTP_AUTHORIZATION=f"Bearer {key}")))
    assert user == staff_user and token.user == staff_user
    assert auth.authenticate_header(Request(rf.get("/"))) == "Token"
