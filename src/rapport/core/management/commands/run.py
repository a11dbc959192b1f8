"""``rapport run``: the web server and a worker together; Ctrl-C stops both cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the web server (gunicorn) and the background worker; Ctrl-C stops both."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--bind", default=os.environ.get("RAPPORT_BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("RAPPORT_WEB_WORKERS", "2")))
        # Threads (gunicorn's gthread worker) keep HTTP/1.1 connections alive and let one process
        # serve another request while a query waits; the sync worker closes every connection.
        parser.add_argument("--web-threads", type=int, default=int(os.environ.get("RAPPORT_WEB_THREADS", "4")))
        parser.add_argument("--no-worker", action="store_true", help="Start the web server only.")

    def handle(self, *args, bind: str, web_workers: int, web_threads: int, no_worker: bool,  # type: ignore[no-untyped-def]
               **options) -> None:
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="rapport.settings")
        web = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", "gunicorn", "rapport.wsgi:application", "--bind", bind,
             "--workers", str(web_workers), "--threads", str(max(1, web_threads)),
             "--access-logfile", "-", "--graceful-timeout", "5"],
            env=env,
        )
        processes = [web]
        if not no_worker:
            processes.append(subprocess.Popen([sys.executable, "-m", "rapport", "worker"], env=env))
        host, _, port = bind.rpartition(":")
        self.stdout.write(self.style.SUCCESS(f"Rapport is running on http://{host}:{port}/  (Ctrl-C stops it)"))
        self._print_sign_in(f"http://{host}:{port}/")

        def stop(signum: int, frame: object) -> None:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        finally:
            stop(signal.SIGTERM, None)
            deadline = time.monotonic() + 15
            for process in processes:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        self.stdout.write("Rapport stopped.")

    def _print_sign_in(self, url: str) -> None:
        """Show the demo users' credentials (written by ``rapport demo``), if there are any."""
        from django.conf import settings

        path = settings.VAR_DIR / "demo-credentials.txt"
        if not path.is_file():
            self.stdout.write("Sign in with a user made by `rapport createsuperuser`.")
            return
        for line in path.read_text().splitlines():
            username, _, password = line.partition(" ")
            self.stdout.write(f"Sign in at {url} as {username} / {password}")
