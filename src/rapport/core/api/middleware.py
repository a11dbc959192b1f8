"""A1/S7 — API calls that sign in by token skip the middleware only a browser needs.

An ``/api/v1/`` request whose ``Authorization`` header names a token (``Token`` or ``Bearer``,
the keywords ``access.authentication.TokenAuthentication`` takes) is signed in by that header
alone: the token authentication class comes first and either accepts the token or answers
401, so a session cookie sent along never gives it any authority. Such a request does not
load a session, look up the session's user, wrap it for the second factor or set up message
storage; its JSON answer gets a fixed, strict ``Content-Security-Policy`` instead of the site
policy built per response. Everything else still runs for it: the security headers
(``SecurityMiddleware``, ``X-Frame-Options``, ``Permissions-Policy``), CSRF (which only
matters for cookie-authenticated requests, and still checks any view that is not exempt), the
access policy, request ids, the lock-out middleware. Decision 0017 gives the reasoning.

The classes below are the Django and django-otp middleware of the same names, stepping aside
for such requests; ``settings.MIDDLEWARE`` lists them in their usual places.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from csp.middleware import CSPMiddleware as _CSPMiddleware
from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django_otp.middleware import OTPMiddleware as _OTPMiddleware

API_PREFIX = "/api/v1/"
TOKEN_KEYWORDS = frozenset({"token", "bearer"})
# For a JSON answer: nothing may load from it, frame it, or be submitted from it.
JSON_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
JSON_TYPES = ("application/json", "application/problem+json")
MARK = "rapport_token_api"


def signs_in_by_token(request: HttpRequest) -> bool:
    """An API call whose ``Authorization`` header names a token (valid or not: a bad one is a 401)."""
    if not request.path_info.startswith(API_PREFIX):
        return False
    keyword = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")[0]
    return keyword.lower() in TOKEN_KEYWORDS


class TokenSignInMiddleware:
    """Marks token-signed API calls (before the browser-only middleware runs), with an anonymous
    ``request.user`` until DRF's token authentication sets the token's user."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if signs_in_by_token(request):
            setattr(request, MARK, True)
            request.user = AnonymousUser()
        return self.get_response(request)


def _by_token(request: HttpRequest) -> bool:
    return getattr(request, MARK, False)


class _BrowserOnly:
    """A middleware that a token-signed API call passes straight through."""

    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request) if _by_token(request) else super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_BrowserOnly, _SessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, _AuthenticationMiddleware):
    pass


class OTPMiddleware(_BrowserOnly, _OTPMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, _MessageMiddleware):
    pass


class CSPMiddleware(_CSPMiddleware):
    """django-csp's middleware; a token call's JSON answer gets ``JSON_POLICY`` (an HTML answer,
    the browsable API, still gets the site policy)."""

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        if _by_token(request) and response.get("Content-Type", "").startswith(JSON_TYPES):
            response.headers.setdefault("Content-Security-Policy", JSON_POLICY)
            return response
        return super().process_response(request, response)
