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

``RAPPORT_IMPORT_READERS=N`` starts N readers, each preparing every N-th chunk (all read the
file; each maps and normalises only its own chunks); the run takes them
in turn, so chunks still arrive, and are committed, in file order (decision 0020). It pays
where a reader is the slowest part and cores are free — on PostgreSQL the run's own work is
small — but not on two cores shared with the database server, where a second reader only adds
its CPU (measured: no faster, 11 % more reader CPU), so the default is one.
"""

from __future__ import annotations

import gc
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

AHEAD = 2  # prepared chunks waiting per reader
READERS = 1  # more only where cores are free (see above)
POLL_SECONDS = 1.0
READER_GC_THRESHOLD = 50_000  # allocations between collections of the youngest generation (700 by default)


def read_ahead_wanted(rows_left: int, chunk_size: int) -> bool:
    """Whether a run of ``rows_left`` more rows should prepare its chunks in a second process."""
    setting = os.environ.get("RAPPORT_IMPORT_READ_AHEAD", "auto").lower()
    if setting == "off" or not fork_possible(connection):
        return False
    return setting == "on" or (rows_left > 2 * chunk_size and fork_safe_by_default())


def readers_wanted() -> int:
    """How many read-ahead processes: ``RAPPORT_IMPORT_READERS``, else ``READERS``."""
    setting = os.environ.get("RAPPORT_IMPORT_READERS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    return READERS


class ReadAhead:
    """``(first_row, prepare(rows))`` for each chunk, in order; in ``readers`` other processes
    when ``parallel`` (reader ``i`` prepares chunks ``i``, ``i + readers``, …).

    Use as a context manager so the other processes are stopped however the run ends.
    """

    def __init__(self, chunks: Iterable[tuple[int, Any]], prepare: Callable[[Any], Any], *, parallel: bool,
                 readers: int = 1) -> None:
        self.chunks, self.prepare, self.parallel = chunks, prepare, parallel
        self.readers = max(1, readers)
        self.processes: list[Any] = []
        self.queues: list[Any] = []

    @property
    def process(self) -> Any:
        """The first reader (None when not parallel)."""
        return self.processes[0] if self.processes else None

    def __enter__(self) -> ReadAhead:
        if self.parallel:
            context = multiprocessing.get_context("fork")
            connections.close_all()  # the readers must not share the run's connections
            for index in range(self.readers):
                out = context.Queue(maxsize=AHEAD)
                process = context.Process(target=_produce, name="rapport-import-read-ahead", daemon=True,
                                          args=(self.chunks, self.prepare, out, os.getpid(), index, self.readers))
                process.start()
                self.queues.append(out)
                self.processes.append(process)
        return self

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if not self.parallel:
            for first_row, rows in self.chunks:
                yield first_row, self.prepare(rows)
            return
        turn = 0
        while True:
            # chunk n comes from reader n % readers: taking them in turn keeps the file's order;
            # "done" from the reader whose turn it is means there is no chunk n, so no later one
            kind, payload = self._next(turn % self.readers)
            if kind == "done":
                return
            if kind == "error":
                raise payload
            yield payload
            turn += 1

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout=10)
        for out in self.queues:
            out.close()
            out.cancel_join_thread()

    def _next(self, reader: int) -> tuple[str, Any]:
        while True:
            try:
                return self.queues[reader].get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self.processes[reader].is_alive():
                    raise RuntimeError("The import's read-ahead process stopped unexpectedly.") from None


def _produce(chunks: Iterable[tuple[int, Any]], prepare: Callable[[Any], Any], out: Any, parent: int,
             index: int = 0, readers: int = 1) -> None:
    """A reader: prepare chunks ``index``, ``index + readers``, … and queue them, then "done";
    stop when the run is gone. Every reader reads the whole file (the rows of the others'
    chunks are parsed and dropped), so an error reading the file reaches every reader at the
    same row and the run raises it at the same chunk as with one reader."""
    # what the fork inherited (Django, the mapping, the models) lives as long as the reader:
    # frozen, the cyclic collector no longer walks it, and a larger first generation lets it
    # run less often over the short-lived row objects, which reference counting frees anyway
    # (a fifth of the reader's CPU on a 30,000-row file; memory stays flat)
    gc.freeze()
    gc.set_threshold(READER_GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        for number, (first_row, rows) in enumerate(chunks):
            if number % readers == index:
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
