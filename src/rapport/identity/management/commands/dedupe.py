"""``rapport dedupe [--threshold P] [--auto-merge-above P] [--dry-run] [--workers N]`` — I3 over the whole database."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from rapport.identity.dedupe import DEFAULT_THRESHOLD, auto_merge_setting, run_dedupe
from rapport.identity.filemode import stderr_progress


def _probability(text: str) -> float:
    try:
        return float(text)
    except ValueError as err:
        raise CommandError(f"Not a probability: {text!r} (give a number such as 0.9).") from err


class Command(BaseCommand):
    help = "Find duplicate people in the whole database and put them in the review queue."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--threshold", default=str(DEFAULT_THRESHOLD),
                            help=f"Suggest pairs at or above this match probability (default {DEFAULT_THRESHOLD}).")
        parser.add_argument("--auto-merge-above", default=None,
                            help="Merge pairs at or above this probability without review "
                                 "(default: RAPPORT_AUTO_MERGE_ABOVE; unset means never).")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be suggested; write nothing.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON on stdout.")
        parser.add_argument("--workers", type=int, default=None, metavar="N",
                            help="Threads comparing people (default: the number of cores).")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        threshold = _probability(options["threshold"])
        above = options["auto_merge_above"]
        auto = _probability(above) if above is not None else auto_merge_setting()
        report, stop = stderr_progress()
        try:
            result = run_dedupe(threshold=threshold, auto_merge_above=auto, dry_run=options["dry_run"],
                                channel="cli", progress=report, workers=options["workers"])
        except ValidationError as err:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in err.message_dict.items())) from err
        finally:
            stop()
        if options["json"]:
            self.stdout.write(json.dumps({k: v for k, v in vars(result).items()}, default=str))
            return
        verb = "would be suggested" if result.dry_run else "suggested"
        self.stdout.write(
            f"{result.people} people, {result.pairs_compared} pairs compared, {result.pairs_above} at or above "
            f"{threshold}: {len(result.pairs)} {verb} ({result.suggested_new} new, {result.suggested_updated} "
            f"updated, {result.withdrawn} withdrawn), {result.remembered_different} remembered as different people, "
            f"{result.auto_merged} auto-merged; model {result.model}; {result.seconds} s.")
