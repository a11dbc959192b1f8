"""S7: API token sign-in, whose lookup is one prepared statement (decision 0014)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rapport.access.authentication import TokenAuthentication
from rapport.access.models import AccessGeneration, ApiToken
from rapport.access.services import token_authenticate, token_create, token_revoke
from rapport.core import testing

pytestmark = pytest.mark.django_db


def _same(raw: str) -> ApiToken | None:
    """The lookup's answer, checked against the token's row read plainly through the ORM."""
    got = token_authenticate(raw)
    if got is not None:
        expected = ApiToken.objects.select_related("user", "user__role").get(pk=got.pk)
        assert raw.split("_", 2)[1] == expected.prefix
        assert got.user.pk == expected.user.pk and got.user.role_id == expected.user.role_id
        assert (got.user.role.pk if got.user.role_id else None) == (
            expected.user.role.pk if expected.user.role_id else None)
        assert got.access_generation == AccessGeneration.objects.get(pk=1).value
        assert got.scopes == expected.scopes and got.expires_at == expected.expires_at
    return got


def test_it_is_the_api_s_token_authentication():
    assert settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0] == (
        "rapport.access.authentication.TokenAuthentication")


def test_every_case_is_decided_on_the_token_s_current_row(staff_user):
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
        assert token_authenticate(key) is not None
    with CaptureQueriesContext(connection) as again:
        assert token_authenticate(key) is not None
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


def test_the_header_rules(rf, staff_user):
    _, key = token_create(user=staff_user, name="t")
    auth = TokenAuthentication()
    from rest_framework.request import Request

    assert auth.authenticate(Request(rf.get("/"))) is None
    assert auth.authenticate(Request(rf.get("/", HTTP_AUTHORIZATION="Basic abc"))) is None
    user, token = auth.authenticate(Request(rf.get("/", HTTP_AUTHORIZATION=f"Bearer {key}")))
    assert user == staff_user and token.user == staff_user
    assert auth.authenticate_header(Request(rf.get("/"))) == "Token"
