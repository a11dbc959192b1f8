"""``rapport export people|organisations --format csv|xlsx|vcf|json [--output FILE] [filters]`` (A3).

The same filters as the list views; what the user's role may not see is left out, and every
person exported is recorded in the access audit (channel ``export``). Output streams to the
file (or stdout) page by page, so memory stays flat however many people are exported.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from rapport.core.errors import DomainError
from rapport.imports import exports


class Command(BaseCommand):
    help = "Export people or organisations to CSV, Excel, vCard 4.0 or JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=("people", "organisations"))
        parser.add_argument("--format", default="csv", choices=("csv", "xlsx", "vcf", "json"))
        parser.add_argument("--output", "-o", default="", help="File to write (default: stdout; required for xlsx)")
        parser.add_argument("--user", default=os.environ.get("RAPPORT_CLI_USER", ""),
                            help="Username whose visibility applies (default: $RAPPORT_CLI_USER, or the only "
                                 "administrator)")
        for name in ("name", "email", "phone", "organisation", "tag", "country", "domain", "parent"):
            parser.add_argument(f"--{name}", default="", help=f"Filter by {name} (as in the list view)")
        parser.add_argument("--updated-since", default="", help="Only records changed since (YYYY-MM-DD)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = self._actor(options["user"])
        if options["format"] == "xlsx" and not options["output"]:
            raise CommandError("Excel output needs --output FILE.")
        allowed = exports.PERSON_FILTERS if options["what"] == "people" else exports.ORGANISATION_FILTERS
        filters: dict[str, Any] = {}
        for name in allowed:
            value = options.get(name, "")
            if name == "updated_since" and value:
                try:
                    value = timezone.make_aware(dt.datetime.combine(dt.date.fromisoformat(value), dt.time.min))
                except ValueError as err:
                    raise CommandError("--updated-since needs a date such as 2024-03-31.") from err
            if value:
                filters[name] = value
        ignored = [n for n in ("name", "email", "phone", "organisation", "tag", "country", "domain", "parent")
                   if options.get(n) and n not in allowed]
        if ignored:
            raise CommandError(f"{options['what']} cannot be filtered by {', '.join(ignored)}.")
        try:
            export = (exports.export_people if options["what"] == "people" else exports.export_organisations)(
                user=user, fmt=options["format"], filters=filters, channel="export")
            out = open(options["output"], "wb") if options["output"] else sys.stdout.buffer  # noqa: SIM115
            try:
                for chunk in export.chunks:
                    out.write(chunk)
            finally:
                if options["output"]:
                    out.close()
                else:
                    out.flush()
        except DomainError as err:
            raise CommandError(str(err)) from err
        if options["output"]:
            self.stderr.write(f"wrote {options['output']}")

    def _actor(self, username: str) -> Any:
        users = get_user_model().objects.filter(is_active=True)
        if username:
            user = users.filter(username=username).first()
            if user is None:
                raise CommandError(f"No active user {username!r}.")
            return user
        admins = list(users.filter(is_superuser=True)[:2])
        if len(admins) != 1:
            raise CommandError("Say whose export this is: --user USERNAME (or $RAPPORT_CLI_USER).")
        return admins[0]
