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
