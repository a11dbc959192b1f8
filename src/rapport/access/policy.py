"""S1–S4 — who a user is for access decisions, worked out once per request.

``access_context(user)`` gathers the user's role (or the default role), everyone they answer
for through the management hierarchy, those people's teams and roles, and — lazily — the
sharing defaults, sharing rules and field rules. It is cached on the user object (a request
has its own), and dropped when ``access_changed()`` is called after any settings change, so
a list of a thousand records costs the same handful of queries as a list of one.

API token requests go further (``shared_access_context``): the context is kept per process
for ``RAPPORT_ACCESS_CONTEXT_TTL`` seconds (default 5) between requests, so a token call does
not rebuild it from four queries every time. It is used only while the user's row and role
row, read fresh with the token on every request, are unchanged (role, superuser, the role's
permissions, MFA, break-glass and networks; deactivation and revocation are checked on the
token itself) and while the shared ``AccessGeneration`` counter, read with the token, is
unchanged: every service that changes teams, reports, sharing or field rules bumps it
(``access_changed()``), so such a change made in any process is seen on the next request.
Only rows written without a service (raw SQL) wait for the TTL.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

MAX_HIERARCHY_DEPTH = 12
SHARED_MAX_USERS = 10_000
_generation = 0
# user id -> (expires at, fingerprint of the user and role rows, context); see shared_access_context
_shared: dict[Any, tuple[float, tuple[Any, ...], AccessContext]] = {}


def access_changed() -> None:
    """Invalidate cached access contexts here and, through the shared counter, in every process.

    Services call it after a change, inside their transaction: other processes see the new
    counter with the next token they read, once the change is committed.
    """
    from django.db.models import F

    from rapport.access.models import AccessGeneration

    global _generation
    _generation += 1
    _shared.clear()
    if not AccessGeneration.objects.filter(pk=1).update(value=F("value") + 1):
        AccessGeneration.objects.get_or_create(pk=1, defaults={"value": 1})


@dataclass
class SharingRuleView:
    object_type: str
    access: str
    owner_ids: frozenset[Any] | None  # members of the rule's owner team (None: any owner)
    criteria: dict[str, Any]


@dataclass
class AccessContext:
    user_id: Any
    role_id: Any
    role_name: str
    is_administrator: bool
    permissions: dict[str, frozenset[str]]
    requires_mfa: bool
    requires_reason: bool
    networks: list[str]
    user_networks: list[str]
    principal_ids: frozenset[Any]
    team_ids: frozenset[Any]
    role_ids: frozenset[Any]
    generation: int
    _defaults: dict[str, str] | None = field(default=None, repr=False)
    _rules: list[SharingRuleView] | None = field(default=None, repr=False)
    _field_rules: dict[str, dict[str, str]] | None = field(default=None, repr=False)
    _visibility: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def default_access(self, object_type: str, fallback: str) -> str:
        if self._defaults is None:
            self._load_sharing()
        return self._defaults.get(object_type, fallback)  # type: ignore[union-attr]

    def rules(self) -> list[SharingRuleView]:
        """Active sharing rules whose target is one of this user's principals' roles or teams."""
        if self._rules is None:
            self._load_sharing()
        return self._rules  # type: ignore[return-value]

    def _load_sharing(self) -> None:
        """The sharing defaults, the rules aimed at this user and their owner teams' members.

        One round trip (``UNION ALL`` of the defaults and the rules ``LEFT JOIN`` members):
        it runs once per request for every user whose default is not enough, and on a
        small page it is most of what visibility costs (bench/visibility.py).
        """
        from django.core.exceptions import EmptyResultSet
        from django.db import connection

        from rapport.access.models import SharingDefault, SharingRule

        rules_query = (SharingRule.objects.filter(active=True).filter(_target_q(self.role_ids, self.team_ids))
                       .order_by().values_list("object_type", "access", "pk", "owner_team_id", "criteria",
                                               "owner_team__memberships__user_id"))
        sql = (f"SELECT 0, object_type, access, NULL, NULL, NULL, NULL "  # noqa: S608 - model metadata only
               f"FROM {SharingDefault._meta.db_table}")
        params: tuple[Any, ...] = ()
        try:
            rules_sql, params = rules_query.query.sql_with_params()
            sql += f" UNION ALL SELECT 1, r.* FROM ({rules_sql}) AS r"  # noqa: S608 - Django-built SQL, parameters apart
        except EmptyResultSet:
            pass  # no roles or teams to aim a rule at
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        defaults: dict[str, str] = {}
        rules: dict[Any, tuple[str, str, Any, Any]] = {}
        members: dict[Any, set[Any]] = {}
        for kind, first, second, pk, owner_team, criteria, member in rows:
            if kind == 0:
                defaults[first] = second
                continue
            owner_team = _uuid(owner_team)
            rules.setdefault(pk, (first, second, owner_team, criteria))
            if owner_team is not None:
                members.setdefault(pk, set())
                if member is not None:
                    members[pk].add(_uuid(member))
        self._defaults = defaults
        self._rules = [
            SharingRuleView(object_type, access, frozenset(members[pk]) if owner_team is not None else None,
                            _json(criteria))
            for pk, (object_type, access, owner_team, criteria) in sorted(rules.items(), key=lambda i: str(i[0]))
        ]

    def field_levels(self, model_label: str) -> dict[str, str]:
        if self._field_rules is None:
            from rapport.access.models import FieldRule

            rules: dict[str, dict[str, str]] = {}
            if self.role_id is not None and not self.is_administrator:
                for label, name, level in FieldRule.objects.filter(role_id=self.role_id).values_list(
                        "model_label", "field", "level"):
                    rules.setdefault(label.lower(), {})[name] = level
            self._field_rules = rules
        return self._field_rules.get(model_label.lower(), {})


def _uuid(value: Any) -> Any:
    import uuid

    return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _json(value: Any) -> dict[str, Any]:
    import json

    if isinstance(value, str | bytes):
        value = json.loads(value)
    return dict(value or {})


def _target_q(role_ids: frozenset[Any], team_ids: frozenset[Any]) -> Any:
    from django.db.models import Q

    return Q(target_role_id__in=list(role_ids)) | Q(target_team_id__in=list(team_ids))


def access_context(user: Any) -> AccessContext:
    cached = getattr(user, "_rapport_access", None)
    if cached is not None and cached.generation == _generation:
        return cached
    ctx = _build(user)
    user._rapport_access = ctx
    return ctx


def shared_access_context(user: Any) -> AccessContext:
    """``access_context(user)``, reused across this process's requests for a few seconds.

    For token API calls, where rebuilding the context (role, reports, teams) was four of a
    small request's queries. See the module docstring for what invalidates it and when.
    """
    from django.conf import settings

    ttl = float(getattr(settings, "RAPPORT_ACCESS_CONTEXT_TTL", 5.0))
    if ttl <= 0:
        return access_context(user)
    fingerprint, now = _fingerprint(user), time.monotonic()
    entry = _shared.get(user.pk)
    if entry is not None and entry[0] > now and entry[1] == fingerprint and entry[2].generation == _generation:
        user._rapport_access = entry[2]
        return entry[2]
    ctx = access_context(user)
    if len(_shared) >= SHARED_MAX_USERS:
        _shared.clear()
    _shared[user.pk] = (now + ttl, fingerprint, ctx)
    return ctx


def _fingerprint(user: Any) -> tuple[Any, ...]:
    """What of the user's and role's rows the context depends on (both read with the token)."""
    role = user.role if user.role_id else None
    role_part = () if role is None else (
        role.pk, role.name, role.is_administrator, role.is_default, role.requires_mfa, role.requires_reason,
        json.dumps(role.permissions or {}, sort_keys=True), tuple(role.allowed_networks or ()))
    return (user.role_id, user.is_superuser, user.is_active, tuple(user.allowed_networks or ()), role_part,
            getattr(user, "access_generation", None))


def forget(user: Any) -> None:
    """Drop ``user``'s cached context (after changing their role or teams in a test)."""
    if hasattr(user, "_rapport_access"):
        del user._rapport_access
    _shared.pop(getattr(user, "pk", None), None)


def default_role(*, administrator: bool = False) -> Any:
    """The role of users given none (superusers: the administrator role)."""
    from django.apps import apps

    from rapport.access.models import Role
    from rapport.access.seeds import seed_access

    wanted = {"is_administrator": True} if administrator else {"is_default": True}
    role = Role.objects.filter(**wanted).order_by("name").first()
    if role is None and not Role.objects.exists():
        seed_access(apps)  # the seed rows were wiped (a flushed test database); put them back
        role = Role.objects.filter(**wanted).order_by("name").first()
    return role


def _build(user: Any) -> AccessContext:
    from rapport.access.models import TeamMembership, User

    role = user.role if user.role_id else default_role(administrator=user.is_superuser)
    default_id = None
    principals = {user.pk}
    role_ids = {role.pk} if role is not None else set()
    level = [user.pk]
    for _ in range(MAX_HIERARCHY_DEPTH):
        reports = list(User.objects.filter(manager_id__in=level, is_active=True)
                       .exclude(pk__in=principals).order_by().values_list("pk", "role_id"))
        if not reports:
            break
        level = [pk for pk, _ in reports]
        principals.update(level)
        for _pk, report_role in reports:
            if report_role is None and default_id is None:
                fallback = default_role()
                default_id = fallback.pk if fallback is not None else None
            if (report_role or default_id) is not None:
                role_ids.add(report_role or default_id)
    team_ids = set(TeamMembership.objects.filter(user_id__in=principals).order_by()
                   .values_list("team_id", flat=True))
    is_admin = bool(user.is_superuser or (role is not None and role.is_administrator))
    permissions = {label.lower(): frozenset(actions) for label, actions in
                   ((role.permissions or {}).items() if role is not None else ())}
    return AccessContext(
        user_id=user.pk,
        role_id=role.pk if role is not None else None,
        role_name=role.name if role is not None else "",
        is_administrator=is_admin,
        permissions=permissions,
        requires_mfa=bool(role is not None and role.requires_mfa),
        requires_reason=bool(role is not None and role.requires_reason and not is_admin),
        networks=list(role.allowed_networks or []) if role is not None else [],
        user_networks=list(user.allowed_networks or []),
        principal_ids=frozenset(principals),
        team_ids=frozenset(team_ids),
        role_ids=frozenset(role_ids),
        generation=_generation,
    )
