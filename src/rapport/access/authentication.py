"""DRF authentication by ``Authorization: Token <key>`` (S7)."""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from rapport.access.models import ApiToken, User
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
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
