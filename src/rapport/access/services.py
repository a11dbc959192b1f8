"""S7 — issuing, checking and revoking API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from rapport.access.models import ApiToken, User
from rapport.core.errors import DomainError

ALL_SCOPES = [s.value for s in ApiToken.Scope]


def _hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def token_create(*, user: User, name: str = "", scopes: list[str] | None = None,
                 expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token and return it with the plain key, which is shown once and never stored."""
    scopes = list(scopes) if scopes is not None else ["read", "write"]
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise DomainError(f"Unknown scope(s): {', '.join(unknown)}.",
                          field_errors={"scopes": [f"Choose from {', '.join(ALL_SCOPES)}."]})
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, key_hash=_hash_key(secret),
        scopes=scopes, expires_at=expires_at,
    )
    return token, f"rpt_{prefix}_{secret}"


def token_authenticate(raw_key: str) -> ApiToken | None:
    """The active token for ``raw_key``, or None. Comparison is constant-time."""
    try:
        marker, prefix, secret = raw_key.split("_", 2)
    except ValueError:
        return None
    if marker != "rpt":
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.key_hash, _hash_key(secret)):
        return None
    if not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        # Coarse on purpose: one write a minute per token, not one per request.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_revoke(*, token: ApiToken) -> None:
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
