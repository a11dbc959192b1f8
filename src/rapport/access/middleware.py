"""S4 — checks on every request after sign-in: allowed networks, the MFA step, idle sessions.

Token-authenticated API calls are checked by ``rapport.access.authentication`` (DRF
authenticates inside the view, after middleware); session calls to the API are checked here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from rapport.access.mfa import mfa_state
from rapport.access.network import user_may_connect

# Reachable while the MFA step is pending (signing in, enrolling, signing out, assets).
MFA_EXEMPT_PREFIXES = ("/mfa/", "/login/", "/logout/", "/static/", "/healthz")
DOCS_PREFIXES = ("/api/docs/", "/api/redoc/")
DOCS_POLICY = {
    "script-src": ["'self'", "'unsafe-inline'", "https://cdn.jsdelivr.net"],
    "style-src": ["'self'", "'unsafe-inline'", "https://cdn.jsdelivr.net", "https://fonts.googleapis.com"],
    "img-src": ["'self'", "data:", "https://cdn.jsdelivr.net"],
    "font-src": ["'self'", "https://fonts.gstatic.com"],
    "worker-src": ["'self'", "blob:"],
}
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
IDLE_KEY = "rapport_last_seen"


class AccessPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._check(request)
        response = refused if refused is not None else self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if request.path.startswith(DOCS_PREFIXES):
            response._csp_update = DOCS_POLICY  # type: ignore[attr-defined]
        return response

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated:
            return None
        if not user_may_connect(user, request):
            logout(request)
            return _refuse(request, 403, "Not from this network",
                           "Your account may not be used from this network address.")
        if _idle_expired(request):
            logout(request)
            if _is_api(request):
                return _refuse(request, 401, "Session expired", "Sign in again.")
            return redirect(f"{reverse('login')}?next={request.get_full_path()}")
        if request.path.startswith(MFA_EXEMPT_PREFIXES):
            return None
        state = mfa_state(user, getattr(request, "session", None))
        if state == "enrol":
            if _is_api(request):
                return _refuse(request, 403, "Second factor required", "Set up two-step sign-in in the web app.")
            return redirect(f"{reverse('access:mfa-setup')}?next={request.get_full_path()}")
        if state == "verify":
            if _is_api(request):
                return _refuse(request, 403, "Second factor required", "Complete two-step sign-in.")
            return redirect(f"{reverse('access:mfa-verify')}?next={request.get_full_path()}")
        return None


def mark_active(request: HttpRequest) -> None:
    """Start the idle clock at sign-in (so the first page view does not write the session)."""
    if hasattr(request, "session"):
        request.session[IDLE_KEY] = int(time.time())


def _idle_expired(request: HttpRequest) -> bool:
    limit = getattr(settings, "RAPPORT_SESSION_IDLE", 0)
    if not limit or not hasattr(request, "session"):
        return False
    now = int(time.time())
    last = request.session.get(IDLE_KEY)
    if last is not None and now - int(last) > limit:
        return True
    if last is None or now - int(last) > 60:
        request.session[IDLE_KEY] = now  # written at most once a minute
    return False


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _refuse(request: HttpRequest, status: int, title: str, detail: str) -> HttpResponse:
    if _is_api(request):
        response = JsonResponse({"type": "https://rapport.invalid/problems/access_policy", "title": title,
                                 "status": status, "detail": detail}, status=status,
                                content_type="application/problem+json")
        return response
    return render(request, "access/refused.html", {"title": title, "detail": detail}, status=status)
