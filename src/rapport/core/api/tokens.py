"""S7 / A1 — API token sign-in with the token's row read by one prepared statement.

``rapport.access.authentication.TokenAuthentication`` with the lookup compiled once per
connection: ``access.services.token_authenticate`` builds the same query (the token with its
user, the user's role and the shared access generation) through the ORM on every request,
and compiling it was about a fifth of a create's CPU and a third of a read's. The row is
still read on every request, so revocation, expiry and deactivation count at once, and the
checks are the same as there (``test_api_tokens`` runs both on the same cases).

Kept here rather than in ``access`` for now (the API owns its hot path); the natural home of
``token_lookup`` is ``access.services.token_authenticate`` itself.
"""

from __future__ import annotations

import hmac
import secrets

from django.db.models import Subquery
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from rapport.access.authentication import TokenAuthentication
from rapport.access.models import AccessGeneration, ApiToken, User
from rapport.access.network import user_may_connect
from rapport.access.policy import note_generation, shared_access_context
from rapport.access.services import _hash_key
from rapport.core.api.prepared import PreparedQuery

TOKENS = PreparedQuery(
    lambda prefixes: (ApiToken.objects.select_related("user", "user__role").filter(prefix__in=prefixes)
                      .annotate(access_generation=Subquery(
                          AccessGeneration.objects.filter(pk=1).values("value")[:1]))
                      .order_by()),
    prep_field=ApiToken._meta.get_field("prefix"), sample=lambda: secrets.token_hex(4))

LAST_USED_EVERY = 60  # seconds; one write a minute per token, not one per request


def token_lookup(raw_key: str) -> ApiToken | None:
    """The active token for ``raw_key`` (with ``user`` and ``user.role`` loaded), or None;
    ``access.services.token_authenticate`` with a prepared read. Comparison is constant-time."""
    try:
        marker, prefix, secret = raw_key.split("_", 2)
    except ValueError:
        return None
    if marker != "rpt":
        return None
    found = TOKENS.objects([prefix])
    token = found[0] if found else None
    if token is None or not hmac.compare_digest(token.key_hash, _hash_key(secret)):
        return None
    note_generation(token.user, token.access_generation)  # saves a query per request (policy.py)
    if not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


class PreparedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>`` (or ``Bearer``), as ``access``'s class, with ``token_lookup``."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in (b"token", b"bearer"):
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        try:
            raw = header[1].decode()
        except UnicodeError as err:
            raise exceptions.AuthenticationFailed("Invalid token header.") from err
        token = token_lookup(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        shared_access_context(token.user)  # reused between requests for a few seconds (policy.py)
        if not user_may_connect(token.user, request):
            raise exceptions.PermissionDenied("This account may not be used from this network address.")
        return token.user, token
