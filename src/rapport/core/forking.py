"""When a bulk operation may fork helper processes (the import's read-ahead, the export's page
workers: decisions 0007 and 0016).

A forked child gets a copy of the parent's memory but only the forking thread: a lock another
thread held at that moment (logging, the import machinery, a database driver) stays locked in
the child for ever. So helpers are forked by default only from a single-threaded process — the
CLI, the job worker, a benchmark — and never from a threaded web server's request (gunicorn's
gthread workers, which `rapport run` starts). Outside that default a setting may force them on.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any


def fork_possible(connection: Any) -> bool:
    """A fork can serve this call at all: the platform forks, and the child can open its own
    connection to the same data (not inside a transaction, whose rows a child would not see,
    nor on an in-memory SQLite database, which a child cannot open)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    return not (connection.in_atomic_block or (connection.vendor == "sqlite" and connection.is_in_memory_db()))


def fork_safe_by_default() -> bool:
    """No thread but this one runs, so a child cannot inherit a lock held by another."""
    return threading.active_count() == 1
