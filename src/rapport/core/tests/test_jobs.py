"""O — background jobs: durable enqueue, retries with back-off, periodic scheduling, on-commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from rapport.core import jobs
from rapport.core.models import ScheduledJob

pytestmark = pytest.mark.django_db

CALLS: list[str] = []


@task()
def record_call(label: str) -> str:
    CALLS.append(label)
    return label


@task(takes_context=True)
@jobs.retrying(max_attempts=3, base_delay=10.0)
def always_fails(context, label: str) -> None:  # type: ignore[no-untyped-def]
    raise RuntimeError(f"boom {label}")


@task()
def periodic_tick() -> None:
    CALLS.append("tick")


@pytest.fixture(autouse=True)
def _clean() -> None:
    CALLS.clear()
    saved = list(jobs.PERIODIC)
    yield
    jobs.PERIODIC[:] = saved


# The worker closes its database connection between jobs, so these run outside a test transaction.
@pytest.mark.django_db(transaction=True)
def test_enqueued_task_is_stored_and_run_by_worker_batch() -> None:
    # given
    result = record_call.enqueue("hello")
    assert DBTaskResult.objects.filter(id=result.id, status="READY").exists()
    # when
    call_command("worker", "--batch", "--no-scheduler", "--interval", "0")
    # then
    assert CALLS == ["hello"]
    assert DBTaskResult.objects.get(id=result.id).status == "SUCCESSFUL"


@pytest.mark.django_db(transaction=True)
def test_retrying_reenqueues_with_backoff_then_gives_up() -> None:
    # given
    first = always_fails.enqueue("x")
    before = timezone.now()
    # when: the first attempt fails and is re-enqueued for later
    call_command("worker", "--batch", "--no-scheduler", "--interval", "0")
    # then
    retry = DBTaskResult.objects.exclude(id=first.id).get()
    assert retry.status == "READY"
    assert retry.args_kwargs["kwargs"]["_attempt"] == 2
    assert retry.run_after >= before + timedelta(seconds=10)
    # when: attempts 2 and 3 are made due and run
    for _ in (2, 3):
        DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now() - timedelta(seconds=1))
        call_command("worker", "--batch", "--no-scheduler", "--interval", "0")
    # then: the third attempt failed for good and nothing more is queued
    assert not DBTaskResult.objects.filter(status="READY").exists()
    assert DBTaskResult.objects.filter(status="FAILED").count() == 1
    assert DBTaskResult.objects.count() == 3


def test_due_periodic_job_is_enqueued_once_per_interval() -> None:
    # given: only this test's job is registered (apps register their own at start-up)
    jobs.PERIODIC.clear()
    jobs.register_periodic("tick", timedelta(minutes=5), f"{__name__}.periodic_tick")
    now = timezone.now()
    # when: two schedulers look at the same instant
    first = jobs.enqueue_due_periodic(now)
    second = jobs.enqueue_due_periodic(now)
    # then
    assert first == ["tick"] and second == []
    assert DBTaskResult.objects.count() == 1
    assert ScheduledJob.objects.get(name="tick").next_run_at == now + timedelta(minutes=5)
    # when: before and after the interval
    early = jobs.enqueue_due_periodic(now + timedelta(minutes=4))
    later = jobs.enqueue_due_periodic(now + timedelta(minutes=5))
    # then
    assert early == [] and later == ["tick"]
    assert DBTaskResult.objects.count() == 2


def test_enqueue_on_commit_does_nothing_on_rollback(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    # given / when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                jobs.enqueue_on_commit(record_call, "rolled back")
                raise RuntimeError("abort")
        except RuntimeError:
            pass
    # then
    assert callbacks == []
    assert not DBTaskResult.objects.exists()


def test_enqueue_on_commit_enqueues_after_commit(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    # given / when
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        jobs.enqueue_on_commit(record_call, "kept")
        assert not DBTaskResult.objects.exists()
    # then
    assert DBTaskResult.objects.get().args_kwargs["args"] == ["kept"]
