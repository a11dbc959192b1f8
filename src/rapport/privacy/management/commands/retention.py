"""``rapport retention [--dry-run] [--policy KEY]`` — apply the retention policies (C6).

With ``--dry-run`` nothing changes: it lists, per policy, how many records would go and why,
with a sample of the people concerned. Without it, expired records are erased or deleted
(the same as the daily scheduled job).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rapport.core.errors import DomainError


class Command(BaseCommand):
    help = "Apply the retention policies (or, with --dry-run, list what would go and why)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Change nothing; list what would go and why.")
        parser.add_argument("--policy", help="Only this policy (its key).")

    def handle(self, *args: Any, dry_run: bool, policy: str | None, **options: Any) -> None:
        from rapport.people.models import Person
        from rapport.privacy.retention import apply_retention

        try:
            run = apply_retention(dry_run=dry_run, policy_key=policy)
        except (ValueError, DomainError) as err:
            raise CommandError(str(err)) from err
        policies = run.summary["policies"]
        ids = [s["person_id"] for p in policies for s in p["sample"]]
        names = {str(pk): name for pk, name in (
            (p.pk, p.display_name) for p in Person.objects.filter(pk__in=ids))}
        verb = "would go" if dry_run else "done"
        for p in policies:
            count = p["count"] if dry_run else p["done"]
            self.stdout.write(f"{p['key']} ({p['rule']}, {p['months']} months, {p['action']}): {count} {verb}")
            self.stdout.write(f"  why: {p['why']}")
            if dry_run:
                for sample in p["sample"]:
                    label = names.get(sample["person_id"], "")
                    self.stdout.write(f"  - {sample['person_id']} {label} (last change {sample['last_change']})")
        if not policies:
            self.stdout.write("No enabled retention policy.")
        if dry_run:
            self.stdout.write("Dry run: nothing was changed.")
