"""O — background jobs on django-tasks: enqueue after commit, retries, periodic schedule.

Jobs take ids, re-fetch, and call a service (STYLE 9). ``enqueue_on_commit`` makes sure a job
never sees a transaction that rolled back. ``retrying`` re-enqueues a failed run with
exponential back-off. ``PERIODIC`` is the scheduler's table of what runs how often; the worker
claims each due run with a conditional UPDATE, so several workers never enqueue it twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger("rapport.jobs")


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Enqueue ``task`` once the current transaction commits (immediately outside one)."""
    transaction.on_commit(lambda: task.enqueue(*args, **kwargs))


def retrying(max_attempts: int = 5, base_delay: float = 10.0) -> Callable:
    """Decorate a task function (one taking ``context`` first) to retry with back-off.

    The attempt number travels in the ``_attempt`` keyword; after ``max_attempts`` the error
    is raised and the task result records the failure.
    """

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(context: Any, *args: Any, _attempt: int = 1, **kwargs: Any) -> Any:
            try:
                return func(context, *args, **kwargs)
            except Exception:
                if _attempt >= max_attempts:
                    raise
                delay = base_delay * (2 ** (_attempt - 1))
                task = context.task_result.task.using(run_after=timezone.now() + timedelta(seconds=delay))
                task.enqueue(*args, _attempt=_attempt + 1, **kwargs)
                logger.warning("job %s failed (attempt %s); retrying in %ss",
                               func.__name__, _attempt, delay, exc_info=True)
                return {"retried": True, "attempt": _attempt}

        return wrapper

    return decorator


@dataclass(frozen=True)
class Periodic:
    name: str
    every: timedelta
    task_path: str  # dotted path to a django-tasks Task taking no arguments


PERIODIC: list[Periodic] = []


def register_periodic(name: str, every: timedelta, task_path: str) -> None:
    """Declare a job the worker's scheduler enqueues every ``every`` (apps call this in ready())."""
    if not any(p.name == name for p in PERIODIC):
        PERIODIC.append(Periodic(name, every, task_path))


def enqueue_due_periodic(now: Any = None) -> list[str]:
    """Enqueue every periodic job that is due; safe with several workers. Returns names."""
    from django.utils.module_loading import import_string

    from rapport.core.models import ScheduledJob

    now = now or timezone.now()
    enqueued = []
    for periodic in PERIODIC:
        ScheduledJob.objects.get_or_create(name=periodic.name, defaults={"next_run_at": now})
        claimed = ScheduledJob.objects.filter(name=periodic.name, next_run_at__lte=now).update(
            next_run_at=now + periodic.every, last_enqueued_at=now)
        if claimed:
            import_string(periodic.task_path).enqueue()
            enqueued.append(periodic.name)
    return enqueued
