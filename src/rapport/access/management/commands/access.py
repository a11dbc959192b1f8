"""``rapport access matrix``: print the authorisation matrix (S1/S2) generated from the seed
roles and the route classification, or write it into a document between its markers.
``rapport access analyze``: refresh the planner statistics visibility filters rely on.

``rapport access matrix --format md --write docs/security.md`` refreshes the table the
matrix test compares against; ``--format json`` gives the same data for scripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rapport.access import matrix


class Command(BaseCommand):
    help = "Access control tools (S1–S8): the authorisation matrix."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        show = sub.add_parser("matrix", help="Every seed role × every route × own / shared / private record.")
        show.add_argument("--format", choices=["md", "json"], default="md")
        show.add_argument("--write", metavar="FILE",
                          help="Replace the table between the matrix markers in FILE (Markdown only).")
        sub.add_parser("analyze", help="Refresh the query planner's statistics (run after big imports).")

    def handle(self, *args: Any, action: str, format: str = "md", write: str | None = None,
               **options: Any) -> None:
        if action == "analyze":
            from rapport.access.services import planner_statistics_refresh

            vendor = planner_statistics_refresh()
            self.stdout.write(f"Planner statistics refreshed ({vendor}).")
            return
        if format == "json":
            if write:
                raise CommandError("--write needs --format md.")
            self.stdout.write(json.dumps(matrix.as_rows(), indent=2, ensure_ascii=False))
            return
        table = matrix.markdown()
        if not write:
            self.stdout.write(table, ending="")
            return
        path = Path(write)
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        text = path.read_text(encoding="utf-8")
        if matrix.MATRIX_BEGIN not in text or matrix.MATRIX_END not in text:
            raise CommandError(f"{path} has no matrix markers; add these two lines where the table goes:\n"
                               f"{matrix.MATRIX_BEGIN}\n{matrix.MATRIX_END}")
        before, rest = text.split(matrix.MATRIX_BEGIN, 1)
        _, after = rest.split(matrix.MATRIX_END, 1)
        path.write_text(f"{before}{matrix.MATRIX_BEGIN}\n{table}{matrix.MATRIX_END}{after}", encoding="utf-8")
        self.stdout.write(f"Wrote the authorisation matrix ({len(table.splitlines()) - 2} rows) into {path}.")
