"""O — /healthz reports the database and whether a worker checked in recently."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from rapport.core.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def _beat(age: timedelta) -> None:
    WorkerHeartbeat.objects.create(worker_id="w1", hostname="h", pid=1, seen_at=timezone.now() - age)


def test_health_without_worker(client) -> None:  # type: ignore[no-untyped-def]
    # given no heartbeat / when
    response = client.get("/healthz")
    # then
    assert response.status_code == 200
    assert response.json()["database"]["status"] == "ok"
    assert response.json()["worker"] == {"status": "absent"}


def test_health_with_recent_worker(client) -> None:  # type: ignore[no-untyped-def]
    # given
    _beat(timedelta(seconds=5))
    # when
    body = client.get("/healthz").json()
    # then
    assert body["worker"]["status"] == "ok"


def test_health_with_stale_worker(client) -> None:  # type: ignore[no-untyped-def]
    # given
    _beat(timedelta(hours=1))
    # when
    body = client.get("/healthz").json()
    # then
    assert body["worker"]["status"] == "stale"
    assert body["worker"]["age_seconds"] >= 3600


def test_log_lines_are_json_with_the_request_id() -> None:
    # given
    import json
    import logging

    from rapport.core.logging import JsonFormatter
    from rapport.core.middleware import current_request_id

    record = logging.LogRecord("rapport.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    token = current_request_id.set("req-123")
    # when
    try:
        line = JsonFormatter().format(record)
    finally:
        current_request_id.reset(token)
    # then
    entry = json.loads(line)
    assert entry["message"] == "hello world"
    assert entry["request_id"] == "req-123"
    assert entry["level"] == "INFO"


def test_request_id_is_echoed(client) -> None:  # type: ignore[no-untyped-def]
    # given / when
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-1")
    # then
    assert response["X-Request-Id"] == "abc-1"
