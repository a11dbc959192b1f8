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
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rapport.identity.engine import ROLES, Prepared, prepare, resolve

MAX_WORKERS = 4
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

    ``workers``: processes for preparing and comparing (default: one per CPU, at most
    ``MAX_WORKERS``); small files always run in this process (forking costs more).
    """
    if not 0.0 < threshold < 1.0:
        raise FileModeError(f"--threshold must be between 0 and 1, got {threshold}.")
    report = progress or (lambda stage, done, total: None)
    path = Path(input_path)
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS)
        if path.exists() and path.stat().st_size < SMALL_FILE:
            workers = 1
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise FileModeError(f"Cannot read {path}: {err}.") from err
    with handle:
        records = _prepare_rows(path, handle, id_column, columns, date_format, report, workers)
    result = resolve(records, threshold=threshold, evidence=pairs_out is not None, workers=workers,
                     progress=report)
    labels = result.labels
    _write(Path(out), ["record_id", "cluster_id"], ([r.record_id, labels[r.record_id]] for r in records))
    if pairs_out is not None:
        _write(Path(pairs_out), ["left_id", "right_id", "probability", "evidence"],
               ([m.left, m.right, f"{m.probability:.6f}", json.dumps(m.evidence, separators=(",", ":"))]
                for m in result.matches))
    return ClusterResult(records=len(records), clusters=len(set(labels.values())),
                         pairs_scored=result.pairs_scored, pairs_matched=len(result.matches))


def _prepare_rows(path: Path, handle: TextIO, id_column: str, columns: Mapping[str, str] | None,
                  date_format: str | None, report: Progress, workers: int) -> list[Prepared]:
    """Match keys of every row, read as a stream (a million rows as dicts would take
    gigabytes); with ``workers`` > 1, chunks of rows are prepared in forked processes."""
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
        chunks = _checked_chunks(reader, wanted, width, id_column)
        records: list[Prepared] = []
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for prepared in pool.imap(work, chunks):
                    records.extend(prepared)
                    report("reading", len(records), len(records))
        else:
            for chunk in chunks:
                records.extend(work(chunk))
                report("reading", len(records), len(records))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise FileModeError(f"Cannot read {path}: {err}.") from err
    report("reading", len(records), len(records))
    return records


_ROWS_PER_CHUNK = 20_000


def _checked_chunks(reader: Iterator[list[str]], wanted: list[int], width: int,
                    id_column: str) -> Iterator[list[list[str]]]:
    """Rows cut down to the wanted columns (id first), in chunks; ids checked on the way."""
    seen: set[str] = set()
    chunk: list[list[str]] = []
    for number, row in enumerate(reader, start=2):
        if len(row) < width:
            row = row + [""] * (width - len(row))
        values = [row[k] for k in wanted]
        record_id = values[0] = values[0].strip()
        if not record_id or record_id in seen:
            raise FileModeError(f"Line {number}: the id column {id_column!r} must be filled and unique.")
        seen.add(record_id)
        chunk.append(values)
        if len(chunk) == _ROWS_PER_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _prepare_chunk(chunk: list[list[str]], *, roles: tuple[str, ...],
                   date_format: str | None) -> list[Prepared]:
    return [prepare(row[0], dict(zip(roles, row[1:], strict=True)), date_format=date_format)
            for row in chunk]


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
