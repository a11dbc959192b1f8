"""C2, C6 — background jobs of the privacy core (ids in, re-fetched, one service call)."""

from __future__ import annotations

from typing import Any

from django_tasks import task


@task()
def send_consent_confirmation_task(event_id: str) -> bool:
    """Mail the double opt-in link for a pending consent (enqueued after the grant commits)."""
    from rapport.privacy.outbound import send_consent_confirmation

    result = send_consent_confirmation(event_id)
    return bool(result and result.sent)


@task()
def apply_retention_task() -> dict[str, Any]:
    """The daily retention run (registered as a periodic job by the privacy app)."""
    from rapport.privacy.retention import apply_retention

    run = apply_retention(dry_run=False)
    return {"run": run.pk, "done": {p["key"]: p["done"] for p in run.summary.get("policies", [])}}
