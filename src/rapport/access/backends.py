"""S4 — sign-in: lock-out after repeated failures, then password and allowed networks.

``LockoutBackend`` is django-axes' check; calls without a request (internal code, the test
client's ``login()``) carry no address to count, so they pass through to the password check.
``StaffBackend`` is Django's password check followed by the IP ranges of the user's role and
of the user: a sign-in from elsewhere is refused (and audited) even with the right password.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied


class LockoutBackend(AxesStandaloneBackend):
    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class StaffBackend(ModelBackend):
    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None or request is None:
            return user
        from rapport.access.audit import record_event
        from rapport.access.network import client_ip, user_may_connect

        if not user_may_connect(user, request):
            record_event(actor=user, action="sign_in_refused", object_type="access.user", object_id=user.pk,
                         request=request, detail={"why": "network", "address": client_ip(request)})
            request.rapport_refused = "network"
            raise PermissionDenied("Signing in from this network is not allowed.")
        return user

    def get_user(self, user_id: Any) -> Any:
        # The role comes along: every request asks it (access context, MFA, networks).
        from rapport.access.models import User

        user = User._default_manager.select_related("role").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
