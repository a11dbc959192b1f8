"""A3 — import: upload, mapping, preview (dry run), the resumable chunked run, and undo.

The run reads the file in chunks of ``Import.chunk_size`` rows. Each chunk is normalised and
validated outside any transaction, then matched and written in one transaction together with
the import's new ``next_row``; a process killed at any point resumes from the last committed
chunk and ends exactly where an uninterrupted run would. Chunk boundaries are fixed
(``k * chunk_size``), so a resumed run sees the same chunks in the same order.
On large files the chunks are prepared by a read-ahead process (``imports.pipeline``) while
this one writes; what is written, and when it commits, is the same.

Writes are set-based (``imports.bulk``) with the people services' rules: the same
normalisers, the same limits, suppression checked set-wise (``ensure_not_suppressed``),
visibility from ``visible_to``, the access audit recorded per chunk, consent through the
privacy ledger (``record_consent``) with the import's provenance as proof.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import itertools
import logging
import os
import shutil
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from rapport.access.audit import record_people_access_bulk, record_person_access
from rapport.core.errors import Conflict, DomainError, NotAllowed
from rapport.core.search import fold
from rapport.imports import bulk
from rapport.imports.mapping import (
    CompiledMapping,
    MappingError,
    compile_mapping,
    suggest_mapping,
    validate_mapping,
)
from rapport.imports.matching import (
    DryRunIndex,
    Group,
    database_lookup,
    group_records,
    key_evidence,
    match_groups,
)
from rapport.imports.models import Import, ImportChunk, ImportedPerson, ImportIssue, ImportMapping
from rapport.imports.pipeline import (
    READER_GC_THRESHOLD,
    ReadAhead,
    read_ahead_wanted,
    readers_wanted,
)
from rapport.imports.records import PERSON_FIELDS, ImportRecord, PointValue, build_record
from rapport.imports.sources import (
    FileProblem,
    LineGuard,
    SourceInfo,
    SourceRow,
    inspect_source,
    iter_rows,
)
from rapport.people.models import ContactPoint, Employment, Interaction, Organisation, Person, Tag

logger = logging.getLogger("rapport.imports")

IMPORT_DIR = "imports"
REPORT_ROWS = 50
LEASE = dt.timedelta(minutes=2)
MAX_FILE_BYTES = int(os.environ.get("RAPPORT_IMPORT_MAX_BYTES", str(2 * 1024 ** 3)))
RETENTION_DAYS = int(os.environ.get("RAPPORT_IMPORT_RETENTION_DAYS", "30"))
DEFAULT_CHUNK = 2000
EDITABLE = (Import.Status.UPLOADED, Import.Status.PREVIEWED, Import.Status.FAILED)
OUTCOMES = ("created", "updated", "merged", "unchanged", "suppressed", "erased", "skipped", "invalid")
OUTCOME_LABELS = {
    "created": "Created", "updated": "Updated an existing person", "merged": "Merged (same person earlier in the file)",
    "unchanged": "Matched, nothing new", "suppressed": "Skipped: suppressed", "erased": "Skipped: erased person",
    "skipped": "Skipped", "invalid": "Invalid",
}
CONSENT_BASES = ("consent", "soft_opt_in", "implied_purchase", "implied_enquiry", "legitimate_interests",
                 "contract", "legal_obligation")


# ------------------------------------------------------------------------ upload & setup


def import_create(*, actor: Any, upload: IO[bytes], file_name: str, encoding: str = "",
                  delimiter: str = "", sheet: str = "", chunk_size: int | None = None) -> Import:
    """Store the uploaded file and inspect it; a file Rapport cannot read raises ``FileProblem``."""
    _require_import_permission(actor)
    import_id = uuid.uuid4()
    relative, size, digest = _store(upload, file_name, import_id)
    path = Path(settings.MEDIA_ROOT) / relative
    try:
        info = inspect_source(lambda: open(path, "rb"), file_name=file_name, encoding=encoding,  # noqa: SIM115 - the opener's caller closes it
                              delimiter=delimiter, sheet=sheet)
    except DomainError:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    imp = Import(id=import_id, created_by=_user(actor), file_name=file_name[:255], file_path=relative,
                 file_size=size, file_sha256=digest, chunk_size=chunk_size or DEFAULT_CHUNK)
    _apply_info(imp, info)
    imp.save()
    return imp


def import_configure(*, actor: Any, import_run: Import, mapping: dict | None = None, mapping_name: str = "",
                     policy: str | None = None, consent: dict[str, Any] | None = None,
                     encoding: str | None = None, delimiter: str | None = None,
                     sheet: str | None = None) -> Import:
    """Set the mapping (given, or a saved template by name), policy and consent provenance."""
    imp = _own(actor, import_run)
    if imp.status not in EDITABLE:
        raise Conflict(f"This import is {imp.get_status_display().lower()}; it can no longer be changed.")
    if any(value is not None for value in (encoding, delimiter, sheet)):
        info = inspect_source(source_opener(imp), file_name=imp.file_name,
                              encoding=encoding if encoding is not None else "",
                              delimiter=delimiter if delimiter is not None else "",
                              sheet=sheet if sheet is not None else imp.sheet)
        _apply_info(imp, info)
    if mapping_name:
        template = ImportMapping.objects.filter(name=mapping_name).first()
        if template is None:
            raise MappingError(f"There is no saved mapping called {mapping_name!r}.",
                               field_errors={"mapping_name": ["No such mapping."]})
        mapping = template.mapping
        imp.mapping_name = template.name
    if mapping is not None:
        if not imp.premapped:
            validate_mapping(mapping)
            compile_mapping(mapping, imp.headers)
        imp.mapping = _clean_mapping(mapping)
        if not mapping_name:
            imp.mapping_name = ""
    if policy is not None:
        if policy not in Import.Policy.values:
            raise DomainError("Unknown de-duplication policy.", field_errors={
                "policy": [f"Choose one of {', '.join(Import.Policy.values)}."]})
        imp.policy = policy
    if consent is not None:
        _set_consent(imp, consent)
    imp.status = Import.Status.UPLOADED
    imp.preview = {}
    imp.error = ""
    imp.save()
    ImportIssue.objects.filter(import_run=imp, phase=ImportIssue.Phase.PREVIEW).delete()
    return imp


def mapping_save(*, actor: Any, name: str, mapping: dict) -> ImportMapping:
    """Save (or replace) a named mapping template."""
    name = " ".join((name or "").split())
    if not name:
        raise MappingError("Give the mapping a name.", field_errors={"name": ["Required."]})
    if len(name) > 100:
        raise MappingError("A mapping name is at most 100 characters.", field_errors={"name": ["Too long."]})
    validate_mapping(mapping)
    template, _ = ImportMapping.objects.update_or_create(
        name=name, defaults={"mapping": _clean_mapping(mapping), "created_by": _user(actor)})
    return template


def mapping_delete(*, actor: Any, template: ImportMapping) -> None:
    template.delete()


def import_preview(*, actor: Any, import_run: Import) -> Import:
    """Queue a dry run of the whole file: outcomes, totals and issues; nothing is written."""
    from rapport.core.jobs import enqueue_on_commit
    from rapport.imports.tasks import run_import

    imp = _own(actor, import_run)
    _check_ready(imp)
    with transaction.atomic():
        updated = Import.objects.filter(pk=imp.pk, status__in=EDITABLE).update(
            status=Import.Status.PREVIEWING, preview={"next_row": 0, "total_rows": imp.total_rows},
            lease_owner="", lease_until=None)
        if not updated:
            raise Conflict("This import is already running or finished.")
        ImportIssue.objects.filter(import_run=imp, phase=ImportIssue.Phase.PREVIEW).delete()
        enqueue_on_commit(run_import, str(imp.pk), True)
    imp.refresh_from_db()
    return imp


def import_start(*, actor: Any, import_run: Import) -> Import:
    """Queue the real run as a background job."""
    from rapport.core.jobs import enqueue_on_commit
    from rapport.imports.tasks import run_import

    imp = _own(actor, import_run)
    _check_ready(imp)
    with transaction.atomic():
        updated = Import.objects.filter(pk=imp.pk, status__in=EDITABLE, next_row=0).update(
            status=Import.Status.QUEUED, lease_owner="", lease_until=None, error="")
        if not updated:
            raise Conflict("This import has already run; start a new import for the file.")
        enqueue_on_commit(run_import, str(imp.pk), False)
    imp.refresh_from_db()
    return imp


def prepare_run(*, actor: Any, import_run: Import) -> Import:
    """Mark an import to be run in this process (the CLI), checking it is ready."""
    imp = _own(actor, import_run)
    _check_ready(imp)
    if imp.status not in (*EDITABLE, Import.Status.QUEUED, Import.Status.RUNNING):
        raise Conflict(f"This import is {imp.get_status_display().lower()}.")
    if imp.status in EDITABLE:
        if imp.next_row:
            raise Conflict("This import has already run part of the file; resume it instead.")
        Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    imp.refresh_from_db()
    return imp


# ------------------------------------------------------------------------------ the run


ProgressCallback = Callable[[Import], None]


def runner_id() -> str:
    """Who holds an import's lease: host, process and a nonce (a dead holder can be detected)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def import_execute(*, import_id: Any, dry_run: bool = False, runner: str | None = None,
                   progress: ProgressCallback | None = None) -> Import:
    """Run (or resume, or dry-run) an import in this process, chunk by chunk.

    Returns the import; if another live process holds its lease, returns without doing anything.
    """
    runner = runner or runner_id()
    statuses = ([Import.Status.PREVIEWING] if dry_run
                else [Import.Status.QUEUED, Import.Status.RUNNING])
    if not _claim(import_id, runner, statuses):
        return Import.objects.get(pk=import_id)
    imp = Import.objects.get(pk=import_id)
    try:
        if dry_run:
            _dry_run(imp, runner, progress)
        else:
            _run(imp, runner, progress)
    except Exception as err:
        message = str(err) if isinstance(err, DomainError) else f"{type(err).__name__}: {err}"
        logger.exception("import %s failed", import_id)
        Import.objects.filter(pk=import_id, lease_owner=runner).update(
            status=Import.Status.FAILED, error=message[:2000], lease_owner="", lease_until=None,
            finished_at=timezone.now())
        raise
    imp.refresh_from_db()
    return imp


def _run(imp: Import, runner: str, progress: ProgressCallback | None) -> None:
    context = _Context.for_import(imp, dry_run=False)
    now = timezone.now()
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.RUNNING, started_at=imp.started_at or now,
                                            heartbeat_at=now)
    imp.refresh_from_db()
    start = imp.next_row
    if start == 0:
        ImportIssue.objects.filter(import_run=imp, phase=ImportIssue.Phase.RUN).delete()
    parallel = read_ahead_wanted(imp.total_rows - start, imp.chunk_size)
    with ReadAhead(_chunks(imp, start), context.prepare, parallel=parallel,
                   readers=readers_wanted()) as prepared_chunks, _collector_for_chunks():
        for first_row, prepared in prepared_chunks:
            imp = _apply_chunk(imp, context, runner, first_row, prepared)
            if progress:
                progress(imp)
    Import.objects.filter(pk=imp.pk, lease_owner=runner).update(
        status=Import.Status.COMPLETED, finished_at=timezone.now(), lease_owner="", lease_until=None)


@contextlib.contextmanager
def _collector_for_chunks() -> Iterator[None]:
    """The cyclic garbage collector tuned for the run, as in the read-ahead process (``pipeline``):
    what exists before the run is frozen (not walked again), and the youngest generation is
    collected less often — each chunk unpickles and builds ~100,000 short-lived objects, which
    reference counting frees. Both are put back afterwards (the job worker lives on)."""
    if os.environ.get("RAPPORT_IMPORT_GC_TUNING", "on") == "off":
        yield
        return
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(READER_GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _apply_chunk(imp: Import, context: _Context, runner: str, first_row: int, prepared: _Prepared) -> Import:
    """Match and write one prepared chunk in one transaction with the import's progress."""
    with transaction.atomic():
        locked = Import.objects.select_for_update().get(pk=imp.pk)
        if locked.lease_owner != runner or locked.next_row != first_row:
            raise Conflict("Another process took over this import.")
        chunk_index = first_row // imp.chunk_size
        outcome = context.apply(prepared, chunk_index=chunk_index, first_row=first_row)
        locked.next_row = first_row + prepared.rows_seen
        locked.counts = _add_counts(locked.counts, outcome.counts)
        if len(locked.report_rows) < REPORT_ROWS:
            locked.report_rows = (locked.report_rows + outcome.report)[:REPORT_ROWS]
        locked.heartbeat_at = timezone.now()
        locked.lease_until = locked.heartbeat_at + LEASE
        locked.save(update_fields=["next_row", "counts", "report_rows", "heartbeat_at", "lease_until",
                                   "updated_at"])
    return locked


def _dry_run(imp: Import, runner: str, progress: ProgressCallback | None) -> None:
    context = _Context.for_import(imp, dry_run=True)
    counts: dict[str, int] = {}
    rows_report: list[dict] = []
    ImportIssue.objects.filter(import_run=imp, phase=ImportIssue.Phase.PREVIEW).delete()
    parallel = read_ahead_wanted(imp.total_rows, imp.chunk_size)
    try:
        with ReadAhead(_chunks(imp, 0), context.prepare, parallel=parallel,
                       readers=readers_wanted()) as prepared_chunks:
            for first_row, prepared in prepared_chunks:
                outcome = context.apply(prepared, chunk_index=first_row // imp.chunk_size, first_row=first_row)
                counts = _add_counts(counts, outcome.counts)
                if len(rows_report) < REPORT_ROWS:
                    rows_report = (rows_report + outcome.report)[:REPORT_ROWS]
                now = timezone.now()
                preview = {"next_row": first_row + prepared.rows_seen, "total_rows": imp.total_rows,
                           "counts": counts}
                claimed = Import.objects.filter(pk=imp.pk, lease_owner=runner).update(
                    preview=preview, heartbeat_at=now, lease_until=now + LEASE)
                if not claimed:
                    raise Conflict("Another process took over this preview.")
                imp.preview = preview
                if progress:
                    progress(imp)
    finally:
        context.close()
    _add_candidates(rows_report, actor=context.actor)
    preview = {"next_row": imp.total_rows, "total_rows": imp.total_rows, "counts": counts,
               "rows": rows_report, "finished": True}
    Import.objects.filter(pk=imp.pk, lease_owner=runner).update(
        status=Import.Status.PREVIEWED, preview=preview, lease_owner="", lease_until=None)


def _chunks(imp: Import, start: int) -> Iterator[tuple[int, tuple[int, list[SourceRow]]]]:
    """Fixed chunks ``[k * size, (k + 1) * size)`` from data row ``start`` (a chunk boundary),
    each as ``(first_row, (first_row, rows))``: ``prepare`` needs to know where it is too."""
    size = imp.chunk_size
    if start % size:
        raise Conflict("The import's progress is not on a chunk boundary.")
    chunk: list[SourceRow] = []
    first = start
    for row in iter_rows(source_opener(imp), source_info(imp), start=start):
        chunk.append(row)
        if len(chunk) == size:
            yield first, (first, chunk)
            first += size
            chunk = []
    if chunk:
        yield first, (first, chunk)


# ------------------------------------------------------------------ one chunk: prepare


@dataclass
class _Prepared:
    issues: list[tuple[int, str, str, str]]          # row, column, kind, message
    rows_seen: int
    report: dict[int, dict]                          # row number -> report entry (first rows)
    groups: list[Group]                              # the valid records, by person (within the chunk)


class Fresh(NamedTuple):
    """A new person's rows, in database form, built by ``prepare`` (see ``_Context._fresh``)."""

    person_id: str                   # the canonical text (undo ledger)
    db_id: str                       # 32 hex digits, as both databases take it
    person: Any                      # id, PERSON_FIELDS, given/family/preferred keys (bulk.row_maker)
    points: list[Any]                # id, person_id, kind, label, value, normalised, search_key, source,
                                     # verified, primary (bulk.row_maker each)
    rows: int                        # the file rows it stands for
    point_kinds: list[tuple[str, str]]  # (id, kind) of each point: the digest and count rows (0028)


@lru_cache(maxsize=1)
def _state_sql() -> dict[str, str]:
    """What ``_Context._load`` reads about the matched people; ``{values}`` is their ids (table
    names from the models' metadata, values always parameters)."""
    quote = connection.ops.quote_name

    def table(model: Any) -> str:
        return quote(model._meta.db_table)

    tags = Person.tags.through
    return {
        "points": f"SELECT person_id, kind, normalised, {quote('primary')} FROM {table(ContactPoint)} "  # noqa: S608 - model metadata
                  "WHERE person_id {values}",
        "jobs": f"SELECT e.id, e.person_id, o.name_key, e.start_date FROM {table(Employment)} e "  # noqa: S608 - model metadata
                f"JOIN {table(Organisation)} o ON o.id = e.organisation_id "
                "WHERE e.end_date IS NULL AND e.person_id {values}",
        "tags": f"SELECT t.person_id, g.name FROM {table(tags)} t JOIN {table(Tag)} g ON g.id = t.tag_id "  # noqa: S608 - model metadata
                "WHERE t.person_id {values}",
        "imported": f"SELECT person_id, created FROM {table(ImportedPerson)} "  # noqa: S608 - model metadata
                    "WHERE import_run_id = %s AND person_id {values}",
    }


def _reporting(first_row: int) -> bool:
    """Whether rows of the chunk starting at ``first_row`` may be among the report's first rows."""
    return first_row < REPORT_ROWS * 4


@dataclass
class _Outcome:
    counts: dict[str, int]
    report: list[dict]


@dataclass
class _Plan:
    """What happens to one person (new or existing) because of a group of rows."""

    person_id: Any
    is_new: bool
    created_here: bool = False        # made by an earlier chunk of this import
    recorded: bool = False            # already in this import's ImportedPerson rows
    values: dict[str, str] = field(default_factory=dict)
    before: dict[str, str] = field(default_factory=dict)
    version: int = 1
    keys: set[tuple[str, str]] = field(default_factory=set)
    primary_kinds: set[str] = field(default_factory=set)
    new_points: list[PointValue] = field(default_factory=list)
    current_jobs: list[tuple[Any, str, dt.date | None]] = field(default_factory=list)
    new_job: tuple[str, str, dt.date | None] | None = None
    ended_jobs: list[tuple[Any, Any, dt.date]] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    new_tags: list[str] = field(default_factory=list)
    consents: list[tuple[str, bool, int, dt.date | None, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.before or self.new_points or self.new_job or self.ended_jobs or self.new_tags)


class _Context:
    """Everything one import run needs across chunks."""

    def __init__(self, imp: Import, *, dry_run: bool) -> None:
        self.imp = imp
        self.actor = imp.created_by
        self.dry_run = dry_run
        self.compiled: CompiledMapping | None = (
            None if imp.premapped else compile_mapping(imp.mapping, imp.headers))
        self.region = getattr(settings, "RAPPORT_DEFAULT_REGION", "GB") or "GB"
        self.source = f"import:{imp.file_name}"[:64]
        self.index = DryRunIndex() if dry_run else None
        self.phase = ImportIssue.Phase.PREVIEW if dry_run else ImportIssue.Phase.RUN
        self.brings_consent = imp.brings_consent
        self.notice_version = _notice_version(imp) if self.brings_consent and not dry_run else None
        self._writers: dict[str, bulk.TableWriter] = {}

    @classmethod
    def for_import(cls, imp: Import, *, dry_run: bool) -> _Context:
        return cls(imp, dry_run=dry_run)

    def close(self) -> None:
        if self.index is not None:
            self.index.close()

    # -- outside the transaction: read, map, normalise, validate, check suppression

    def prepare(self, chunk: tuple[int, list[SourceRow]]) -> _Prepared:
        first_row, rows = chunk
        records: list[ImportRecord] = []
        issues: list[tuple[int, str, str, str]] = []
        report: dict[int, dict] = {}
        reporting = _reporting(first_row)
        for row in rows:
            if row.problem:
                issues.append((row.number, "", ImportIssue.Kind.INVALID, row.problem))
                if reporting:
                    report[row.number] = {"row": row.number, "outcome": "invalid", "name": "",
                                          "messages": [row.problem]}
                continue
            mapped = row.mapped if row.mapped is not None else self.compiled.apply(row.values)  # type: ignore[union-attr]
            record = build_record(row.number, mapped, default_region=self.region)
            self._check_consent_row(record)
            for column, message in record.warnings:
                issues.append((row.number, column, ImportIssue.Kind.WARNING, message))
            if not record.valid:
                for column, message in record.errors:
                    issues.append((row.number, column, ImportIssue.Kind.INVALID, message))
                if reporting:
                    report[row.number] = {"row": row.number, "outcome": "invalid",
                                          "name": record.display_name(),
                                          "messages": [f"{c}: {m}" if c else m for c, m in record.errors]}
                continue
            records.append(record)
        suppressed = _suppressed(records)
        kept = []
        for record in records:
            if record.number in suppressed:
                issues.append((record.number, "", ImportIssue.Kind.SUPPRESSED,
                               "An email or phone number of this row is on the suppression list "
                               "(an erased person, or one who asked not to be contacted); skipped."))
                if reporting:
                    report[record.number] = {"row": record.number, "outcome": "suppressed",
                                             "name": record.display_name(), "messages": []}
            else:
                kept.append(record)
        groups = group_records(kept)
        if not self.dry_run and not reporting:
            # enough ids for every group and point, made at once
            ids = iter(bulk.new_hex_ids(len(groups) + sum(len(r.points) for r in kept)))
            row = bulk.row_maker()
            for group in groups:
                group.fresh = self._fresh(group, ids, row)
        return _Prepared(issues, len(rows), report, groups)

    def _fresh(self, group: Group, ids: Iterator[str], row: Callable[..., Any]) -> Fresh | None:
        """The rows ``group`` writes if it turns out to be nobody Rapport knows yet.

        Built here, in the read-ahead process, because most groups are new people: the run then
        only writes these rows, and plans (``_plan``) the groups that matched someone. Groups
        bringing a job, tags or consents are left to the run (they need its lookups).
        """
        records = group.records
        if any(r.organisation or r.tags or r.consents for r in records):
            return None
        if len(records) == 1:  # most groups: the row's own values and points, as _start_new takes them
            values, new_points = records[0].person, records[0].points
        else:
            plan = _Plan(person_id=None, is_new=True)
            _start_new(plan, records[0])
            for record in records[1:]:
                _merge(plan, record, self.imp.policy, dt.date.min)  # no jobs here: the date is unused
            values, new_points = plan.values, plan.new_points
        db_id = next(ids)
        kinds: set[str] = set()
        points = []
        point_kinds = []
        source = self.source
        for point in new_points:
            point_id = next(ids)
            points.append(row((point_id, db_id, point.kind, point.label, point.value, point.normalised,
                               point.search_key[:200], source), (False, point.kind not in kinds)))
            point_kinds.append((point_id, point.kind))
            kinds.add(point.kind)
        return Fresh(bulk.dashed(db_id), db_id, row((db_id, *_person_row(values))), points, len(records),
                     point_kinds)

    def _check_consent_row(self, record: ImportRecord) -> None:
        if not record.consents or not record.valid:
            return
        if not self.brings_consent:
            return
        if record.consent_date is None and self.imp.consent_collected_on is None:
            column = next(iter(record.consents.values()))[1]
            record.errors.append((column, "Consent is given but the date it was collected is missing "
                                          "(map a date column or set the import's collection date)."))

    # -- inside the chunk's transaction: match, plan, write

    def apply(self, prepared: _Prepared, *, chunk_index: int, first_row: int) -> _Outcome:
        bulk.tune_connection()
        reporting = _reporting(first_row)
        counts: Counter[str] = Counter()
        counts["rows"] = prepared.rows_seen
        issues = list(prepared.issues)
        invalid_rows = {row for row, _, kind, _ in issues if kind == ImportIssue.Kind.INVALID}
        counts["invalid"] = len(invalid_rows)
        counts["suppressed"] = len({row for row, _, kind, _ in issues if kind == ImportIssue.Kind.SUPPRESSED})
        counts["warnings"] = sum(1 for _, _, kind, _ in issues if kind == ImportIssue.Kind.WARNING)
        report = dict(prepared.report)
        groups = prepared.groups
        match_groups(groups, self._lookup)
        plans, fresh = self._plan(groups, counts, issues, report, reporting)
        if not self.dry_run:
            self._write(plans, fresh, chunk_index=chunk_index, first_row=first_row, rows=prepared.rows_seen,
                        issues=issues, counts=counts)
        else:
            self._remember(plans)
            self._write_issues(issues)
        ordered = [report[number] for number in sorted(report)]
        return _Outcome(dict(counts), ordered)

    def _lookup(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], list[Any]]:
        found = database_lookup(keys)
        if self.index is None:
            return found
        merged: dict[tuple[str, str], list[Any]] = {k: [str(v) for v in vs] for k, vs in found.items()}
        for key, targets in self.index.lookup(keys).items():
            for target in targets:
                if target not in merged.setdefault(key, []):
                    merged[key].append(target)
        return merged

    def _remember(self, plans: list[tuple[_Plan, Group, list[tuple[ImportRecord, str]]]]) -> None:
        assert self.index is not None
        for plan, group, _ in plans:
            target = f"new:{plan.person_id}" if plan.is_new else plan.person_id
            self.index.remember(group.keys | {(p.kind, p.normalised) for p in plan.new_points
                                              if p.kind != "address"}, target)

    def _plan(self, groups: list[Group], counts: Counter[str], issues: list, report: dict[int, dict],
              reporting: bool) -> tuple[list[tuple[_Plan, Group, list[tuple[ImportRecord, str]]]], list[Fresh]]:
        existing_ids = {g.target for g in groups if g.target is not None and not _is_placeholder(g.target)}
        existing_ids = {uuid.UUID(str(t)) for t in existing_ids}
        state = self._load(existing_ids)
        blocked = self._blocked(existing_ids)
        policy = self.imp.policy
        today = timezone.localdate()
        plans = []
        fresh: list[Fresh] = []
        for group in groups:
            target = group.target
            if target is None and group.fresh is not None:  # a new person, rows built ahead
                fresh.append(group.fresh)
                counts["created"] += 1
                if group.fresh.rows > 1:
                    counts["merged"] += group.fresh.rows - 1
                continue
            if target is not None and not _is_placeholder(target):
                target = uuid.UUID(str(target))
                if target in blocked or target not in state:
                    outcome, message = blocked.get(target, (
                        "skipped", "This row matches a person you may not change; skipped."))
                    for record in group.records:
                        counts[outcome] += 1
                        kind = ImportIssue.Kind.SKIPPED
                        issues.append((record.number, "", kind, message))
                        _report(report, record, outcome, reporting, messages=[message])
                    continue
                plan = state[target]
            elif target is not None:
                plan = _Plan(person_id=target, is_new=False, created_here=True)
            else:
                plan = None
            results: list[tuple[ImportRecord, str]] = []
            seen_in_file: dict[tuple[str, str], int] = {}  # key -> first row of this group holding it
            for record in group.records:
                row_changes: list[str] = []
                in_file: list[dict] = []
                if reporting:  # the evidence is only shown for the first rows
                    record_keys = record.identifiers() | record.address_keys()
                    in_file = [{**key_evidence(key), "row": seen_in_file[key]} for key in sorted(record_keys)
                               if key in seen_in_file]
                    for key in record_keys:
                        seen_in_file.setdefault(key, record.number)
                if plan is None:
                    plan = _Plan(person_id=bulk.new_id(), is_new=True)
                    _start_new(plan, record)
                    outcome = "created"
                else:
                    row_changes = _merge(plan, record, policy, today)
                    if plan.is_new or plan.created_here:
                        outcome = "merged"
                    else:
                        outcome = "updated" if row_changes else "unchanged"
                _add_consents(plan, record)
                results.append((record, outcome))
                counts[outcome] += 1
                if record.consents and self.brings_consent:
                    counts["consents"] += len(record.consents)
                if reporting:
                    _report(report, record, outcome, True, person_id=plan.person_id,
                            evidence=group.evidence, others=group.others, in_file=in_file,
                            changes=sorted(set(row_changes)), existing=not plan.is_new and not plan.created_here,
                            name=_name(plan.values) if not plan.is_new and plan.values else None)
            plans.append((plan, group, results))  # type: ignore[arg-type]
        return plans, fresh

    def _load(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, _Plan]:
        """Existing people's current state, locked for this chunk's transaction.

        Who may be changed is ``visible_to``'s answer; what they already have (points, current
        jobs, tags, this import's ledger rows) is read with one raw statement each, keyed by the
        people it found (through the ORM, preparing each ``IN`` value was most of the cost).
        """
        if not ids:
            return {}
        people = Person.objects.visible_to(self.actor, "update").filter(pk__in=ids)
        if not self.dry_run:
            people = people.select_for_update(of=("self",))
        plans: dict[uuid.UUID, _Plan] = {}
        for row in people.order_by().values("pk", "version", *PERSON_FIELDS):
            plans[row["pk"]] = _Plan(person_id=row["pk"], is_new=False, version=row["version"],
                                     values={f: row[f] or "" for f in PERSON_FIELDS})
        if not plans:
            return plans
        by_db_id = {bulk.db_uuid(pk): plan for pk, plan in plans.items()}
        keys = list(by_db_id)
        for person_id, kind, normalised, primary in bulk.select_in(_state_sql()["points"], keys):
            plan = by_db_id[person_id]
            plan.keys.add((kind, normalised))
            if primary:
                plan.primary_kinds.add(kind)
        for job_id, person_id, org_key, start in bulk.select_in(_state_sql()["jobs"], keys):
            if isinstance(start, str):
                start = dt.date.fromisoformat(start)
            by_db_id[person_id].current_jobs.append((uuid.UUID(str(job_id)), org_key, start))
        for person_id, name in bulk.select_in(_state_sql()["tags"], keys):
            by_db_id[person_id].tags.add(name)
        if not self.dry_run:
            for person_id, created in bulk.select_in(_state_sql()["imported"], keys,
                                                     before=[bulk.db_uuid(self.imp.pk)]):
                by_db_id[person_id].recorded = True
                if created:
                    by_db_id[person_id].created_here = True
        return plans

    def _blocked(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
        """People whose data may not change: erased or restricted (C5)."""
        if not ids:
            return {}
        try:
            from rapport.privacy.models import PersonPrivacy
        except ImportError:  # privacy status not installed
            return {}
        blocked: dict[uuid.UUID, tuple[str, str]] = {}
        # one raw statement, as _load's (the ORM's preparation of each IN value was most of its cost)
        table = connection.ops.quote_name(PersonPrivacy._meta.db_table)
        sql = (f"SELECT person_id, erased_at FROM {table} WHERE (erased_at IS NOT NULL "  # noqa: S608 - model metadata
               "OR restricted_at IS NOT NULL) AND person_id {values}")
        for person_id, erased_at in bulk.select_in(sql, [bulk.db_uuid(pk) for pk in ids]):
            person_id = person_id if isinstance(person_id, uuid.UUID) else uuid.UUID(person_id)
            if erased_at is not None:
                blocked[person_id] = ("erased", "This row matches an erased person; skipped.")
            else:
                blocked[person_id] = ("skipped", "This row matches a person whose processing is "
                                                 "restricted; skipped.")
        return blocked

    def _writer(self, model: type, columns: list[str]) -> bulk.TableWriter:
        key = f"{model._meta.label}:{','.join(columns)}"
        if key not in self._writers:
            self._writers[key] = bulk.TableWriter(model, columns)
        return self._writers[key]

    def _write(self, plans: list[tuple[_Plan, Group, list[tuple[ImportRecord, str]]]], fresh: list[Fresh], *,
               chunk_index: int, first_row: int, rows: int, issues: list, counts: Counter[str]) -> None:
        now = timezone.now()
        actor_id = self.actor.pk if self.actor is not None else None
        organisations, created_orgs = self._organisations([p for p, _, _ in plans], now, actor_id)
        new_people, updated = [], []
        for plan, _, _ in plans:
            if plan.is_new:
                new_people.append(plan)
            elif plan.changed:
                updated.append(plan)
        self._writer(Person, ["id", "created_at", "updated_at", *PERSON_FIELDS, "given_key", "family_key",
                              "preferred_key", "owner_id", "version"]).insert(
            (p.person_id, now, now, *_person_row(p.values), actor_id, 1) for p in new_people)
        if fresh:
            self._writer(Person, ["id", *PERSON_FIELDS, "given_key", "family_key", "preferred_key", "owner_id",
                                  "version", "created_at", "updated_at"]).insert_ready(
                [f.person for f in fresh], (actor_id, 1, now, now))
        changes_ledger = []
        bulk.update_rows(Person, [*PERSON_FIELDS, "given_key", "family_key", "preferred_key", "version",
                                  "updated_at"],
                         ((*_person_row(p.values), p.version + 1, now, p.person_id) for p in updated))
        point_rows, job_rows, tag_rows, ended = [], [], [], []
        tag_ids = self._tags({t for p, _, _ in plans for t in p.new_tags})
        ledger_of: dict[Any, dict] = {}
        point_ids = iter(bulk.new_hex_ids(sum(len(p.new_points) for p, _, _ in plans)))  # chunk-local (0020)
        for plan, _, _ in plans:
            entry = {"person": str(plan.person_id), "points": [], "jobs": [], "tags": [], "ended_jobs": []}
            for point in plan.new_points:
                point_id = bulk.dashed(next(point_ids))
                primary = point.kind not in plan.primary_kinds
                plan.primary_kinds.add(point.kind)
                point_rows.append((point_id, now, now, plan.person_id, point.kind, point.label, point.value,
                                   point.normalised, point.search_key[:200], self.source, False, primary))
                entry["points"].append(point_id)
            if plan.new_job is not None:
                org_name, title, start = plan.new_job
                job_id = bulk.new_id()
                job_rows.append((job_id, now, now, plan.person_id, organisations[fold(org_name)], title,
                                 start or timezone.localdate(), None))
                entry["jobs"].append(job_id)
            for job_id, old_end, new_end in plan.ended_jobs:
                ended.append((new_end, now, job_id))
                entry["ended_jobs"].append([str(job_id), old_end.isoformat() if old_end else None])
            for name in plan.new_tags:
                tag_rows.append((plan.person_id, tag_ids[name]))
                entry["tags"].append(str(tag_ids[name]))
            ledger_of[plan.person_id] = entry
        self._insert_points(fresh, point_rows, now, [p.person_id for p in new_people])
        self._writer(Employment, ["id", "created_at", "updated_at", "person_id", "organisation_id", "title",
                                  "start_date", "end_date"]).insert(job_rows)
        bulk.update_rows(Employment, ["end_date", "updated_at"], ended)
        self._writer(Person.tags.through, ["person_id", "tag_id"]).insert(tag_rows)
        for plan in updated:
            entry = ledger_of[plan.person_id]
            entry.update(version_before=plan.version, version_after=plan.version + 1, before=plan.before)
            changes_ledger.append(entry)
        created_versions = {str(p.person_id): 1 for p in new_people}
        created_versions.update((f.person_id, 1) for f in fresh)
        for plan in new_people:  # a new person's later rows may add to it in this chunk: nothing to undo
            ledger_of.pop(plan.person_id, None)
        self._writer(ImportedPerson, ["import_run_id", "person_id", "created"]).insert(
            [(self.imp.pk, p.person_id, True) for p in new_people]
            + [(self.imp.pk, p.person_id, False) for p in updated if not p.recorded])
        if fresh:
            row = bulk.row_maker()
            self._writer(ImportedPerson, ["person_id", "import_run_id", "created"]).insert_ready(
                [row((f.db_id,)) for f in fresh], (self.imp.pk, True))
        self._record_consents([p for p, _, _ in plans], issues, counts)
        self._audit([p.person_id for p in new_people] + [f.db_id for f in fresh], updated)
        self._write_issues(issues)
        ImportChunk.objects.create(import_run=self.imp, index=chunk_index, first_row=first_row, row_count=rows,
                                   created_organisations=[str(o) for o in created_orgs],
                                   changes=changes_ledger, created_versions=created_versions)

    def _insert_points(self, fresh: list[Fresh], point_rows: list[tuple], now: dt.datetime,
                       new_people: list[Any]) -> None:
        """The chunk's new contact points: new people's (built ahead) and matched people's, with
        their digest and count rows written set-based (decision 0028) instead of by the triggers."""
        fresh_points = self._writer(ContactPoint, ["id", "person_id", "kind", "label", "value", "normalised",
                                                   "search_key", "source", "verified", "primary", "created_at",
                                                   "updated_at"])
        more_points = self._writer(ContactPoint, ["id", "created_at", "updated_at", "person_id", "kind", "label",
                                                  "value", "normalised", "search_key", "source", "verified",
                                                  "primary"])
        # (lazily: SQLite reads the points back from the table instead, decision 0033)
        derived = itertools.chain(((point_id, f.db_id, kind) for f in fresh for point_id, kind in f.point_kinds),
                                  ((row[0], row[3], row[4]) for row in point_rows))
        bulk.insert_contact_points(
            [lambda: fresh_points.insert_ready([point for f in fresh for point in f.points], (now, now)),
             lambda: more_points.insert(point_rows)], derived, new_people=[*new_people, *(f.db_id for f in fresh)])

    def _organisations(self, plans: list[_Plan], now: dt.datetime, actor_id: Any) -> tuple[dict[str, Any], list]:
        wanted = {fold(p.new_job[0]): p.new_job[0] for p in plans if p.new_job is not None}
        wanted.pop("", None)
        found: dict[str, Any] = {}
        keys = sorted(wanted)
        for start in range(0, len(keys), 500):
            for key, pk in (Organisation.objects.filter(name_key__in=keys[start:start + 500])
                            .order_by("created_at", "pk").values_list("name_key", "pk")):
                found.setdefault(key, pk)
        created = []
        rows = []
        for key, name in sorted(wanted.items()):
            if key not in found:
                pk = uuid.uuid4()
                found[key] = pk
                created.append(pk)
                rows.append((pk, now, now, name, key[:200], actor_id))
        self._writer(Organisation, ["id", "created_at", "updated_at", "name", "name_key", "owner_id"]).insert(rows)
        return found, created

    def _tags(self, names: set[str]) -> dict[str, Any]:
        if not names:
            return {}
        existing = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
        missing = [Tag(name=n) for n in sorted(names - set(existing))]
        if missing:
            Tag.objects.bulk_create(missing, ignore_conflicts=True)
            existing = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
        return existing

    def _record_consents(self, plans: list[_Plan], issues: list, counts: Counter[str]) -> None:
        from django.core.exceptions import ValidationError

        pending = [(p, c) for p in plans for c in p.consents]
        if not pending or not self.brings_consent:
            return
        people = {str(pk): person for pk, person in Person.objects.in_bulk([p.person_id for p, _ in pending]).items()}
        imp = self.imp
        for plan, (channel, granted, row, date, column) in pending:
            collected = date or imp.consent_collected_on
            occurred = timezone.make_aware(dt.datetime.combine(collected, dt.time(12, 0))) if collected else None
            proof = {"import": str(imp.pk), "file": imp.file_name, "file_sha256": imp.file_sha256,
                     "row": row, "column": column, "origin": imp.consent_source,
                     "collected_on": collected.isoformat() if collected else None,
                     "notice_version": imp.consent_notice_version}
            try:
                _record_consent(person=people[str(plan.person_id)], purpose=imp.consent_purpose, channel=channel,
                                granted=granted, lawful_basis=imp.consent_lawful_basis, source="import",
                                captured_by=self.actor, notice_version=self.notice_version, proof=proof,
                                occurred_at=occurred, double_opt_in=not imp.consent_confirmed)
            except (DomainError, ValidationError, ValueError) as err:
                issues.append((row, column, ImportIssue.Kind.WARNING, f"Consent not recorded: {_message(err)}"))
                counts["warnings"] += 1
                counts["consents"] -= 1

    def _audit(self, new_people: list[Any], updated: list[_Plan]) -> None:
        detail = {"import": str(self.imp.pk), "file": self.imp.file_name}
        if new_people:
            record_people_access_bulk(actor=self.actor, action="create", people=new_people, channel="import",
                                      detail=detail)
        if not updated:
            return
        from rapport.access import audit

        changes_by_id = {p.person_id: {name: [p.before[name], p.values.get(name, "")] for name in p.before}
                         for p in updated}
        with_fields = {pid: c for pid, c in changes_by_id.items() if c}
        without = [p.person_id for p in updated if not changes_by_id[p.person_id]]
        record_field_changes = getattr(audit, "record_field_changes", None)
        if record_field_changes is not None and with_fields:
            record_field_changes(actor=self.actor, object_type="people.Person", changes_by_id=with_fields,
                                 channel="import", detail=detail)
        else:
            without += list(with_fields)
        if without:  # points, jobs or tags added: one bulk entry for the chunk (decision 0008)
            record_people_access_bulk(actor=self.actor, action="change", people=without, channel="import",
                                      detail=detail)

    def _write_issues(self, issues: list[tuple[int, str, str, str]]) -> None:
        self._writer(ImportIssue, ["import_run_id", "phase", "row", "column", "kind", "message"]).insert(
            (self.imp.pk, self.phase, row, column[:255], kind, message) for row, column, kind, message in issues)


# ------------------------------------------------------------------ planning helpers


def _start_new(plan: _Plan, record: ImportRecord) -> None:
    plan.values = {name: record.person.get(name, "") for name in PERSON_FIELDS}
    for point in record.points:
        plan.keys.add((point.kind, point.normalised))
        plan.new_points.append(point)
    if record.organisation:
        plan.new_job = (record.organisation, record.title, record.start_date)
    for tag in record.tags:
        if tag not in plan.tags:
            plan.tags.add(tag)
            plan.new_tags.append(tag)


def _merge(plan: _Plan, record: ImportRecord, policy: str, today: dt.date) -> list[str]:
    """Apply a further row to ``plan`` under ``policy``; returns what this row changed
    (field names, ``+email``/``+phone``… for contact points, ``+job``, ``+tag``)."""
    changes: list[str] = []
    if policy != Import.Policy.ADD_CONTACT_POINTS and plan.values:
        for name in PERSON_FIELDS:
            new = record.person.get(name, "")
            if not new:
                continue
            old = plan.values.get(name, "")
            if (policy == Import.Policy.FILL_BLANKS and not old) or (
                    policy == Import.Policy.OVERWRITE and old != new):
                if not plan.is_new and not plan.created_here and name not in plan.before:
                    plan.before[name] = old
                plan.values[name] = new
                changes.append(name)
        if not plan.is_new:  # values equal to the original again are no change
            for name in [n for n in plan.before if plan.before[n] == plan.values.get(n, "")]:
                del plan.before[name]
    for point in record.points:
        key = (point.kind, point.normalised)
        if key not in plan.keys:
            plan.keys.add(key)
            plan.new_points.append(point)
            changes.append(f"+{point.kind}")
    if policy == Import.Policy.ADD_CONTACT_POINTS:
        return changes
    if record.organisation and _plan_job(plan, record, policy, today):
        changes.append("+job")
    for tag in record.tags:
        if tag not in plan.tags:
            plan.tags.add(tag)
            plan.new_tags.append(tag)
            changes.append("+tag")
    return changes


def _plan_job(plan: _Plan, record: ImportRecord, policy: str, today: dt.date) -> bool:
    key = fold(record.organisation)
    if any(org_key == key for _, org_key, _ in plan.current_jobs):
        return False
    if plan.new_job is not None:
        if fold(plan.new_job[0]) == key or policy != Import.Policy.OVERWRITE:
            return False
        plan.new_job = (record.organisation, record.title, record.start_date)
        return True
    if plan.current_jobs and policy != Import.Policy.OVERWRITE:
        return False
    start = record.start_date or today
    for job_id, _, job_start in plan.current_jobs:
        plan.ended_jobs.append((job_id, None, max(start, job_start) if job_start else start))
    plan.current_jobs = []
    plan.new_job = (record.organisation, record.title, record.start_date)
    return True


def _add_consents(plan: _Plan, record: ImportRecord) -> None:
    for channel, (granted, column) in sorted(record.consents.items()):
        plan.consents.append((channel, granted, record.number, record.consent_date, column))


def _person_row(values: dict[str, str]) -> tuple:
    """Person columns in writer order, with the folded name keys the search uses."""
    return (*[values.get(name, "") for name in PERSON_FIELDS], _name_key(values.get("given_name", "")),
            _name_key(values.get("family_name", "")), _name_key(values.get("preferred_name", "")))


@lru_cache(maxsize=65536)
def _name_key(name: str) -> str:
    """The search's folded name key; names repeat across a file's rows, folding them did not."""
    return fold(name)[:100]


def _name(values: dict[str, str]) -> str:
    first = values.get("preferred_name") or values.get("given_name", "")
    return " ".join(p for p in (first, values.get("family_name", "")) if p) or "(no name)"


def _report(report: dict[int, dict], record: ImportRecord, outcome: str, reporting: bool, *,
            person_id: Any = None, evidence: list | None = None, others: list | None = None,
            changes: list | None = None, existing: bool = False, name: str | None = None,
            messages: list | None = None, in_file: list | None = None) -> None:
    if not reporting:
        return
    entry: dict[str, Any] = {"row": record.number, "outcome": outcome, "name": record.display_name(),
                             "messages": messages or []}
    if person_id is not None and not _is_placeholder(person_id):
        entry["person_id"] = str(person_id)
    if existing:
        entry["existing_name"] = name or ""
        entry["evidence"] = evidence or []
        entry["changes"] = changes or []
        if others:
            entry["also_matches"] = [str(o) for o in others][:5]
    elif outcome == "merged":  # the same person as an earlier row: of this chunk, or created by an earlier one
        entry["evidence"] = in_file or evidence or []
        entry["changes"] = changes or []
    entry["emails"] = [p.normalised for p in record.points if p.kind == "email"][:3]
    entry["phones"] = [p.normalised for p in record.points if p.kind == "phone"][:3]
    entry["given_name"] = record.person.get("given_name", "")
    entry["family_name"] = record.person.get("family_name", "")
    report[record.number] = entry


def _add_candidates(rows: list[dict], *, actor: Any) -> None:
    """Identity resolution's own view (I2) of the first rows: candidates with score and evidence,
    only among the people the importing user may see (S2)."""
    from rapport.identity.services import find_candidates

    visible = Person.objects.visible_to(actor, "read")

    for entry in rows:
        if entry["outcome"] not in ("created", "updated", "unchanged", "merged"):
            continue
        try:
            candidates = find_candidates(given_name=entry.get("given_name", ""),
                                         family_name=entry.get("family_name", ""),
                                         emails=entry.get("emails", []), phones=entry.get("phones", []), limit=3,
                                         among=visible)
        except Exception:  # the preview must not fail because the scorer did
            logger.warning("find_candidates failed in an import preview", exc_info=True)
            continue
        entry["candidates"] = [{"person_id": str(c.person_id), "score": round(float(c.score), 3),
                                "evidence": c.evidence} for c in candidates]


def _is_placeholder(target: Any) -> bool:
    return isinstance(target, str) and not _looks_uuid(target)


def _looks_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _suppressed(records: list[ImportRecord]) -> set[int]:
    """Row numbers whose email or phone is suppressed: one check per chunk, bisected on a hit."""
    from rapport.privacy.suppression import ensure_not_suppressed

    def check(batch: list[ImportRecord]) -> set[int]:
        emails = [p.normalised for r in batch for p in r.points if p.kind == "email"]
        phones = [p.normalised for r in batch for p in r.points if p.kind == "phone"]
        if not emails and not phones:
            return set()
        try:
            ensure_not_suppressed(emails=emails, phones=phones, normalised=True)
        except DomainError:
            if len(batch) == 1:
                return {batch[0].number}
            middle = len(batch) // 2
            return check(batch[:middle]) | check(batch[middle:])
        return set()

    return check(_suppression_candidates(records)) if records else set()


def _suppression_candidates(records: list[ImportRecord]) -> list[ImportRecord]:
    """The records holding an email or phone whose digest is on the internal suppression list.

    A prefilter in front of ``ensure_not_suppressed``, which stays the judge of each row: the
    same compared forms and digests (the privacy app's ``stored_forms``, ``keyed_digests``,
    ``plain_digest``) looked up in one raw statement per chunk, and on the (kind, digest) index
    (``ensure_not_suppressed``'s ORM ``IN`` of a chunk's ~8,000 digests was a third of the
    read-ahead process's time). Any record it lets through has no suppressed digest at all.
    """
    from rapport.privacy.models import SuppressionEntry
    from rapport.privacy.suppression import (
        INTERNAL_SOURCES,
        keyed_digests,
        plain_digest,
        stored_forms,
    )

    forms_of: list[tuple[ImportRecord, set[str]]] = []
    every: set[str] = set()
    for record in records:
        forms: set[str] = set()
        for point in record.points:
            if point.kind == "email" or point.kind == "phone":
                forms |= stored_forms(point.kind, point.normalised)
        if forms:
            forms_of.append((record, forms))
            every |= forms
    if not every:
        return []
    ordered = sorted(every)
    keyed = keyed_digests([form.encode() for form in ordered])
    digests = {form: (digest, plain_digest(form)) for form, digest in zip(ordered, keyed, strict=True)}
    table = connection.ops.quote_name(SuppressionEntry._meta.db_table)
    kinds = ", ".join(f"'{kind}'" for kind in SuppressionEntry.Kind.values)  # every kind: the index's first column
    sources = ", ".join(f"'{source}'" for source in INTERNAL_SOURCES)
    sql = (f"SELECT digest FROM {table} WHERE kind IN ({kinds}) AND source IN ({sources}) "  # noqa: S608 - model metadata
           "AND digest {values}")
    hits = {digest for (digest,) in bulk.select_in(sql, [d for pair in digests.values() for d in pair])}
    if not hits:
        return []
    return [record for record, forms in forms_of if any(d in hits for form in forms for d in digests[form])]


def _record_consent(**kwargs: Any) -> Any:
    """C2 — append to the consent ledger (the privacy app's service; imported when needed)."""
    from rapport.privacy.services import record_consent

    return record_consent(**kwargs)


def _add_counts(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    result = dict(total)
    for key, value in more.items():
        result[key] = result.get(key, 0) + value
    return result


def _message(err: Exception) -> str:
    messages = getattr(err, "messages", None)
    return "; ".join(messages) if messages else str(err)


# ------------------------------------------------------------------------------ undo


def import_undo(*, actor: Any, import_run: Import) -> Import:
    """Remove what the import created and revert what it changed — only if nothing newer
    touched those records since; otherwise refuse (``Conflict``) and name them."""
    imp = _own(actor, import_run)
    if imp.status not in (Import.Status.COMPLETED, Import.Status.FAILED):
        raise Conflict(f"Only a finished import can be undone; this one is {imp.get_status_display().lower()}.")
    if imp.purged_at is not None:
        raise Conflict("This import's undo record was purged after the retention period.")
    with transaction.atomic():
        locked = Import.objects.select_for_update().get(pk=imp.pk)
        if locked.status not in (Import.Status.COMPLETED, Import.Status.FAILED) or locked.lease_owner:
            raise Conflict("This import is running or already undone.")
        chunks = list(ImportChunk.objects.filter(import_run=locked).order_by("index"))
        expected: dict[str, int] = {}
        created: set[str] = set()
        created_orgs: set[str] = set()
        for chunk in chunks:
            for pid, version in chunk.created_versions.items():
                expected[pid] = version
                created.add(pid)
            for change in chunk.changes:
                expected[change["person"]] = change["version_after"]
            created_orgs.update(chunk.created_organisations)
        added_jobs = {job for chunk in chunks for change in chunk.changes for job in change["jobs"]}
        _check_untouched(locked, expected, created, created_orgs, added_jobs)
        reverted: list[str] = []
        for chunk in reversed(chunks):
            for change in reversed(chunk.changes):
                _revert(change)
                reverted.append(change["person"])
        created_ids = [uuid.UUID(p) for p in sorted(created)]
        try:
            for start in range(0, len(created_ids), 500):
                Person.objects.filter(pk__in=created_ids[start:start + 500]).delete()
            Organisation.objects.filter(pk__in=[uuid.UUID(o) for o in created_orgs]).delete()
        except (ProtectedError, IntegrityError) as err:
            raise Conflict(f"Records this import created are now referenced elsewhere: {err}") from err
        detail = {"import": str(locked.pk), "undo": True}
        untouched_reverted = sorted(set(reverted) - created)
        if untouched_reverted:
            record_person_access(actor=actor, action="change", people=untouched_reverted, channel="import",
                                 detail=detail)
        if created_ids:
            record_person_access(actor=actor, action="delete", people=created_ids, channel="import",
                                 detail=detail)
        ImportedPerson.objects.filter(import_run=locked).delete()
        ImportChunk.objects.filter(import_run=locked).delete()
        locked.status = Import.Status.UNDONE
        locked.undone_at = timezone.now()
        locked.undone_by = _user(actor)
        locked.save(update_fields=["status", "undone_at", "undone_by", "updated_at"])
    return locked


def _check_untouched(imp: Import, expected: dict[str, int], created: set[str], created_orgs: set[str],
                     added_jobs: set[str]) -> None:
    ids = [uuid.UUID(p) for p in expected]
    current: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        for pk, version in Person.objects.filter(pk__in=ids[start:start + 500]).values_list("pk", "version"):
            current[str(pk)] = version
    touched = sorted(pid for pid, version in expected.items() if current.get(pid) != version)
    created_ids = [uuid.UUID(p) for p in created]
    since = imp.finished_at or imp.updated_at
    for start in range(0, len(created_ids), 500):
        batch = created_ids[start:start + 500]
        later = Interaction.objects.filter(person_id__in=batch).values_list("person_id", flat=True)
        touched.extend(sorted({str(p) for p in later}))
    if created_orgs:
        org_ids = [uuid.UUID(o) for o in created_orgs]
        foreign = (Employment.objects.filter(organisation_id__in=org_ids).exclude(person_id__in=created_ids)
                   .exclude(pk__in=[uuid.UUID(j) for j in added_jobs]))
        if foreign.exists() or Organisation.objects.filter(parent_id__in=org_ids).exists():
            raise Conflict("Organisations this import created are now used by other records; "
                           "it cannot be undone.", organisations=sorted(created_orgs)[:20])
    if touched:
        raise Conflict(f"{len(touched)} people were changed after this import (since {since:%d %b %Y %H:%M}); "
                       "it cannot be undone without losing those changes.", people=touched[:20])


def _revert(change: dict) -> None:
    person_id = uuid.UUID(change["person"])
    ContactPoint.objects.filter(pk__in=[uuid.UUID(p) for p in change["points"]]).delete()
    Employment.objects.filter(pk__in=[uuid.UUID(j) for j in change["jobs"]]).delete()
    for job_id, old_end in change["ended_jobs"]:
        Employment.objects.filter(pk=uuid.UUID(job_id)).update(
            end_date=dt.date.fromisoformat(old_end) if old_end else None, updated_at=timezone.now())
    if change["tags"]:
        Person.tags.through.objects.filter(person_id=person_id,
                                           tag_id__in=[uuid.UUID(t) for t in change["tags"]]).delete()
    person = Person.objects.select_for_update().get(pk=person_id)
    for name, old in change["before"].items():
        setattr(person, name, old)
    person.given_key = fold(person.given_name)[:100]
    person.family_key = fold(person.family_name)[:100]
    person.preferred_key = fold(person.preferred_name)[:100]
    person.version += 1
    person.save(update_fields=[*change["before"], "given_key", "family_key", "preferred_key", "version",
                               "updated_at"])


# ------------------------------------------------------------------- housekeeping jobs


def resume_stalled_imports() -> list[str]:
    """Re-queue imports whose runner died (lease expired): they resume from ``next_row``."""
    from rapport.imports.tasks import run_import

    now = timezone.now()
    stalled = Import.objects.filter(status__in=[Import.Status.RUNNING, Import.Status.PREVIEWING]).filter(
        Q(lease_until__lt=now) | Q(lease_until__isnull=True, heartbeat_at__lt=now - LEASE))
    resumed = []
    for imp in stalled:
        claimed = Import.objects.filter(pk=imp.pk, lease_until=imp.lease_until).update(
            lease_owner="", lease_until=None, heartbeat_at=now)
        if claimed:
            run_import.enqueue(str(imp.pk), imp.status == Import.Status.PREVIEWING)
            resumed.append(str(imp.pk))
    return resumed


def purge_expired_imports(now: dt.datetime | None = None) -> int:
    """Delete files, issues and undo ledgers of imports older than the retention (C6)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=RETENTION_DAYS)
    expired = Import.objects.filter(created_at__lt=cutoff, purged_at__isnull=True).exclude(
        status__in=[Import.Status.RUNNING, Import.Status.PREVIEWING, Import.Status.QUEUED])
    count = 0
    for imp in expired:
        with transaction.atomic():
            _delete_file(imp)
            ImportIssue.objects.filter(import_run=imp).delete()
            ImportChunk.objects.filter(import_run=imp).delete()
            Import.objects.filter(pk=imp.pk).update(purged_at=now, preview={}, report_rows=[], sample=[],
                                                     file_path="")
        count += 1
    return count


# ------------------------------------------------------------------------------ helpers


def _require_import_permission(actor: Any) -> None:
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.is_active:
        raise NotAllowed("Sign in to import.")
    try:
        from rapport.access.permissions import has_permission
    except ImportError:  # roles not installed: every active staff user may import
        return
    if not has_permission(actor, "people.person", "create"):
        raise NotAllowed("Your role may not create people, so it may not import them.")


def _own(actor: Any, import_run: Import) -> Import:
    """Imports are private to whoever uploaded them (and administrators)."""
    _require_import_permission(actor)
    if import_run.created_by_id != getattr(actor, "pk", None) and not getattr(actor, "is_superuser", False):
        raise NotAllowed("This is someone else's import.")
    return Import.objects.get(pk=import_run.pk)


def _check_ready(imp: Import) -> None:
    if imp.purged_at is not None or not imp.file_path:
        raise Conflict("This import's file was deleted.")
    if not imp.premapped:
        compile_mapping(imp.mapping, imp.headers)
    if imp.brings_consent:
        missing = [label for value, label in (
            (imp.consent_source, "source"), (imp.consent_lawful_basis, "lawful basis"),
            (imp.consent_notice_version, "notice version"), (imp.consent_purpose, "purpose"))
            if not value]
        has_date_column = any(r.get("target") == "consent_date" for r in imp.mapping.get("columns", {}).values()
                              if isinstance(r, dict))
        if imp.consent_collected_on is None and not has_date_column:
            missing.append("date collected")
        if missing:
            raise DomainError(
                "This file brings marketing permission; say where it came from first: "
                + ", ".join(missing) + ".",
                field_errors={f"consent_{m.split()[0]}": ["Required when the file brings consent."]
                              for m in missing})


def _set_consent(imp: Import, consent: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    imp.consent_source = str(consent.get("source", imp.consent_source) or "").strip()[:200]
    basis = str(consent.get("lawful_basis", imp.consent_lawful_basis) or "").strip()
    if basis and basis not in CONSENT_BASES:
        errors["consent_lawful_basis"] = [f"Choose one of {', '.join(CONSENT_BASES)}."]
    imp.consent_lawful_basis = basis
    purpose = str(consent.get("purpose", imp.consent_purpose) or "").strip()
    if purpose:
        try:
            from rapport.privacy.purposes import PURPOSES
        except ImportError:
            PURPOSES = {}  # privacy purposes not installed
        if PURPOSES and purpose not in PURPOSES:
            errors["consent_purpose"] = [f"Choose one of {', '.join(PURPOSES)}."]
        imp.consent_purpose = purpose[:64]
    collected = consent.get("collected_on", imp.consent_collected_on)
    if isinstance(collected, str):
        try:
            collected = dt.date.fromisoformat(collected) if collected else None
        except ValueError:
            errors["consent_collected_on"] = ["Use a date such as 2024-03-31."]
            collected = None
    if collected and collected > timezone.localdate():
        errors["consent_collected_on"] = ["The date collected cannot be in the future."]
    imp.consent_collected_on = collected
    imp.consent_notice_version = str(consent.get("notice_version", imp.consent_notice_version) or "").strip()[:64]
    if imp.consent_notice_version:
        try:
            _notice_version(imp)
        except DomainError as err:
            errors["consent_notice_version"] = [str(err)]
    imp.consent_confirmed = bool(consent.get("confirmed", imp.consent_confirmed))
    if errors:
        raise DomainError("The consent provenance has errors.", field_errors=errors)


def _notice_version(imp: Import) -> Any:
    """The privacy NoticeVersion named ``key:version`` (or by id), or None when not installed."""
    reference = imp.consent_notice_version
    if not reference:
        return None
    try:
        from rapport.privacy.models import NoticeVersion
    except ImportError:
        return None
    query = NoticeVersion.objects.select_related("notice")
    if _looks_uuid(reference):
        found = query.filter(pk=reference).first()
    else:
        key, _, number = reference.rpartition(":")
        found = (query.filter(notice__key=key, version=int(number)).first()
                 if key and number.isdigit() else None)
    if found is None:
        raise DomainError(f"There is no notice version {reference!r}; use notice-key:version (e.g. "
                          "privacy:3) of a published notice.")
    return found


def _clean_mapping(mapping: dict) -> dict:
    columns = validate_mapping(mapping)
    return {"columns": columns, "date_format": mapping.get("date_format", "") or "",
            "split": mapping.get("split", ";") if mapping.get("split", ";") is not None else ";",
            "preset": mapping.get("preset", "") or ""}


def _apply_info(imp: Import, info: SourceInfo) -> None:
    imp.format = info.format
    imp.encoding = info.encoding
    imp.delimiter = info.delimiter
    imp.sheet = info.sheet
    imp.sheets = info.sheets
    headers_changed = imp.headers != info.headers
    imp.headers = info.headers
    imp.sample = info.sample
    imp.total_rows = info.total_rows
    if headers_changed or not imp.mapping:
        suggestion = suggest_mapping(info.headers) if info.format not in ("vcard", "json") else {
            "columns": {}, "date_format": "", "split": ";", "preset": info.format}
        imp.preset = suggestion.pop("preset")
        imp.mapping = _clean_mapping({**suggestion, "preset": imp.preset})


def source_info(imp: Import) -> SourceInfo:
    return SourceInfo(format=imp.format, encoding=imp.encoding, delimiter=imp.delimiter, sheet=imp.sheet,
                      sheets=list(imp.sheets), headers=list(imp.headers), total_rows=imp.total_rows)


def file_path(imp: Import) -> Path:
    return Path(settings.MEDIA_ROOT) / imp.file_path


def source_opener(imp: Import) -> Callable[[], IO[bytes]]:
    path = file_path(imp)
    if not imp.file_path or not path.exists():
        raise FileProblem("The uploaded file is no longer there; upload it again.")
    return lambda: open(path, "rb")


def _store(upload: IO[bytes], file_name: str, import_id: uuid.UUID) -> tuple[str, int, str]:
    safe = get_valid_filename(os.path.basename(file_name or "upload")) or "upload"
    relative = f"{IMPORT_DIR}/{import_id}/{safe[:150]}"
    path = Path(settings.MEDIA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    lines = LineGuard()
    with open(path, "wb") as out:
        while True:
            block = upload.read(1024 * 1024)
            if not block:
                break
            size += len(block)
            try:
                if size > MAX_FILE_BYTES:
                    raise FileProblem(f"The file is larger than {MAX_FILE_BYTES // 1024 ** 2} MiB.")
                lines.feed(block)
            except FileProblem:
                out.close()
                shutil.rmtree(path.parent, ignore_errors=True)
                raise
            digest.update(block)
            out.write(block)
    return relative, size, digest.hexdigest()


def _delete_file(imp: Import) -> None:
    if imp.file_path:
        shutil.rmtree(file_path(imp).parent, ignore_errors=True)


def _claim(import_id: Any, runner: str, statuses: list[str]) -> bool:
    now = timezone.now()
    imp = Import.objects.filter(pk=import_id).only("lease_owner", "lease_until").first()
    if imp is None:
        raise Import.DoesNotExist(f"No import {import_id}.")
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=runner) | Q(lease_owner="")
    if imp.lease_owner and _holder_dead(imp.lease_owner):
        free |= Q(lease_owner=imp.lease_owner)
    return bool(Import.objects.filter(free, pk=import_id, status__in=statuses).update(
        lease_owner=runner, lease_until=now + LEASE, heartbeat_at=now))


def _holder_dead(owner: str) -> bool:
    """True when the lease holder is a process on this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname()[:30] or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None
