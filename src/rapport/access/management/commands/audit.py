"""``rapport audit verify``: walk the hash chain of the access audit; name the first broken entry.

Exit status 0 when intact, 1 (CommandError) when an entry was edited or deleted.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rapport.access.audit import verify_chain


class Command(BaseCommand):
    help = "Check the access audit trail (S5)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="Verify the hash chain; report the first edited or deleted entry.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        report = verify_chain()
        if not report.ok:
            raise CommandError(f"{report.problem} {report.checked} entries before it are intact.")
        self.stdout.write(f"Audit chain intact: {report.checked} entries verified.")
