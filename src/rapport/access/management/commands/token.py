"""``rapport token create USERNAME [--scopes read,write] [--days N]`` and ``token revoke PREFIX``."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rapport.access.models import ApiToken, User
from rapport.access.services import token_create, token_revoke
from rapport.core.errors import DomainError


class Command(BaseCommand):
    help = "Create or revoke API tokens."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token and print it (shown once).")
        create.add_argument("username")
        create.add_argument("--name", default="cli")
        create.add_argument("--scopes", default="read,write")
        create.add_argument("--days", type=int, default=None, help="Expire after N days.")
        revoke = sub.add_parser("revoke", help="Revoke a token by its prefix.")
        revoke.add_argument("prefix")

    def handle(self, *args, action: str, **options) -> None:  # type: ignore[no-untyped-def]
        if action == "create":
            try:
                user = User.objects.get(username=options["username"])
            except User.DoesNotExist as err:
                raise CommandError(f"No user named {options['username']!r}.") from err
            expires = timezone.now() + timedelta(days=options["days"]) if options["days"] else None
            scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
            try:
                _, key = token_create(user=user, name=options["name"], scopes=scopes, expires_at=expires)
            except DomainError as err:
                raise CommandError(str(err)) from err
            self.stdout.write(key)
        else:
            token = ApiToken.objects.filter(prefix=options["prefix"]).first()
            if token is None:
                raise CommandError(f"No token with prefix {options['prefix']!r}.")
            token_revoke(token=token)
            self.stdout.write(f"Revoked {token.prefix}.")
