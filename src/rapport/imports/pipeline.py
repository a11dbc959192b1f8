"""A3 — read-ahead: the next chunks are read, normalised and checked in a second process while
this one matches and writes the current chunk (two cores, about half the wall time each).

The second process is forked from the run, so it shares the run's compiled mapping and
settings; it opens its own database connection (the run's are closed before the fork) for the
read-only suppression check, which ran outside the chunk's transaction already. At most
``AHEAD`` prepared chunks wait in the queue, so memory stays flat in the file size. Nothing
the reader does is durable: the run commits each chunk with its progress as before, so a kill
of either process loses only uncommitted work and ``--resume`` starts from the last committed
chunk. A reader whose run has died exits on its own (it checks its parent while it waits).

Used only where a fork is safe and pays (``core.forking``): outside any transaction (a test's
transaction is not visible to another connection), not on an in-memory SQLite database, for
files of more than two chunks, and by default only from a single-threaded process (the job
worker, the CLI); ``RAPPORT_IMPORT_READ_AHEAD`` = ``on`` / ``off`` forces it (tests compare both).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from django.db import connection, connections

from rapport.core.errors import DomainError
from rapport.core.forking import fork_possible, fork_safe_by_default

AHEAD = 2
POLL_SECONDS = 1.0


def read_ahead_wanted(rows_left: int, chunk_size: int) -> bool:
    """Whether a run of ``rows_left`` more rows should prepare its chunks in a second process."""
    setting = os.environ.get("RAPPORT_IMPORT_READ_AHEAD", "auto").lower()
    if setting == "off" or not fork_possible(connection):
        return False
    return setting == "on" or (rows_left > 2 * chunk_size and fork_safe_by_default())


class ReadAhead:
    """``(first_row, prepare(rows))`` for each chunk, in order; in a second process when ``parallel``.

    Use as a context manager so the second process is stopped however the run ends.
    """

    def __init__(self, chunks: Iterable[tuple[int, Any]], prepare: Callable[[Any], Any], *, parallel: bool) -> None:
        self.chunks, self.prepare, self.parallel = chunks, prepare, parallel
        self.process: Any = None
        self.queue: Any = None

    def __enter__(self) -> ReadAhead:
        if self.parallel:
            context = multiprocessing.get_context("fork")
            self.queue = context.Queue(maxsize=AHEAD)
            connections.close_all()  # the reader must not share the run's connections
            self.process = context.Process(target=_produce, args=(self.chunks, self.prepare, self.queue, os.getpid()),
                                           name="rapport-import-read-ahead", daemon=True)
            self.process.start()
        return self

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if not self.parallel:
            for first_row, rows in self.chunks:
                yield first_row, self.prepare(rows)
            return
        while True:
            kind, payload = self._next()
            if kind == "done":
                return
            if kind == "error":
                raise payload
            yield payload

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.process is None:
            return
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)
        self.queue.close()
        self.queue.cancel_join_thread()

    def _next(self) -> tuple[str, Any]:
        while True:
            try:
                return self.queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self.process.is_alive():
                    raise RuntimeError("The import's read-ahead process stopped unexpectedly.") from None


def _produce(chunks: Iterable[tuple[int, Any]], prepare: Callable[[Any], Any], out: Any, parent: int) -> None:
    """The second process: prepare each chunk and queue it; stop when the run is gone."""
    try:
        for first_row, rows in chunks:
            _put(out, ("chunk", (first_row, prepare(rows))), parent)
        _put(out, ("done", None), parent)
    except BaseException as err:  # the run re-raises it
        _put(out, ("error", _portable(err)), parent)
    finally:
        connections.close_all()


def _put(out: Any, item: tuple[str, Any], parent: int) -> None:
    while True:
        try:
            out.put(item, timeout=POLL_SECONDS)
            return
        except queue.Full:
            if os.getppid() != parent:  # the run was killed: nobody will read this
                os._exit(0)


def _portable(err: BaseException) -> BaseException:
    """``err`` if it survives pickling, else an error with the same message."""
    try:
        return pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object, just made
    except Exception:
        if isinstance(err, DomainError):
            return DomainError(str(err))
        return RuntimeError(f"{type(err).__name__}: {err}")
