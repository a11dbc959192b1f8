"""S7 — API token scopes enforced on every endpoint, and rate limits with 429 + Retry-After."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from rapport.access.api.throttling import hit, parse_rate, purge_old_windows
from rapport.access.models import RateLimitCounter
from rapport.access.services import token_create, token_revoke
from rapport.core.testing import make_person, token_client


def rates(settings, token: str = "1000/min", address: str = "1000/min") -> None:  # noqa: S107 - a rate
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"token": token, "address": address}}


def test_me_reports_role_permissions_and_scopes(user_in):
    body = token_client(user_in("front-desk", "desk"), ["read"]).get("/api/v1/me/").json()
    assert body["role"] == "Front desk" and body["scopes"] == ["read"]
    assert "export" not in body["permissions"]["people.person"]


def test_read_scope_cannot_write_and_write_scope_can(user_in, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    rep = user_in("sales-rep", "rep")
    ada = make_person(actor=rep, given_name="Ada")
    upload = {"object_type": "people.person", "object_id": str(ada.pk)}
    reader, writer = token_client(rep, ["read"]), token_client(rep, ["read", "write"])
    refused = reader.post("/api/v1/attachments/", {**upload, "file": SimpleUploadedFile("a.txt", b"x")},
                          format="multipart")
    created = writer.post("/api/v1/attachments/", {**upload, "file": SimpleUploadedFile("a.txt", b"x")},
                          format="multipart")
    assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"
    assert created.status_code == 201
    assert reader.get("/api/v1/attachments/").status_code == 200
    assert writer.delete(f"/api/v1/attachments/{created.json()['id']}/").status_code == 204


def test_role_permission_is_checked_for_api_views(user_in, settings, tmp_path):
    """Marketing may read attachments but not add them, whatever the token's scopes."""
    settings.MEDIA_ROOT = tmp_path
    rep, mo = user_in("sales-rep", "rep"), user_in("marketing", "mo")
    ada = make_person(actor=rep, given_name="Ada")
    response = token_client(mo, ["read", "write"]).post(
        "/api/v1/attachments/", {"object_type": "people.person", "object_id": str(ada.pk),
                                 "file": SimpleUploadedFile("a.txt", b"x")}, format="multipart")
    assert response.status_code == 403


def test_revoked_and_expired_tokens_are_refused(staff_user):
    from datetime import timedelta

    from django.utils import timezone

    token, key = token_create(user=staff_user, scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me/").status_code == 200
    token_revoke(token=token)
    assert client.get("/api/v1/me/").status_code == 401
    _, old = token_create(user=staff_user, scopes=["read"], expires_at=timezone.now() - timedelta(seconds=1))
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.get("/api/v1/me/").status_code == 401


def test_rate_limit_per_token_answers_429_with_retry_after(staff_user, settings):
    rates(settings, token="3/min")
    client = token_client(staff_user, ["read"])
    statuses = [client.get("/api/v1/me/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/api/v1/me/")
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 60
    assert limited["Content-Type"] == "application/problem+json"
    # another token of another user is not affected
    assert token_client(staff_user, ["read"]).get("/api/v1/me/").status_code == 200


def test_rate_limit_per_address(staff_user, admin_user, settings):
    rates(settings, address="2/min")
    first, second = token_client(staff_user, ["read"]), token_client(admin_user, ["read"])
    assert first.get("/api/v1/me/", REMOTE_ADDR="192.0.2.10").status_code == 200
    assert second.get("/api/v1/me/", REMOTE_ADDR="192.0.2.10").status_code == 200
    assert second.get("/api/v1/me/", REMOTE_ADDR="192.0.2.10").status_code == 429
    assert second.get("/api/v1/me/", REMOTE_ADDR="2001:db8::10").status_code == 200


def test_counters_are_shared_rows_and_old_windows_are_purged(db):
    assert [hit("k", 60), hit("k", 60), hit("k", 120)] == [1, 2, 1]
    assert RateLimitCounter.objects.count() == 2
    assert purge_old_windows(older_than_seconds=0) == 2


def test_counting_is_one_statement_and_the_fallback_counts_the_same(db, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    hit("one", 60)
    with CaptureQueriesContext(connection) as ctx:
        assert hit("one", 60) == 2
    assert len(ctx.captured_queries) == 1
    # databases without INSERT … RETURNING (SQLite < 3.35) take the update-or-insert path
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    assert [hit("one", 60), hit("two", 60), hit("two", 60)] == [3, 1, 2]


@pytest.mark.parametrize("rate, parsed", [("10/min", (10, 60)), ("5/s", (5, 1)), ("100/hour", (100, 3600)),
                                          ("off", (None, 1))])
def test_parse_rate(rate, parsed):
    assert parse_rate(rate) == parsed
