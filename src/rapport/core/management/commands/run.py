"""``rapport run``: the web server and a worker together; Ctrl-C stops both cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

WEB_SERVERS = ("gunicorn", "granian")
OFF = frozenset({"off", "0", "false", "no"})


def web_server_command(*, server: str, app: str, bind: str, workers: int, threads: int,
                       access_log: bool | None = None) -> list[str]:
    """The argv that serves WSGI ``app`` (``module:callable``); ``bench/api.py`` serves its floor
    applications with the same command.

    The access log (a line per request on stdout) is on unless ``access_log`` is False or, when it
    is not given, ``RAPPORT_ACCESS_LOG`` is ``off``: behind a proxy that logs every request itself it
    is a second copy, and granian writes it through Python's logging in the worker: 1.5–4 % of an
    API request's CPU (decision 0041)."""
    if access_log is None:
        access_log = os.environ.get("RAPPORT_ACCESS_LOG", "on").strip().lower() not in OFF
    host, _, port = bind.rpartition(":")
    if server == "granian":  # Rust HTTP handling; each worker runs the app on ``threads`` threads
        return [sys.executable, "-m", "granian", "--interface", "wsgi", app, "--host", host or "127.0.0.1",
                "--port", port, "--workers", str(workers), "--blocking-threads", str(max(1, threads)),
                *(["--access-log"] if access_log else []), "--no-ws"]
    # gthread (also for one thread: gunicorn's sync worker would close every connection) keeps
    # HTTP/1.1 connections alive and lets one process serve another request while a query waits.
    return [sys.executable, "-m", "gunicorn", app, "--bind", bind, "--worker-class", "gthread",
            "--workers", str(workers), "--threads", str(max(1, threads)),
            *(["--access-logfile", "-"] if access_log else []), "--graceful-timeout", "5"]


class Command(BaseCommand):
    help = "Start the web server (gunicorn or granian) and the background worker; Ctrl-C stops both."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--bind", default=os.environ.get("RAPPORT_BIND", "127.0.0.1:8000"))
        # granian, one process per core, one thread each: the least CPU per request on two cores
        # (decision 0023); more threads serve slow requests side by side at a CPU cost.
        parser.add_argument("--web-server", choices=WEB_SERVERS,
                            default=os.environ.get("RAPPORT_WEB_SERVER", "granian"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("RAPPORT_WEB_WORKERS", "2")))
        parser.add_argument("--web-threads", type=int, default=int(os.environ.get("RAPPORT_WEB_THREADS", "1")))
        parser.add_argument("--no-worker", action="store_true", help="Start the web server only.")

    def handle(self, *args, bind: str, web_server: str, web_workers: int, web_threads: int,  # type: ignore[no-untyped-def]
               no_worker: bool, **options) -> None:
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="rapport.settings")
        web = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            web_server_command(server=web_server, app="rapport.wsgi:application", bind=bind,
                               workers=web_workers, threads=web_threads),
            env=env, start_new_session=True,  # its own group: killed whole if it hangs on the way out
        )
        processes = [web]
        if not no_worker:
            processes.append(subprocess.Popen([sys.executable, "-m", "rapport", "worker"], env=env,
                                              start_new_session=True))
        host, _, port = bind.rpartition(":")
        self.stdout.write(self.style.SUCCESS(f"Rapport is running on http://{host}:{port}/  (Ctrl-C stops it)"))
        self._print_sign_in(f"http://{host}:{port}/")

        stopping: list[int] = []

        def stop(signum: int, frame: object) -> None:
            stopping.append(signum)
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            # Until one stops or we are told to stop; then each gets 15 s before it is killed.
            while not stopping and all(p.poll() is None for p in processes):
                time.sleep(0.5)
        finally:
            stop(signal.SIGTERM, None)
            deadline = time.monotonic() + 15
            for process in processes:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
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
