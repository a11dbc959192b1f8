"""S2 — record visibility. ``restrict`` is the one place that decides who sees which record.

Every list, search, API, export, report and job acting for a user starts from
``Model.objects.visible_to(user, action)``, which lands here. The decision, in order:

1. inactive or anonymous users see nothing; Administrators (and superusers) see everything;
2. the role must allow the action on the object type at all (``has_permission``);
3. if the organisation-wide default for the type grants the needed access, every record;
4. otherwise the records owned by the user or anyone below them in the management
   hierarchy, shared by a sharing rule targeting one of their roles or teams (records owned
   by a team and/or matching criteria), or shared manually with them, their team or role.

Sharing only widens access from the default. The filter is one set-based ``WHERE`` (owner
ids, an ``IN (subquery)`` over manual shares, criteria) — no per-record Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, Q, QuerySet

from rapport.access.permissions import canonical_action
from rapport.access.policy import AccessContext, access_context

READ, READ_WRITE, PRIVATE = "read", "read_write", "private"
READ_ACTIONS = frozenset({"read", "export"})


@dataclass(frozen=True)
class RecordType:
    label: str                       # "people.person" — the object type of roles and shares
    model_label: str                 # "people.Person"
    owner_field: str = "owner"
    default_access: str = PRIVATE    # when the organisation has not chosen one
    criteria_fields: frozenset[str] = frozenset()  # fields sharing rules may match on

    @property
    def model(self) -> type[Model]:
        return apps.get_model(self.model_label)


RECORD_TYPES: dict[str, RecordType] = {}


def register_record_type(model_label: str, *, owner_field: str = "owner", default_access: str = PRIVATE,
                         criteria_fields: tuple[str, ...] | list[str] = ()) -> RecordType:
    """Make a model shareable: deals, cases… call this in their ``AppConfig.ready()``."""
    label = model_label.lower()
    record_type = RecordType(label, model_label, owner_field, default_access, frozenset(criteria_fields))
    RECORD_TYPES.setdefault(label, record_type)
    return RECORD_TYPES[label]


register_record_type("people.Person", default_access=READ,
                     criteria_fields=("country", "language", "timezone", "tags__name"))
register_record_type("people.Organisation", default_access=READ,
                     criteria_fields=("domain", "tags__name", "parent_id"))


def record_type_for(model: type[Model]) -> RecordType:
    try:
        return RECORD_TYPES[model._meta.label_lower]
    except KeyError as err:
        raise ImproperlyConfigured(
            f"{model._meta.label} is not shareable: call rapport.access.sharing.register_record_type"
            f"({model._meta.label!r}) in its AppConfig.ready().") from err


def restrict(queryset: QuerySet, user: Any, action: str = "read") -> QuerySet:
    """``queryset`` narrowed to the records ``user`` may ``action`` (read, update, delete, export…)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return queryset.none()
    record_type = record_type_for(queryset.model)
    action = canonical_action(action)
    ctx = access_context(user)
    if ctx.is_administrator:
        return queryset
    if action not in ctx.permissions.get(record_type.label, frozenset()):
        return queryset.none()
    condition = visibility_q(ctx, record_type, READ if action in READ_ACTIONS else READ_WRITE)
    return queryset if condition is None else queryset.filter(condition)


def can(user: Any, record: Model, action: str = "read") -> bool:
    """Whether ``user`` may ``action`` this one record (one query)."""
    return restrict(type(record)._default_manager.filter(pk=record.pk), user, action).exists()


def visibility_q(ctx: AccessContext, record_type: RecordType, need: str) -> Q | None:
    """The WHERE condition for records of ``record_type`` granting ``need``; None: all of them.

    Built once per access context (a request): a search asks several times.
    """
    key = (record_type.label, need)
    if key not in ctx._visibility:
        ctx._visibility[key] = _visibility_q(ctx, record_type, need)
    return ctx._visibility[key]


def _visibility_q(ctx: AccessContext, record_type: RecordType, need: str) -> Q | None:
    from rapport.access.models import RecordShare

    if covers(ctx.default_access(record_type.label, record_type.default_access), need):
        return None
    owner_ids = set(ctx.principal_ids)
    matched_rules: list[Q] = []
    for rule in ctx.rules():
        if rule.object_type != record_type.label or not covers(rule.access, need):
            continue
        if rule.criteria:
            matched = criteria_q(record_type, rule.criteria)
            if matched is None:
                continue  # a rule naming a field it may not match on shares nothing
            if rule.owner_ids is not None:
                matched &= Q(**{f"{record_type.owner_field}__in": sorted(rule.owner_ids, key=str)})
            matched_rules.append(matched)
        elif rule.owner_ids is not None:
            owner_ids |= rule.owner_ids
    shares = RecordShare.objects.filter(
        Q(user_id__in=list(ctx.principal_ids)) | Q(team_id__in=list(ctx.team_ids))
        | Q(role_id__in=list(ctx.role_ids)),
        object_type=record_type.label, access__in=_granting(need),
    ).order_by().values("object_id")
    condition = Q(**{f"{record_type.owner_field}__in": sorted(owner_ids, key=str)}) | Q(pk__in=shares)
    for matched in matched_rules:
        condition |= matched
    return condition


def criteria_q(record_type: RecordType, criteria: dict[str, Any]) -> Q | None:
    """Sharing-rule criteria as a condition; None when a key is not an allowed field."""
    q = Q()
    for key, value in criteria.items():
        if key not in record_type.criteria_fields:
            return None
        lookup = f"{key}__in" if isinstance(value, list | tuple) else key
        if "__" in key and not key.endswith("_id"):
            # A to-many path would repeat rows in a join; match it in a subquery instead.
            q &= Q(pk__in=record_type.model._default_manager.filter(**{lookup: value}).values("pk"))
        else:
            q &= Q(**{lookup: value})
    return q


def covers(granted: str, need: str) -> bool:
    return granted == READ_WRITE or (granted == READ and need == READ)


def _granting(need: str) -> list[str]:
    return [READ_WRITE] if need == READ_WRITE else [READ, READ_WRITE]
