"""S1 — what a role may do: ``has_permission(user, object_type, action)``.

Roles are permission sets over the catalogue below. Apps that add object types (deals, cases,
rights requests…) call ``register_object_type`` in their ``AppConfig.ready()``; the role
editor and the authorisation matrix pick them up from there.

Adapters ask through ``permission_required`` (views) or ``RolePermission`` (DRF, see
``rapport.access.api.permissions``); neither writes a rule of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

# Different words callers use for the same action.
ACTION_ALIASES = {
    "view": "read", "list": "read", "search": "read", "retrieve": "read",
    "change": "update", "edit": "update", "write": "update", "partial_update": "update",
    "destroy": "delete", "add": "create",
}


@dataclass(frozen=True)
class ObjectType:
    label: str          # "people.person"
    name: str           # "People"
    actions: tuple[str, ...]


OBJECT_TYPES: dict[str, ObjectType] = {}


def register_object_type(label: str, name: str, actions: tuple[str, ...] | list[str]) -> None:
    """Add an object type to the catalogue roles are built from (idempotent)."""
    OBJECT_TYPES.setdefault(label.lower(), ObjectType(label.lower(), name, tuple(actions)))


register_object_type("people.person", "People",
                     ("create", "read", "update", "delete", "export", "merge", "erase"))
register_object_type("people.organisation", "Organisations",
                     ("create", "read", "update", "delete", "export", "merge"))
register_object_type("access.attachment", "Attachments", ("create", "read", "read_restricted", "delete"))
register_object_type("access.auditentry", "Audit trail", ("read",))
register_object_type("access.settings", "Security settings", ("manage",))


def canonical_action(action: str) -> str:
    action = action.lower()
    return ACTION_ALIASES.get(action, action)


def has_permission(user: Any, object_type: str, action: str) -> bool:
    """May ``user``'s role perform ``action`` on records of ``object_type`` at all?

    Whether they may on a given record is the sharing model's question (``visible_to``).
    """
    from rapport.access.policy import access_context

    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    ctx = access_context(user)
    if ctx.is_administrator:
        return True
    return canonical_action(action) in ctx.permissions.get(object_type.lower(), frozenset())


def permission_required(object_type: str, action: str) -> Callable:
    """View decorator: sign-in required, then the role permission; 403 otherwise.

    The pair is kept on the view (``rapport_permission``) so the authorisation matrix test
    knows what to expect of every route without a second list.
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_permission(request.user, object_type, action):
                raise PermissionDenied(f"Your role may not {action} {object_type}.")
            return view(request, *args, **kwargs)

        wrapped.rapport_permission = (object_type.lower(), canonical_action(action))  # type: ignore[attr-defined]
        return wrapped

    return decorator
