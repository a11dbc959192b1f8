"""O — ``rapport demo``: load deterministic demo data (see ``rapport.people.demo``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rapport.people.models import Person


class Command(BaseCommand):
    help = "Load deterministic demo data: people, organisations, jobs, timeline and demo users."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when people already exist.")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--people", type=int, default=1000)
        parser.add_argument("--organisations", type=int, default=200)

    def handle(self, *args: Any, if_empty: bool, seed: int, people: int, organisations: int,
               **options: Any) -> None:
        from rapport.people.demo import generate

        if people < 1 or organisations < 0:
            raise CommandError("--people must be at least 1 and --organisations at least 0.")
        if if_empty and Person.objects.exists():
            self.stdout.write("Demo data not loaded: people already exist.")
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), disable=not self.stdout.isatty()) as bar:
            tasks: dict[str, Any] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done)

            result = generate(seed=seed, people=people, organisations=organisations, progress=report)
        self.stdout.write(
            f"Created {result.people} people, {result.organisations} organisations, "
            f"{result.employments} jobs and {result.interactions} interactions.")
        self.stdout.write(f"Users: {', '.join(f'{u} ({r})' for u, r in result.users.items())}; "
                          f"credentials in {result.credentials_file}")
        self.stdout.write(f"Sign in at http://127.0.0.1:8000/ as admin / {result.password}")
