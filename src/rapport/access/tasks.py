"""S2 — background jobs of the access app (one service call each)."""

from __future__ import annotations

from django_tasks import task


@task()
def planner_statistics_task() -> str:
    """Keep the planner's statistics fresh so visibility filters stay cheap (registered periodic)."""
    from rapport.access.services import planner_statistics_refresh

    return planner_statistics_refresh()
