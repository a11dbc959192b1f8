"""O — ``rapport backup FILE``: a portable JSON dump of every Rapport app (either database vendor)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser


def rapport_app_labels() -> list[str]:
    """Labels of Rapport's own apps: what a backup holds (framework tables are rebuilt by migrate)."""
    return [config.label for config in apps.get_app_configs() if config.name.startswith("rapport.")]


class Command(BaseCommand):
    help = "Write all Rapport data to FILE as portable JSON (restore with `rapport restore FILE`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        if not file.endswith(".json"):
            raise CommandError("The backup file name must end in .json.")
        try:
            call_command("dumpdata", *rapport_app_labels(), natural_foreign=True, natural_primary=False,
                         indent=None, output=file, verbosity=0)
        except OSError as err:
            raise CommandError(f"Cannot write {file}: {err}") from err
        self.stdout.write(f"Backup written to {file}")
