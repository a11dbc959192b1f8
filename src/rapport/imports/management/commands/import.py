"""``rapport import FILE --mapping NAME [--dry-run]`` — import people with a live progress bar (A3).

Also ``rapport import --resume ID`` (continue an import whose process died), ``rapport import
--undo ID`` and ``rapport import --list``. The command runs the import in this process through
the same service as the background job (``services.import_execute``), chunk by chunk; Ctrl-C
or a kill leaves the committed chunks in place, and ``--resume`` finishes the rest.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rapport.core.errors import DomainError
from rapport.imports import selectors, services
from rapport.imports.mapping import suggest_mapping
from rapport.imports.models import Import, ImportIssue

PRESETS = ("auto",)


class Command(BaseCommand):
    help = "Import people from a CSV, Excel or vCard file (or resume / undo / list imports)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="CSV, .xlsx or .vcf file to import")
        parser.add_argument("--mapping", default="auto",
                            help="Saved mapping template name, or 'auto' (suggested from the headers; "
                                 "Outlook and Google exports are recognised)")
        parser.add_argument("--dry-run", action="store_true", help="Preview: report outcomes, write nothing")
        parser.add_argument("--policy", choices=Import.Policy.values, default=Import.Policy.FILL_BLANKS,
                            help="What a row matching an existing person does (default: fill_blanks)")
        parser.add_argument("--user", default=os.environ.get("RAPPORT_CLI_USER", ""),
                            help="Username the import runs as (default: $RAPPORT_CLI_USER, or the only "
                                 "administrator)")
        parser.add_argument("--encoding", default="", help="File encoding (default: detected)")
        parser.add_argument("--delimiter", default="", help="CSV delimiter (default: detected)")
        parser.add_argument("--sheet", default="", help="Excel sheet (default: the first)")
        parser.add_argument("--chunk-size", type=int, default=services.DEFAULT_CHUNK,
                            help=f"Rows per transaction (default {services.DEFAULT_CHUNK})")
        parser.add_argument("--save-mapping", default="", metavar="NAME",
                            help="Save the mapping used as a template under NAME")
        parser.add_argument("--errors", default="", metavar="FILE",
                            help="Write the rows not imported, with the reasons, to FILE (CSV)")
        consent = parser.add_argument_group("consent provenance (required when the file brings marketing permission)")
        consent.add_argument("--consent-source", default="", help="Where the permission was collected")
        consent.add_argument("--consent-basis", default="", help="Lawful basis, e.g. consent")
        consent.add_argument("--consent-collected", default="", help="Date collected (YYYY-MM-DD)")
        consent.add_argument("--consent-notice", default="", help="Notice version shown, as key:version")
        consent.add_argument("--consent-purpose", default="", help="Purpose (topic), e.g. newsletter")
        consent.add_argument("--consent-confirmed", action="store_true",
                             help="Email addresses were already confirmed by double opt-in")
        actions = parser.add_mutually_exclusive_group()
        actions.add_argument("--resume", metavar="ID", help="Resume an interrupted import")
        actions.add_argument("--undo", metavar="ID", help="Undo a finished import")
        actions.add_argument("--list", action="store_true", help="List recent imports")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["list"]:
                return self._list()
            actor = self._actor(options["user"])
            if options["undo"]:
                return self._undo(actor, options["undo"])
            if options["resume"]:
                imp = self._get(actor, options["resume"])
                if imp.status in (Import.Status.COMPLETED, Import.Status.UNDONE):
                    raise CommandError(f"Import {imp.pk} is {imp.get_status_display().lower()}; nothing to resume.")
                dry_run = imp.status == Import.Status.PREVIEWING
                if imp.status == Import.Status.FAILED:
                    Import.objects.filter(pk=imp.pk).update(status=Import.Status.RUNNING)
            else:
                imp, dry_run = self._create(actor, options)
            imp = self._execute(imp, dry_run)
            self._report(imp, dry_run, options["errors"])
        except DomainError as err:
            raise CommandError(self._problem(err)) from err

    # ----------------------------------------------------------------------------- steps

    def _create(self, actor: Any, options: dict[str, Any]) -> tuple[Import, bool]:
        if not options["file"]:
            raise CommandError("Give the FILE to import (or --resume ID, --undo ID, --list).")
        path = Path(options["file"])
        if not path.exists() or path.is_dir():  # a pipe is fine: the file is read once, as a stream
            raise CommandError(f"No such file: {path}")
        with path.open("rb") as stream:
            imp = services.import_create(actor=actor, upload=stream, file_name=path.name,
                                         encoding=options["encoding"], delimiter=options["delimiter"],
                                         sheet=options["sheet"], chunk_size=max(1, options["chunk_size"]))
        self.stderr.write(f"{path.name}: {imp.get_format_display()}"
                          + (f", {imp.encoding}" if imp.encoding else "")
                          + (f", delimiter {imp.delimiter!r}" if imp.delimiter else "")
                          + (f", sheet {imp.sheet!r}" if imp.sheet else "")
                          + f", {imp.total_rows:,} rows" + (f" ({imp.preset} export)" if imp.preset else ""))
        mapping_name = options["mapping"]
        mapping = None
        if mapping_name in PRESETS:
            mapping = suggest_mapping(imp.headers) if not imp.premapped else None
            mapping_name = ""
        consent = {key: value for key, value in (
            ("source", options["consent_source"]), ("lawful_basis", options["consent_basis"]),
            ("collected_on", options["consent_collected"]), ("notice_version", options["consent_notice"]),
            ("purpose", options["consent_purpose"])) if value}
        if options["consent_confirmed"]:
            consent["confirmed"] = True
        imp = services.import_configure(actor=actor, import_run=imp, mapping=mapping, mapping_name=mapping_name,
                                        policy=options["policy"], consent=consent or None)
        if not imp.premapped:
            mapped = {h: r["target"] for h, r in imp.mapping["columns"].items() if r["target"] != "label"}
            self.stderr.write("mapping: " + (", ".join(f"{h} → {t}" for h, t in mapped.items()) or "(none)"))
        if options["save_mapping"]:
            services.mapping_save(actor=actor, name=options["save_mapping"], mapping=imp.mapping)
            self.stderr.write(f"saved mapping {options['save_mapping']!r}")
        dry_run = options["dry_run"]
        if dry_run:
            Import.objects.filter(pk=imp.pk).update(status=Import.Status.PREVIEWING,
                                                    preview={"next_row": 0, "total_rows": imp.total_rows})
        else:
            services.prepare_run(actor=actor, import_run=imp)
        self.stderr.write(f"import {imp.pk} ({'dry run' if dry_run else 'run'}); "
                          f"resume with: rapport import --resume {imp.pk}")
        return imp, dry_run

    def _execute(self, imp: Import, dry_run: bool) -> Import:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(file=sys.stderr)
        started = time.monotonic()
        first_done = imp.preview.get("next_row", 0) if dry_run else imp.next_row
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("rows"), TextColumn("{task.fields[rate]:>8} rows/s"), TextColumn("ETA"),
                   TimeRemainingColumn(), TimeElapsedColumn())
        # no refresh thread (rich's default): the run forks its read-ahead processes only from a
        # single-threaded process (core.forking), so the bar is redrawn at each chunk instead
        with Progress(*columns, console=console, transient=False, auto_refresh=False) as progress:
            task = progress.add_task("Preview" if dry_run else "Import", total=imp.total_rows,
                                     completed=first_done, rate="–")

            def update(current: Import) -> None:
                done = current.preview.get("next_row", 0) if dry_run else current.next_row
                elapsed = max(time.monotonic() - started, 1e-6)
                progress.update(task, completed=done, rate=f"{(done - first_done) / elapsed:,.0f}", refresh=True)

            imp = services.import_execute(import_id=imp.pk, dry_run=dry_run, progress=update)
        if imp.lease_owner and imp.status in (Import.Status.RUNNING, Import.Status.PREVIEWING):
            raise CommandError(f"Import {imp.pk} is being run by another process ({imp.lease_owner}).")
        return imp

    def _report(self, imp: Import, dry_run: bool, errors_path: str) -> None:
        counts = imp.preview.get("counts", {}) if dry_run else imp.counts
        self.stdout.write(f"{'Preview of' if dry_run else 'Imported'} {imp.file_name}: {imp.get_status_display()}")
        for key in ("rows", *services.OUTCOMES, "warnings", "consents"):
            if counts.get(key):
                self.stdout.write(f"  {key:<10} {counts[key]:>9,}")
        if dry_run:
            self.stdout.write("First rows:")
            for row in imp.preview.get("rows", [])[:20]:
                evidence = ", ".join(f"{e['field']} {e['value']}" for e in row.get("evidence", []))
                extra = f" ← matched on {evidence}" if evidence else ""
                messages = "; ".join(row.get("messages", []))
                self.stdout.write(f"  row {row['row']:>5}  {row['outcome']:<10} {row.get('name', '')}{extra}"
                                  + (f"  ({messages})" if messages else ""))
            self.stdout.write("Nothing was written (dry run).")
        phase = ImportIssue.Phase.PREVIEW if dry_run else ImportIssue.Phase.RUN
        issues = selectors.import_issues(import_run=imp, phase=phase)
        shown = list(issues.exclude(kind=ImportIssue.Kind.WARNING)[:20])
        if shown:
            self.stdout.write("Rows not imported:")
            for issue in shown:
                column = f" [{issue.column}]" if issue.column else ""
                self.stdout.write(f"  row {issue.row:>5}{column} {issue.kind}: {issue.message}")
            total = issues.exclude(kind=ImportIssue.Kind.WARNING).count()
            if total > len(shown):
                self.stdout.write(f"  … and {total - len(shown):,} more")
        if errors_path:
            with open(errors_path, "wb") as out:
                for block in selectors.error_file(import_run=imp, phase=phase):
                    out.write(block)
            self.stdout.write(f"Error file written to {errors_path}")
        if imp.status == Import.Status.FAILED:
            raise CommandError(f"Import failed: {imp.error}")

    def _undo(self, actor: Any, import_id: str) -> None:
        imp = self._get(actor, import_id)
        imp = services.import_undo(actor=actor, import_run=imp)
        self.stdout.write(f"Import {imp.pk} ({imp.file_name}) undone.")

    def _list(self) -> None:
        for imp in Import.objects.order_by("-created_at")[:30]:
            counts = imp.counts or imp.preview.get("counts", {})
            summary = ", ".join(f"{k} {counts[k]:,}" for k in services.OUTCOMES if counts.get(k))
            self.stdout.write(f"{imp.pk}  {imp.created_at:%Y-%m-%d %H:%M}  {imp.status:<10} {imp.file_name}  "
                              f"{imp.next_row:,}/{imp.total_rows:,}  {summary}")

    # --------------------------------------------------------------------------- helpers

    def _actor(self, username: str) -> Any:
        users = get_user_model().objects.filter(is_active=True)
        if username:
            user = users.filter(username=username).first()
            if user is None:
                raise CommandError(f"No active user {username!r}.")
            return user
        admins = list(users.filter(is_superuser=True)[:2])
        if len(admins) != 1:
            raise CommandError("Say which user the import runs as: --user USERNAME (or $RAPPORT_CLI_USER).")
        return admins[0]

    def _get(self, actor: Any, import_id: str) -> Import:
        try:
            return selectors.import_get(user=actor, import_id=import_id)
        except (Import.DoesNotExist, ValueError) as err:
            raise CommandError(f"No import {import_id} of yours.") from err
        except Exception as err:  # a malformed UUID raises ValidationError
            raise CommandError(f"No import {import_id} of yours.") from err

    def _problem(self, err: DomainError) -> str:
        lines = [str(err)]
        for field, messages in err.field_errors.items():
            lines.extend(f"  {field}: {m}" for m in messages)
        return "\n".join(lines)

