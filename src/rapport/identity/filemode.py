"""I3 — file mode: the matching engine over a CSV file, outside the database.

``rapport identity cluster INPUT.csv --id-column ID [--column ROLE=HEADER ...]`` reads the file,
maps headers to roles (a header named like a role maps itself), clusters, and writes
``record_id,cluster_id`` (one row per input record) and optionally the scored pairs
``left_id,right_id,probability,evidence``. Used for data-quality work and for measuring the
engine on data with known truth (bench/identity.py).
"""

from __future__ import annotations

import csv
import functools
import json
import multiprocessing
import operator
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rapport.identity.batch import Columns, ColumnsBuilder
from rapport.identity.engine import MIN_TRAINING, ROLES, RowPreparer, resolve

SMALL_FILE = 5_000_000  # bytes; about 50,000 records


class FileModeError(ValueError):
    """The input cannot be clustered as asked; the message says what to fix."""


@dataclass(frozen=True)
class ClusterResult:
    records: int
    clusters: int
    pairs_scored: int
    pairs_matched: int


Progress = Callable[[str, int, int], None]  # (stage, done, total)


def parse_column_options(options: Sequence[str]) -> dict[str, str]:
    """``["email=E-mail", "phone=Tel"]`` → ``{"email": "E-mail", "phone": "Tel"}``; unknown roles refused."""
    mapping: dict[str, str] = {}
    for option in options:
        role, sep, header = option.partition("=")
        role = role.strip()
        if not sep or not header.strip():
            raise FileModeError(f"--column takes ROLE=HEADER, got {option!r}.")
        if role not in ROLES:
            raise FileModeError(f"Unknown role {role!r}; roles are: {', '.join(ROLES)}.")
        mapping[role] = header.strip()
    return mapping


def cluster_file(input_path: Path | str, *, id_column: str, columns: Mapping[str, str] | None = None,
                 threshold: float = 0.9, out: Path | str, pairs_out: Path | str | None = None,
                 date_format: str | None = None, progress: Progress | None = None,
                 workers: int | None = None) -> ClusterResult:
    """Cluster the records of ``input_path`` and write the results; see the module docstring.

    ``workers``: processes for preparing the match keys and threads for comparing them
    (default: the number of cores); small files are prepared in this process (forking costs
    more than it saves).
    """
    if not 0.0 < threshold < 1.0:
        raise FileModeError(f"--threshold must be between 0 and 1, got {threshold}.")
    report = progress or (lambda stage, done, total: None)
    path = Path(input_path)
    if workers is None:
        workers = default_workers()
    if workers < 1:
        raise FileModeError(f"--workers must be at least 1, got {workers}.")
    processes = 1 if path.exists() and path.stat().st_size < SMALL_FILE else workers
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise FileModeError(f"Cannot read {path}: {err}.") from err
    with handle:
        records = _prepare_rows(path, handle, id_column, columns, date_format, report, processes)
    model = None
    if len(records) < MIN_TRAINING:  # too few records to learn weights from
        from rapport.identity.services import REALTIME_MODEL

        model = REALTIME_MODEL
    result = resolve(records, threshold=threshold, model=model, evidence=pairs_out is not None,
                     matches=pairs_out is not None, workers=workers, progress=report)
    labels = result.labels
    _write(Path(out), ["record_id", "cluster_id"], ([rid, labels[rid]] for rid in records.ids))
    if pairs_out is not None:
        _write(Path(pairs_out), ["left_id", "right_id", "probability", "evidence"],
               ([m.left, m.right, f"{m.probability:.6f}", json.dumps(m.evidence, separators=(",", ":"))]
                for m in result.matches))
    return ClusterResult(records=len(records), clusters=len(set(labels.values())),
                         pairs_scored=result.pairs_scored, pairs_matched=result.pairs_matched)


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _prepare_rows(path: Path, handle: TextIO, id_column: str, columns: Mapping[str, str] | None,
                  date_format: str | None, report: Progress, workers: int) -> Columns:
    """Match keys of every row as integer-coded columns, read as a stream (a million rows as
    dicts would take gigabytes); with ``workers`` > 1, chunks of rows are prepared in forked
    processes, which send back plain tuples of match keys."""
    try:
        reader = csv.reader(handle)
        headers = [h.strip() for h in next(reader, [])]
        if not any(headers):
            raise FileModeError(f"{path} has no header row.")
        mapping = dict(columns or {})
        for role in ROLES:
            if role not in mapping and role in headers:
                mapping[role] = role
        missing = [h for h in [id_column, *mapping.values()] if h not in headers]
        if missing:
            raise FileModeError(f"Column(s) not in the file: {', '.join(missing)}; "
                                f"the file has: {', '.join(headers)}.")
        if not set(mapping) - {"country", "region", "organisation"}:
            raise FileModeError("Map at least one identifying column (a name, email, phone, …) "
                                "with --column ROLE=HEADER.")
        roles = tuple(mapping)
        wanted = [headers.index(id_column), *(headers.index(mapping[role]) for role in roles)]
        width = max(wanted) + 1
        work = functools.partial(_prepare_chunk, roles=roles, date_format=date_format)
        chunks = _chunks(reader, wanted, width)
        builder = ColumnsBuilder()
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for prepared in pool.imap(work, chunks):
                    _add(builder, prepared, report)
        else:
            for chunk in chunks:
                _add(builder, work(chunk), report)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise FileModeError(f"Cannot read {path}: {err}.") from err
    _check_ids(builder.ids, id_column)
    report("reading", len(builder.ids), len(builder.ids))
    return builder.build()


def _check_ids(ids: list[str], id_column: str) -> None:
    seen: set[str] = set()
    add = seen.add
    for number, record_id in enumerate(ids, start=2):
        if not record_id or record_id in seen:
            raise FileModeError(f"Line {number}: the id column {id_column!r} must be filled and unique.")
        add(record_id)


def _add(builder: ColumnsBuilder, prepared: dict[str, list], report: Progress) -> None:
    builder.add_columns(prepared)
    report("reading", len(builder.ids), len(builder.ids))


_ROWS_PER_CHUNK = 20_000


def _chunks(reader: Iterator[list[str]], wanted: list[int], width: int) -> Iterator[list[tuple[str, ...]]]:
    """Rows cut down to the wanted columns (id first), in chunks (ids are checked at the end)."""
    pick = operator.itemgetter(*wanted)
    chunk: list[tuple[str, ...]] = []
    append = chunk.append
    for row in reader:
        if len(row) < width:
            row = row + [""] * (width - len(row))
        append(pick(row) if len(wanted) > 1 else (row[wanted[0]],))
        if len(chunk) == _ROWS_PER_CHUNK:
            yield chunk
            chunk = []
            append = chunk.append
    if chunk:
        yield chunk


def _prepare_chunk(chunk: list[list[str]], *, roles: tuple[str, ...],
                   date_format: str | None) -> dict[str, list]:
    preparer = _PREPARERS.get((roles, date_format))
    if preparer is None:  # one per process and layout, so its caches live across chunks
        preparer = _PREPARERS[(roles, date_format)] = RowPreparer(roles, date_format=date_format)
    return preparer.columns(chunk)


_PREPARERS: dict[tuple, RowPreparer] = {}


def _write(path: Path, header: list[str], rows) -> None:  # type: ignore[no-untyped-def]
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    except OSError as err:
        raise FileModeError(f"Cannot write {path}: {err}.") from err


def stderr_progress() -> tuple[Progress, Callable[[], None]]:
    """A rich progress bar on stderr: (report callback, stop)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(file=sys.stderr))
    tasks: dict[str, int] = {}
    bar.start()

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return report, bar.stop
