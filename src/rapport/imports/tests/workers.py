"""The export tests' worker processes: they read on their own connections, so they need a file database."""
from __future__ import annotations

import pytest
from django.db import connection


def workers_can_read() -> bool:
    """False on in-memory SQLite, which other processes cannot open."""
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


def skip_unless_workers_can_read() -> None:
    if not workers_can_read():
        pytest.skip("an in-memory SQLite database is not visible to the worker processes "
                    "(set RAPPORT_TEST_SQLITE_NAME to run this case)")


def use_export_workers(monkeypatch: pytest.MonkeyPatch, workers: str) -> None:
    """Export with ``workers`` processes ("0": in this process), skipping where they cannot read."""
    if workers != "0":
        skip_unless_workers_can_read()
    monkeypatch.setenv("RAPPORT_EXPORT_WORKERS", workers)
