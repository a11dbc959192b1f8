"""DRF authentication by ``Authorization: Token <key>`` (S7), with the network check (S4).

DRF authenticates inside the view, after the middleware ran, so token calls get the same
allowed-network check here that session requests get in ``AccessPolicyMiddleware``.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from rapport.access.models import ApiToken, User
from rapport.access.network import user_may_connect
from rapport.access.policy import shared_access_context
from rapport.access.services import token_authenticate


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

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
        token = token_authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        shared_access_context(token.user)  # reused between requests for a few seconds (policy.py)
        if not user_may_connect(token.user, request):
            raise exceptions.PermissionDenied("This account may not be used from this network address.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
