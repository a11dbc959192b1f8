"""I3 — file mode: the matching engine over a CSV file, outside the database.

``rapport identity cluster INPUT.csv --id-column ID [--column ROLE=HEADER ...]`` reads the file,
maps headers to roles (a header named like a role maps itself), clusters, and writes
``record_id,cluster_id`` (one row per input record) and optionally the scored pairs
``left_id,right_id,probability,evidence``. Used for data-quality work and for measuring the
engine on data with known truth (bench/identity.py).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rapport.identity.engine import ROLES, Prepared, prepare, resolve


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
                 date_format: str | None = None, progress: Progress | None = None) -> ClusterResult:
    """Cluster the records of ``input_path`` and write the results; see the module docstring."""
    if not 0.0 < threshold < 1.0:
        raise FileModeError(f"--threshold must be between 0 and 1, got {threshold}.")
    report = progress or (lambda stage, done, total: None)
    path = Path(input_path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise FileModeError(f"Cannot read {path}: {err}.") from err
    with handle:
        records = _prepare_rows(path, handle, id_column, columns, date_format, report)
    result = resolve(records, threshold=threshold, evidence=pairs_out is not None, progress=report)
    labels = result.labels
    _write(Path(out), ["record_id", "cluster_id"], ([r.record_id, labels[r.record_id]] for r in records))
    if pairs_out is not None:
        _write(Path(pairs_out), ["left_id", "right_id", "probability", "evidence"],
               ([m.left, m.right, f"{m.probability:.6f}", json.dumps(m.evidence, separators=(",", ":"))]
                for m in result.matches))
    return ClusterResult(records=len(records), clusters=len(set(labels.values())),
                         pairs_scored=result.pairs_scored, pairs_matched=len(result.matches))


def _prepare_rows(path: Path, handle: TextIO, id_column: str, columns: Mapping[str, str] | None,
                  date_format: str | None, report: Progress) -> list[Prepared]:
    """Match keys of every row, read as a stream (a million rows as dicts would take gigabytes)."""
    try:
        reader = csv.DictReader(handle)
        headers = [h for h in (reader.fieldnames or []) if h is not None]
        if not headers:
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
        items = list(mapping.items())
        records: list[Prepared] = []
        seen: set[str] = set()
        for number, row in enumerate(reader, start=2):
            record_id = (row.get(id_column) or "").strip()
            if not record_id or record_id in seen:
                raise FileModeError(f"Line {number}: the id column {id_column!r} must be filled and unique.")
            seen.add(record_id)
            records.append(prepare(record_id, {role: row.get(header) or "" for role, header in items},
                                   date_format=date_format))
            if number % 10000 == 0:
                report("reading", len(records), len(records))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise FileModeError(f"Cannot read {path}: {err}.") from err
    report("reading", len(records), len(records))
    return records


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
