"""O — ``rapport restore FILE``: load a ``rapport backup`` into an empty, migrated database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from rapport.access.models import User
from rapport.people.models import Person


class Command(BaseCommand):
    help = "Restore a backup made by `rapport backup` into an empty database (run `rapport migrate` first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--force", action="store_true", help="Restore even if the database has data.")

    def handle(self, *args: Any, file: str, force: bool, **options: Any) -> None:
        if not Path(file).is_file():
            raise CommandError(f"No backup file at {file}.")
        if not force and (Person.objects.exists() or User.objects.exists()):
            raise CommandError("The database is not empty; restore into a fresh database or pass --force.")
        with transaction.atomic():
            call_command("loaddata", file, verbosity=0)
        self.stdout.write(f"Restored {file}")
