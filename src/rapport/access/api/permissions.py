"""S1/S7 — DRF permissions: the token's scopes and the role's permission set.

``TokenScopePermission``: a token may read with ``read``, write with ``write``; views may ask
for more with ``required_scope = "export"`` or ``"admin"``. Session users are not limited by
scopes (they signed in with password, and MFA where required).

``RolePermission``: a view that declares ``object_type = "people.person"`` is checked
against the role: GET needs ``read``, POST ``create``, PUT/PATCH ``update``, DELETE
``delete``; a view may map its own actions with ``object_actions = {"export": "export"}``
(keyed by DRF ``action`` or HTTP method). Per-record visibility stays with ``visible_to``.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from rapport.access.models import ApiToken
from rapport.access.permissions import has_permission

METHOD_ACTIONS = {"GET": "read", "HEAD": "read", "OPTIONS": "read", "POST": "create",
                  "PUT": "update", "PATCH": "update", "DELETE": "delete"}


class TokenScopePermission(BasePermission):
    message = "This API token's scopes do not allow this request."

    def has_permission(self, request: Any, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        scopes = set(token.scopes or ())
        if "admin" in scopes:
            return True
        required = getattr(view, "required_scope", None)
        if required:
            if callable(required):
                required = required(request)
            if required not in scopes:
                return False
        return ("read" if request.method in SAFE_METHODS else "write") in scopes


class RolePermission(BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request: Any, view: Any) -> bool:
        object_type = getattr(view, "object_type", None)
        if not object_type:
            return True
        action = required_action(request, view)
        return action is None or has_permission(request.user, object_type, action)


def required_action(request: Any, view: Any) -> str | None:
    mapping = getattr(view, "object_actions", {}) or {}
    drf_action = getattr(view, "action", None)
    if drf_action and drf_action in mapping:
        return mapping[drf_action]
    if request.method in mapping:
        return mapping[request.method]
    return METHOD_ACTIONS.get(request.method)
