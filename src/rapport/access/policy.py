"""S1–S4 — who a user is for access decisions, worked out once per request.

``access_context(user)`` gathers the user's role (or the default role), everyone they answer
for through the management hierarchy, those people's teams and roles, the sharing defaults
and rules aimed at them, and their role's field rules. It is cached on the user object (a
request has its own), so a list of a thousand records costs the same as a list of one.

Across requests, each process keeps the organisation's sharing configuration (``SharingConfig``:
sharing defaults, active sharing rules, team memberships, the management hierarchy, the
default roles, field rules) and the contexts derived from it, behind the shared
``AccessGeneration`` row. A request reads that one row (a token request reads it with the
token) and uses the cache only while it is unchanged. The row changes on every change that
could change a decision, in any process and by any path: ``access_changed()`` (called by the
services) gives it a new value, and database triggers (migration ``access/0006``) do the same
on every write to the tables the configuration comes from (roles, memberships, users' manager,
role and active flag, sharing defaults and rules, field rules), raw SQL and bulk writes
included. Values are random, not counted up, so a rolled-back change can never be mistaken
for a later committed one. ``RAPPORT_ACCESS_CONTEXT_TTL`` (seconds, default 5) bounds how long
a process keeps one configuration even so; 0 switches the cache off.

Manual shares are cached with the contexts too (on PostgreSQL the visibility condition lists
the user's shared ids instead of a subquery, ``sharing.AnyOf``), behind the row's second
value: ``value`` changes on every change, shares included (a trigger on ``access_recordshare``,
migration ``access/0009``), ``config_value`` only on configuration changes. A share or
unshare thus drops the contexts' conditions (rebuilt with the next request), not the
configuration (decision 0010).

What of the user's own row and role row a context depends on (role, superuser, permissions,
MFA, break-glass, networks) is compared on every request (``_fingerprint``): those rows are
read fresh with the session's user or the token.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from django.db.models.signals import post_delete, post_save

MAX_HIERARCHY_DEPTH = 12
SHARED_MAX_USERS = 10_000
_generation = 0  # this process's count of access_changed() calls
_config: SharingConfig | None = None


def access_changed() -> None:
    """Invalidate cached access decisions here and, through the shared row, in every process.

    Services call it after a change, inside their transaction: other processes see the new
    value with the next request, once the change is committed.
    """
    from rapport.access.models import AccessGeneration

    global _generation, _config
    _generation += 1
    _config = None
    value, config_value = new_generation_value(), new_generation_value()
    if not AccessGeneration.objects.filter(pk=1).update(value=value, config_value=config_value):
        AccessGeneration.objects.get_or_create(pk=1, defaults={"value": value, "config_value": config_value})


def shares_changed(**_signal: Any) -> None:
    """A share was written in this process: users' contexts re-check the shared row.

    The trigger gives the row a new ``value`` (in the writer's transaction), but a request
    keeps its context on the user object without reading the row again; this makes the
    request that shares (or a test holding the user) see its own share, as the subquery did.
    """
    global _generation
    _generation += 1


post_save.connect(shares_changed, sender="access.RecordShare", dispatch_uid="rapport.access.shares_changed")
post_delete.connect(shares_changed, sender="access.RecordShare", dispatch_uid="rapport.access.shares_deleted")


def new_generation_value() -> int:
    """A fresh value for the shared row (random, so a rolled-back one never comes back)."""
    return secrets.randbits(62)


def note_generation(user: Any, value: Any) -> None:
    """Remember the shared row's value read with ``user`` (a token lookup reads both at once)."""
    user._rapport_generation = (_generation, value)


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
    shares_generation: Any = None  # the row's ``value`` the conditions below were built under
    _defaults: dict[str, str] = field(default_factory=dict, repr=False)
    _rules: list[SharingRuleView] = field(default_factory=list, repr=False)
    _field_rules: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _visibility: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def default_access(self, object_type: str, fallback: str) -> str:
        return self._defaults.get(object_type, fallback)

    def rules(self) -> list[SharingRuleView]:
        """Active sharing rules whose target is one of this user's principals' roles or teams."""
        return self._rules

    def field_levels(self, model_label: str) -> dict[str, str]:
        return self._field_rules.get(model_label.lower(), {})


@dataclass
class SharingConfig:
    """The organisation's sharing configuration as of one value of the shared generation row."""

    generation: Any         # the row's ``config_value`` it was loaded under
    shares_generation: Any  # the row's ``value`` last seen with it (changes with shares too)
    loaded_at: float
    defaults: dict[str, str]
    rules: list[tuple[Any, Any, SharingRuleView]]  # (target role, target team, rule)
    teams_of: dict[Any, frozenset[Any]]            # user -> teams
    reports_of: dict[Any, list[tuple[Any, Any]]]   # manager -> [(active report, their role)]
    default_role: Any
    administrator_role: Any
    field_rules: dict[Any, dict[str, dict[str, str]]]  # role -> model label -> field -> level
    contexts: dict[Any, tuple[tuple[Any, ...], AccessContext]] = field(default_factory=dict)


def access_context(user: Any) -> AccessContext:
    cached = getattr(user, "_rapport_access", None)
    if cached is not None and cached.generation == _generation:
        return cached
    config = _sharing_config(user)
    fingerprint = _fingerprint(user)
    entry = config.contexts.get(user.pk)
    if entry is not None and entry[0] == fingerprint:
        ctx = entry[1]
    else:
        ctx = _build(user, config)
        if len(config.contexts) >= SHARED_MAX_USERS:
            config.contexts.clear()
        config.contexts[user.pk] = (fingerprint, ctx)
    if ctx.shares_generation != config.shares_generation:
        ctx._visibility.clear()  # conditions list shared ids: rebuild them (sharing.visibility_q)
        ctx.shares_generation = config.shares_generation
    user._rapport_access = ctx
    return ctx


def shared_access_context(user: Any) -> AccessContext:
    """``access_context(user)`` for a token request (kept for the authentication backend).

    Every request reuses the process's cache the same way now; see the module docstring.
    """
    return access_context(user)


def forget(user: Any) -> None:
    """Drop ``user``'s cached context (after changing their role or teams in a test)."""
    for name in ("_rapport_access", "_rapport_generation"):
        if hasattr(user, name):
            delattr(user, name)
    if _config is not None:
        _config.contexts.pop(getattr(user, "pk", None), None)


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


def current_generation(user: Any = None) -> Any:
    """The shared generation row's ``value``: as read with ``user``'s token, else one small query."""
    seen = getattr(user, "_rapport_generation", None)
    if seen is not None and seen[0] == _generation:
        return seen[1]
    return _read_generations()[0]


def _read_generations() -> tuple[Any, Any]:
    """The shared row's ``(value, config_value)`` in one small query (None, None without a row)."""
    from django.db import connection

    from rapport.access.models import AccessGeneration

    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('value')}, {quote('config_value')} "  # noqa: S608 - model metadata only
                       f"FROM {quote(AccessGeneration._meta.db_table)} WHERE {quote('id')} = 1")
        row = cursor.fetchone()
    return (None, None) if row is None else (row[0], row[1])


def _sharing_config(user: Any) -> SharingConfig:
    """This process's configuration if the shared row still matches it, else a fresh one."""
    from django.conf import settings

    global _config
    ttl = float(getattr(settings, "RAPPORT_ACCESS_CONTEXT_TTL", 5.0))
    config, now = _config, time.monotonic()
    usable = config is not None and ttl > 0 and config.generation is not None and now - config.loaded_at < ttl
    seen = getattr(user, "_rapport_generation", None)  # read with the token: nothing changed if it matches
    if usable and seen is not None and seen[0] == _generation and seen[1] == config.shares_generation:
        return config  # type: ignore[return-value]
    value, config_value = _read_generations()  # before loading: a change after it makes the row differ
    if usable and config.generation == config_value:  # type: ignore[union-attr]
        config.shares_generation = value  # type: ignore[union-attr]  # a share changed: contexts drop conditions
        return config  # type: ignore[return-value]
    config = _load_config(config_value, value, now)
    _config = config if ttl > 0 else None
    return config


def _load_config(generation: Any, shares_generation: Any, now: float) -> SharingConfig:
    """Six small queries, once per change per process (the tables are an organisation's settings)."""
    from rapport.access.models import FieldRule, SharingDefault, SharingRule, TeamMembership, User

    teams_of: dict[Any, set[Any]] = {}
    members_of: dict[Any, set[Any]] = {}
    for user_id, team_id in TeamMembership.objects.order_by().values_list("user_id", "team_id"):
        teams_of.setdefault(user_id, set()).add(team_id)
        members_of.setdefault(team_id, set()).add(user_id)
    reports_of: dict[Any, list[tuple[Any, Any]]] = {}
    for manager_id, pk, role_id in (User.objects.filter(is_active=True, manager_id__isnull=False).order_by()
                                    .values_list("manager_id", "pk", "role_id")):
        reports_of.setdefault(manager_id, []).append((pk, role_id))
    rules = []
    for _pk, object_type, access, owner_team, criteria, role_id, team_id in sorted(
            SharingRule.objects.filter(active=True).order_by().values_list(
                "pk", "object_type", "access", "owner_team_id", "criteria", "target_role_id", "target_team_id"),
            key=lambda row: str(row[0])):
        owners = frozenset(members_of.get(owner_team, ())) if owner_team is not None else None
        rules.append((role_id, team_id, SharingRuleView(object_type, access, owners, _json(criteria))))
    field_rules: dict[Any, dict[str, dict[str, str]]] = {}
    for role_id, label, name, level in FieldRule.objects.order_by().values_list(
            "role_id", "model_label", "field", "level"):
        field_rules.setdefault(role_id, {}).setdefault(label.lower(), {})[name] = level
    return SharingConfig(
        generation=generation, shares_generation=shares_generation, loaded_at=now,
        defaults=dict(SharingDefault.objects.order_by().values_list("object_type", "access")),
        rules=rules, teams_of={k: frozenset(v) for k, v in teams_of.items()}, reports_of=reports_of,
        default_role=default_role(), administrator_role=default_role(administrator=True),
        field_rules=field_rules,
    )


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return dict(value or {})


def _fingerprint(user: Any) -> tuple[Any, ...]:
    """What of the user's and role's rows the context depends on (read fresh with each request)."""
    role = user.role if user.role_id else None
    role_part = () if role is None else (
        role.pk, role.name, role.is_administrator, role.is_default, role.requires_mfa, role.requires_reason,
        json.dumps(role.permissions or {}, sort_keys=True), tuple(role.allowed_networks or ()))
    return (user.role_id, user.is_superuser, user.is_active, tuple(user.allowed_networks or ()), role_part)


def _build(user: Any, config: SharingConfig) -> AccessContext:
    if user.role_id:
        role = user.role
    else:
        role = config.administrator_role if user.is_superuser else config.default_role
    default_id = config.default_role.pk if config.default_role is not None else None
    principals = {user.pk}
    role_ids = {role.pk} if role is not None else set()
    level = [user.pk]
    for _ in range(MAX_HIERARCHY_DEPTH):
        reports = [(pk, report_role) for manager in level for pk, report_role in config.reports_of.get(manager, ())
                   if pk not in principals]
        if not reports:
            break
        level = list(dict.fromkeys(pk for pk, _ in reports))
        principals.update(level)
        role_ids.update(r for r in ((report_role or default_id) for _, report_role in reports) if r is not None)
    team_ids = frozenset(t for p in principals for t in config.teams_of.get(p, ()))
    is_admin = bool(user.is_superuser or (role is not None and role.is_administrator))
    permissions = {label.lower(): frozenset(actions) for label, actions in
                   ((role.permissions or {}).items() if role is not None else ())}
    field_rules = {} if role is None or is_admin else config.field_rules.get(role.pk, {})
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
        team_ids=team_ids,
        role_ids=frozenset(role_ids),
        generation=_generation,
        shares_generation=config.shares_generation,
        _defaults=config.defaults,
        _rules=[rule for target_role, target_team, rule in config.rules
                if target_role in role_ids or target_team in team_ids],
        _field_rules=field_rules,
    )
