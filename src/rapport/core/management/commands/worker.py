"""``rapport worker``: run background jobs (django-tasks-db) plus the periodic scheduler.

A side thread writes a heartbeat (seen by /healthz) and enqueues due periodic jobs every
few seconds; the main thread is django-tasks-db's worker loop, which claims each job with a
row lock so several workers on one PostgreSQL never run the same job twice.
"""

from __future__ import annotations

import os
import socket
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

from rapport.core.jobs import enqueue_due_periodic
from rapport.core.models import WorkerHeartbeat

HEARTBEAT_SECONDS = 10.0


class Command(BaseCommand):
    help = "Run the background worker and scheduler."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--queue", default="default", help="Queues to process, comma-separated.")
        parser.add_argument("--interval", type=float, default=1.0, help="Idle poll interval (s).")
        parser.add_argument("--batch", action="store_true", help="Run what is due, then exit.")
        parser.add_argument("--no-scheduler", action="store_true", help="Do not enqueue periodic jobs.")

    def handle(self, *args, queue: str, interval: float, batch: bool, no_scheduler: bool,  # type: ignore[no-untyped-def]
               **options) -> None:
        worker_id = f"{socket.gethostname()[:20]}-{os.getpid()}-{get_random_string(6)}"
        stop = threading.Event()
        if not batch:
            thread = threading.Thread(target=self._beat, args=(worker_id, stop, no_scheduler), daemon=True)
            thread.start()
        else:
            self._beat_once(worker_id, no_scheduler)
        self.stdout.write(f"worker {worker_id} processing queue(s) {queue}")
        worker = Worker(queue_names=queue.split(","), interval=interval, batch=batch,
                        backend_name="default", startup_delay=not batch, max_tasks=None,
                        worker_id=worker_id[:64], excluded_queue_names=[])
        worker.configure_signals()
        try:
            worker.run()
        finally:
            stop.set()
            WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()

    def _beat(self, worker_id: str, stop: threading.Event, no_scheduler: bool) -> None:
        while not stop.is_set():
            try:
                self._beat_once(worker_id, no_scheduler)
            except Exception as err:
                self.stderr.write(f"heartbeat failed: {err}")
            finally:
                close_old_connections()
            stop.wait(HEARTBEAT_SECONDS)

    def _beat_once(self, worker_id: str, no_scheduler: bool) -> None:
        WorkerHeartbeat.objects.update_or_create(
            worker_id=worker_id,
            defaults={"hostname": socket.gethostname()[:255], "pid": os.getpid(), "seen_at": timezone.now()},
        )
        if not no_scheduler:
            enqueue_due_periodic()


