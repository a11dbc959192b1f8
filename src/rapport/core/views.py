"""O — health endpoint and the staff home page."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from rapport.core.models import WorkerHeartbeat

WORKER_STALE_AFTER = timedelta(seconds=60)


def healthz(request: HttpRequest) -> JsonResponse:
    """Database reachability and whether a worker has checked in within the last minute."""
    body: dict = {"status": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"] = {"status": "ok", "vendor": connection.vendor}
    except Exception as err:
        body["status"] = "error"
        body["database"] = {"status": "error", "error": err.__class__.__name__}
        return JsonResponse(body, status=503)
    latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    if latest is None:
        body["worker"] = {"status": "absent"}
    else:
        age = timezone.now() - latest.seen_at
        body["worker"] = {
            "status": "ok" if age <= WORKER_STALE_AFTER else "stale",
            "last_seen": latest.seen_at.isoformat(),
            "age_seconds": round(age.total_seconds(), 1),
        }
    return JsonResponse(body)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    from rapport.people.selectors import home_summary

    return render(request, "core/home.html", home_summary(user=request.user))
