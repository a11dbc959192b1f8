"""A3 — reads: a user's imports, their issues, and the downloadable error file."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from rapport.imports.models import Import, ImportIssue, ImportMapping
from rapport.imports.sources import FileProblem, iter_rows

FAILED_KINDS = (ImportIssue.Kind.INVALID, ImportIssue.Kind.SUPPRESSED, ImportIssue.Kind.SKIPPED)


def import_list(*, user: Any) -> QuerySet[Import]:
    """Imports the user started (administrators see everyone's), newest first."""
    imports = Import.objects.select_related("created_by").order_by("-created_at")
    if getattr(user, "is_superuser", False):
        return imports
    return imports.filter(created_by=user)


def import_get(*, user: Any, import_id: Any) -> Import:
    return import_list(user=user).get(pk=import_id)


def import_issues(*, import_run: Import, phase: str | None = None, kinds: tuple[str, ...] = ()) -> QuerySet[ImportIssue]:
    """Issues of the run (or of the preview while the import has not run), by row."""
    if phase is None:
        phase = ImportIssue.Phase.PREVIEW if import_run.status in (
            Import.Status.PREVIEWING, Import.Status.PREVIEWED) else ImportIssue.Phase.RUN
    issues = ImportIssue.objects.filter(import_run=import_run, phase=phase)
    if kinds:
        issues = issues.filter(kind__in=kinds)
    return issues.order_by("row", "id")


def issue_summary(*, import_run: Import, phase: str | None = None) -> dict[str, int]:
    from django.db.models import Count

    rows = (import_issues(import_run=import_run, phase=phase).values("kind").annotate(n=Count("pk")).order_by())
    return {row["kind"]: row["n"] for row in rows}


def mapping_list() -> QuerySet[ImportMapping]:
    return ImportMapping.objects.order_by("name")


def error_file(*, import_run: Import, phase: str | None = None) -> Iterator[bytes]:
    """CSV of the rows that were not imported: the original columns, then why.

    Fix the rows and import this file again: its extra columns (``Rapport row``,
    ``Rapport problems``) are not mapped. For vCard files, each card's problems are listed.
    """
    from rapport.imports.services import source_info, source_opener

    issues = import_issues(import_run=import_run, phase=phase, kinds=FAILED_KINDS)
    by_row: dict[int, list[str]] = defaultdict(list)
    for row, column, message in issues.values_list("row", "column", "message").iterator(chunk_size=2000):
        by_row[row].append(f"{column}: {message}" if column else message)
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    tabular = not import_run.premapped
    item = "card" if import_run.format == Import.Format.VCARD else "item"
    headers = (list(import_run.headers) if tabular else [item.capitalize()]) + ["Rapport row", "Rapport problems"]
    yield ("\ufeff" + writer.writerow(headers)).encode("utf-8")
    if not by_row:
        return
    if not tabular:
        for row in sorted(by_row):
            yield writer.writerow([f"{item} {row}", row, "; ".join(by_row[row])]).encode("utf-8")
        return
    try:
        rows = iter_rows(source_opener(import_run), source_info(import_run))
        buffer = []
        last = max(by_row)
        for source in rows:
            if source.number in by_row:
                values = [v.isoformat() if hasattr(v, "isoformat") else v for v in source.values]
                buffer.append(writer.writerow([*values, source.number, "; ".join(by_row[source.number])]))
                if len(buffer) >= 500:
                    yield "".join(buffer).encode("utf-8")
                    buffer = []
            if source.number >= last:
                break
        if buffer:
            yield "".join(buffer).encode("utf-8")
    except FileProblem:  # the file was purged: list the problems without the original values
        for row in sorted(by_row):
            yield writer.writerow([""] * len(import_run.headers) + [row, "; ".join(by_row[row])]).encode("utf-8")


class _Echo:
    def write(self, value: str) -> str:
        return value
