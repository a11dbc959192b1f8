"""``core.forking``: bulk helpers are forked by default only from a single-threaded process."""

from __future__ import annotations

import threading

from rapport.core.forking import fork_safe_by_default
from rapport.imports import export_csv, pipeline


def test_helpers_are_not_forked_by_default_while_another_thread_runs(monkeypatch):
    # given: a fork would otherwise be possible here (no transaction, a file database)
    monkeypatch.setattr(export_csv, "fork_possible", lambda connection: True)
    monkeypatch.setattr(pipeline, "fork_possible", lambda connection: True)
    monkeypatch.delenv("RAPPORT_EXPORT_WORKERS", raising=False)
    monkeypatch.setenv("RAPPORT_IMPORT_READ_AHEAD", "auto")
    if threading.active_count() == 1:  # the test process itself runs one thread (also under xdist)
        assert fork_safe_by_default()
        assert export_csv._workers_wanted() == export_csv.WORKERS
        assert pipeline.read_ahead_wanted(10_000, 100)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="like a gthread worker's other thread")
    other.start()
    try:
        # when another thread runs, as in a request of the threaded web server
        # then: no helper processes by default ...
        assert not fork_safe_by_default()
        assert export_csv._workers_wanted() == 0
        assert not pipeline.read_ahead_wanted(10_000, 100)
        # ... unless a setting asks for them
        monkeypatch.setenv("RAPPORT_EXPORT_WORKERS", "3")
        monkeypatch.setenv("RAPPORT_IMPORT_READ_AHEAD", "on")
        assert export_csv._workers_wanted() == 3
        assert pipeline.read_ahead_wanted(10_000, 100)
    finally:
        stop.set()
        other.join()


def test_a_setting_of_zero_or_off_turns_the_helpers_off(monkeypatch):
    monkeypatch.setattr(export_csv, "fork_possible", lambda connection: True)
    monkeypatch.setattr(pipeline, "fork_possible", lambda connection: True)
    monkeypatch.setenv("RAPPORT_EXPORT_WORKERS", "0")
    monkeypatch.setenv("RAPPORT_IMPORT_READ_AHEAD", "off")
    assert export_csv._workers_wanted() == 0
    assert not pipeline.read_ahead_wanted(10_000, 100)
