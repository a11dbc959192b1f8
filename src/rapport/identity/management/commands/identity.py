"""``rapport identity cluster INPUT.csv --id-column ID [--column ROLE=HEADER ...] --out CLUSTERS.csv``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from rapport.identity.engine import ROLES
from rapport.identity.filemode import (
    FileModeError,
    cluster_file,
    parse_column_options,
    stderr_progress,
)


class Command(BaseCommand):
    help = "Identity resolution outside the database (file mode)."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("cluster", help="Cluster the records of a CSV file into entities.")
        run.add_argument("input", help="CSV file with a header row.")
        run.add_argument("--id-column", required=True, help="Header of the unique record id.")
        run.add_argument("--column", action="append", default=[], metavar="ROLE=HEADER",
                         help=f"Map a header to a role; roles: {', '.join(ROLES)}. "
                              "Headers named like a role map themselves; others are ignored.")
        run.add_argument("--threshold", type=float, default=0.9, help="Match probability (0–1).")
        run.add_argument("--out", required=True, help="Write record_id,cluster_id here.")
        run.add_argument("--pairs", default=None, help="Also write matched pairs with evidence.")
        run.add_argument("--date-format", default=None,
                         help="strptime format of birth dates (default ISO 8601 or YYYYMMDD).")
        run.add_argument("--workers", type=int, default=None, metavar="N",
                         help="Processes preparing the records and threads comparing them "
                              "(default: the number of cores).")

    def handle(self, *args, action: str, **options) -> None:  # type: ignore[no-untyped-def]
        report, stop = stderr_progress()
        try:
            result = cluster_file(
                options["input"], id_column=options["id_column"],
                columns=parse_column_options(options["column"]), threshold=options["threshold"],
                out=options["out"], pairs_out=options["pairs"], date_format=options["date_format"],
                workers=options["workers"], progress=report)
        except FileModeError as err:
            raise CommandError(str(err)) from err
        finally:
            stop()
        self.stderr.write(f"{result.records} records → {result.clusters} clusters "
                          f"({result.pairs_matched} of {result.pairs_scored} compared pairs matched).")
