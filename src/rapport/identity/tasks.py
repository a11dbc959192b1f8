"""I3 — background jobs of identity resolution (ids in, re-fetched, one service call)."""

from __future__ import annotations

from typing import Any

from django_tasks import task


@task()
def dedupe_task() -> dict[str, Any]:
    """The scheduled de-duplication run (registered as a periodic job by the identity app)."""
    from rapport.identity.dedupe import auto_merge_setting, run_dedupe

    report = run_dedupe(auto_merge_above=auto_merge_setting(), channel="job")
    return {"people": report.people, "suggested_new": report.suggested_new,
            "suggested_updated": report.suggested_updated, "auto_merged": report.auto_merged}
