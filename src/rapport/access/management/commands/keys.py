"""``rapport keys rotate | status | generate``: encryption keys of sensitive fields (S6).

``rotate`` adds a new key, makes it active and re-encrypts and re-indexes every row (and
attachment file) in committed batches. Interrupted, run it again: it finishes the rows still
under an older key instead of adding another key. With keys in ``RAPPORT_ENCRYPTION_KEYS``,
put a new key there and make it active first; ``rotate`` then only re-encrypts.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rapport.access.encryption import (
    DecryptionError,
    keyring,
    new_key_id,
    pending_rotation_rows,
    rotate_keys,
)


class Command(BaseCommand):
    help = "Manage the encryption keys of sensitive fields."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        rotate = sub.add_parser("rotate", help="New active key, then re-encrypt and re-index every row (resumable).")
        rotate.add_argument("--batch-size", type=int, default=500)
        rotate.add_argument("--no-new-key", action="store_true",
                            help="Only re-encrypt rows under older keys (keys managed in the environment).")
        sub.add_parser("status", help="Show the keys and how many rows are not yet under the active key.")
        sub.add_parser("generate", help="Print a new key for RAPPORT_ENCRYPTION_KEYS.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "generate":
            self.stdout.write(f'"{new_key_id()}": "{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")}"')
            return
        ring = keyring()
        if action == "status":
            self.stdout.write(f"Active key: {ring.active}; known keys: {', '.join(sorted(ring.keys))}")
            for label, count in pending_rotation_rows().items():
                self.stdout.write(f"  {label}: {count} row(s) under an older key")
            return
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        new_key = not options["no_new_key"]
        if new_key and ring.source is None:
            raise CommandError("Keys come from RAPPORT_ENCRYPTION_KEYS: add a key there, make it active, "
                               "then run `rapport keys rotate --no-new-key`.")

        def progress(label: str, done: int) -> None:
            self.stderr.write(f"  {label}: {done} rows re-encrypted")

        try:
            report = rotate_keys(batch_size=options["batch_size"], new_key=new_key, progress=progress)
        except DecryptionError as err:
            raise CommandError(f"A value could not be decrypted with the known keys: {err}") from err
        if report.resumed:
            self.stdout.write("Resumed an unfinished rotation.")
        if report.new_key:
            self.stdout.write(f"New active key: {report.new_key}")
        for label, count in report.rows.items():
            self.stdout.write(f"{label}: {count} re-encrypted")
        self.stdout.write(f"Done: every row is under key {keyring().active}.")
