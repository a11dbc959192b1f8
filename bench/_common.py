"""Shared benchmark helpers: a throw-away database, timing, a results table and ratios.

Use from a benchmark ``bench/<name>.py``::

    from _common import bench_args, boot, timed, percentiles, print_table

    args = bench_args("what it measures", default_size=100_000)  # --size N, --postgres
    boot(args)                      # temp SQLite file, or throw-away PostgreSQL; Django set up, migrated
    samples = timed(fn, inputs)     # seconds per call, one per input
    print_table([("search", samples), ("pk lookup", baseline)], baseline="pk lookup")

``--postgres`` re-runs the script under ``scripts/with-postgres.sh`` (which sets DATABASE_URL);
with ``DATABASE_URL`` already set, that database is used as is (it must be empty: the
benchmark migrates it and loads its own data). Without either, a temp SQLite file is used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def bench_args(description: str, *, default_size: int) -> argparse.Namespace:
    """Parse the common options: ``--size N`` and ``--postgres``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", type=int, default=default_size, help=f"data size (default {default_size})")
    parser.add_argument("--postgres", action="store_true", help="run on a throw-away PostgreSQL")
    return parser.parse_args()


def boot(args: argparse.Namespace) -> str:
    """Point Django at a fresh database, set it up and migrate; return the vendor name."""
    if args.postgres and "DATABASE_URL" not in os.environ:
        script = ROOT / "scripts" / "with-postgres.sh"
        sys.exit(subprocess.call([str(script), sys.executable, *sys.argv]))
    if "DATABASE_URL" not in os.environ:
        tmp = tempfile.mkdtemp(prefix="rapport-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
        os.environ.setdefault("RAPPORT_VAR_DIR", tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    return connection.vendor


def timed(fn: Callable[[Any], Any], inputs: Iterable[Any]) -> list[float]:
    """Call ``fn`` once per input; return the seconds each call took."""
    samples = []
    for value in inputs:
        start = time.perf_counter()
        fn(value)
        samples.append(time.perf_counter() - start)
    return samples


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50, p95, max and mean in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(ordered), "p50": statistics.median(ordered) * 1000, "p95": p95 * 1000,
            "max": ordered[-1] * 1000, "mean": statistics.fmean(ordered) * 1000}


def print_table(rows: Sequence[tuple[str, Sequence[float]]], *, baseline: str) -> dict[str, dict[str, float]]:
    """Print p50/p95/max per row and each row's p50/p95 ratio to the baseline row; return the figures."""
    figures = {name: percentiles(samples) for name, samples in rows}
    base = figures[baseline]
    print(f"{'operation':<24}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'p50 ×base':>11}{'p95 ×base':>11}")
    for name, f in figures.items():
        print(f"{name:<24}{f['n']:>6}{f['p50']:>10.2f}{f['p95']:>10.2f}{f['max']:>10.2f}"
              f"{f['p50'] / base['p50']:>11.1f}{f['p95'] / base['p95']:>11.1f}")
    return figures


class ServerCPU:
    """PostgreSQL: CPU seconds of the server's processes (the postmaster's tree, from /proc).

    The postmaster collects the CPU of the backends that have exited (parallel workers, a
    helper process's connection); background processes are counted too. None where /proc
    cannot be read, and on SQLite (the engine runs in the benchmark's process, whose CPU is
    already counted).
    """

    def __init__(self, connection: Any) -> None:
        self.root = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = cursor.fetchone()[0]
            try:
                self.root = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                self.root = None
        self.start = self._tree()

    def used(self) -> float | None:
        now = self._tree()
        return None if now is None or self.start is None else now - self.start

    def _tree(self) -> float | None:
        if self.root is None:
            return None
        ticks, found = 0, False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(entry) == self.root or int(fields[1]) == self.root:
                found = found or int(entry) == self.root
                ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        return ticks / os.sysconf("SC_CLK_TCK") if found else None
