"""S1–S8 writes: API tokens, roles, teams, sharing, field rules, restricted records and
break-glass, attachments.

Every settings change is a permission change: it is audited (``record_event`` with the old
and new values) in the same transaction, and drops cached access decisions in this process
(``access_changed``). Functions are keyword-only and raise ``DomainError`` subclasses with
field errors, which the UI and the API turn into form errors and 400 problems.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone
from django.utils.text import slugify

from rapport.access.audit import diff, record_change, record_event, record_person_access
from rapport.access.encryption import decrypt_bytes, encrypt_bytes
from rapport.access.models import (
    Access,
    AccessGeneration,
    ApiToken,
    Attachment,
    AuditEntry,
    FieldRule,
    RecordShare,
    RestrictedRecord,
    Role,
    SharingDefault,
    SharingRule,
    Team,
    TeamMembership,
    User,
)
from rapport.access.network import parse_networks
from rapport.access.permissions import OBJECT_TYPES, canonical_action, has_permission
from rapport.access.policy import access_changed, access_context, forget, note_generation
from rapport.access.sharing import RECORD_TYPES, can
from rapport.core.api.prepared import PreparedQuery
from rapport.core.errors import Conflict, DomainError, NotAllowed

ALL_SCOPES = [s.value for s in ApiToken.Scope]


def _hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def token_create(*, user: User, name: str = "", scopes: list[str] | None = None,
                 expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token and return it with the plain key, which is shown once and never stored."""
    scopes = list(scopes) if scopes is not None else ["read", "write"]
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise DomainError(f"Unknown scope(s): {', '.join(unknown)}.",
                          field_errors={"scopes": [f"Choose from {', '.join(ALL_SCOPES)}."]})
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, key_hash=_hash_key(secret),
        scopes=scopes, expires_at=expires_at,
    )
    return token, f"rpt_{prefix}_{secret}"


# The token with its user, role and the shared access generation, compiled once per
# connection (a server-side prepared statement on PostgreSQL): compiling it through the ORM on
# every request was a fifth of an API create's CPU and a third of a read's (decision 0014).
# The row is still read on every request, so revocation, expiry and deactivation count at once.
_TOKEN_ROWS = PreparedQuery(
    lambda prefixes: (ApiToken.objects.select_related("user", "user__role").filter(prefix__in=prefixes)
                      .annotate(access_generation=Subquery(AccessGeneration.objects.filter(pk=1).values("value")[:1]))
                      .order_by()),
    prep_field=ApiToken._meta.get_field("prefix"), sample=lambda: secrets.token_hex(4))

TOKEN_LAST_USED_EVERY = 60  # seconds; coarse on purpose: one write a minute per token, not one per request


def token_authenticate(raw_key: str) -> ApiToken | None:
    """The active token for ``raw_key`` (with ``user`` and ``user.role`` loaded), or None.

    One statement per request (two once a minute). Comparison is constant-time."""
    try:
        marker, prefix, secret = raw_key.split("_", 2)
    except ValueError:
        return None
    if marker != "rpt":
        return None
    found = _TOKEN_ROWS.objects([prefix])
    token = found[0] if found else None
    if token is None or not hmac.compare_digest(token.key_hash, _hash_key(secret)):
        return None
    note_generation(token.user, token.access_generation)  # saves a query per request (policy.py)
    if not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > TOKEN_LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_revoke(*, token: ApiToken) -> None:
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])


# ------------------------------------------------------------------------------- roles


def role_save(*, actor: Any, role: Role | None = None, name: str, description: str = "",
              permissions: Mapping[str, Iterable[str]], requires_mfa: bool = False,
              requires_reason: bool = False, allowed_networks: Iterable[str] = (),
              is_default: bool | None = None, request: Any = None) -> Role:
    """Create or change a role's permission set, MFA and break-glass policy and IP ranges."""
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors["name"] = ["Give the role a name."]
    clean_permissions: dict[str, list[str]] = {}
    for object_type, actions in permissions.items():
        known = OBJECT_TYPES.get(object_type.lower())
        wanted = sorted({canonical_action(a) for a in actions})
        if known is None:
            errors.setdefault("permissions", []).append(f"Unknown object type {object_type!r}.")
            continue
        unknown = [a for a in wanted if a not in known.actions]
        if unknown:
            errors.setdefault("permissions", []).append(
                f"{known.name}: unknown action(s) {', '.join(unknown)}.")
        if wanted:
            clean_permissions[known.label] = [a for a in known.actions if a in wanted]
    networks = _clean_networks(allowed_networks, errors, "allowed_networks")
    if errors:
        raise DomainError("The role was not saved.", field_errors=errors)
    with transaction.atomic():
        before = _role_snapshot(role) if role is not None else {}
        if role is None:
            role = Role(key=_unique_key(name))
        elif Role.objects.exclude(pk=role.pk).filter(name__iexact=name).exists():
            raise DomainError("The role was not saved.", field_errors={"name": ["Another role has this name."]})
        if role.pk is None and Role.objects.filter(name__iexact=name).exists():
            raise DomainError("The role was not saved.", field_errors={"name": ["Another role has this name."]})
        role.name, role.description = name, description.strip()
        if not role.is_administrator:
            role.permissions = clean_permissions
        role.requires_mfa, role.requires_reason = bool(requires_mfa), bool(requires_reason)
        role.allowed_networks = networks
        if is_default is not None and not role.is_administrator:
            if is_default:
                Role.objects.exclude(pk=role.pk).filter(is_default=True).update(is_default=False)
            role.is_default = bool(is_default)
        role.save()
        record_event(actor=actor, action="permission_change", object_type="access.role", object_id=role.pk,
                     request=request, changes=diff(before, _role_snapshot(role)),
                     detail={"role": role.name})
    access_changed()
    return role


def role_delete(*, actor: Any, role: Role, request: Any = None) -> None:
    if role.is_administrator and Role.objects.filter(is_administrator=True).count() == 1:
        raise Conflict("The last administrator role cannot be deleted.")
    if role.is_default:
        raise Conflict("Choose another default role before deleting this one.")
    if role.users.exists():
        raise Conflict(f"{role.users.count()} user(s) still have this role; give them another first.")
    with transaction.atomic():
        record_event(actor=actor, action="permission_change", object_type="access.role", object_id=role.pk,
                     request=request, changes=diff(_role_snapshot(role), {}), detail={"deleted": role.name})
        role.delete()
    access_changed()


def _role_snapshot(role: Role) -> dict[str, Any]:
    return {"name": role.name, "permissions": role.permissions, "requires_mfa": role.requires_mfa,
            "requires_reason": role.requires_reason, "allowed_networks": role.allowed_networks,
            "is_default": role.is_default}


def _unique_key(name: str) -> str:
    base = slugify(name)[:40] or "role"
    key, n = base, 2
    while Role.objects.filter(key=key).exists():
        key, n = f"{base}-{n}", n + 1
    return key


# ------------------------------------------------------------------------- teams, users


def team_save(*, actor: Any, team: Team | None = None, name: str, description: str = "",
              member_ids: Iterable[Any] = (), request: Any = None) -> Team:
    name = name.strip()
    if not name:
        raise DomainError("The team was not saved.", field_errors={"name": ["Give the team a name."]})
    clash = Team.objects.filter(name__iexact=name)
    if team is not None:
        clash = clash.exclude(pk=team.pk)
    if clash.exists():
        raise DomainError("The team was not saved.", field_errors={"name": ["Another team has this name."]})
    with transaction.atomic():
        before = {"name": team.name, "members": sorted(str(u) for u in team.members.values_list(
            "username", flat=True))} if team is not None else {}
        team = team or Team()
        team.name, team.description = name, description.strip()
        team.save()
        members = list(User.objects.filter(pk__in=list(member_ids)))
        TeamMembership.objects.filter(team=team).exclude(user__in=members).delete()
        existing = set(TeamMembership.objects.filter(team=team).values_list("user_id", flat=True))
        TeamMembership.objects.bulk_create([TeamMembership(team=team, user=u) for u in members
                                            if u.pk not in existing])
        after = {"name": team.name, "members": sorted(u.username for u in members)}
        record_event(actor=actor, action="permission_change", object_type="access.team", object_id=team.pk,
                     request=request, changes=diff(before, after))
    access_changed()
    return team


def team_delete(*, actor: Any, team: Team, request: Any = None) -> None:
    with transaction.atomic():
        record_event(actor=actor, action="permission_change", object_type="access.team", object_id=team.pk,
                     request=request, detail={"deleted": team.name})
        team.delete()
    access_changed()


def user_access_update(*, actor: Any, user: User, role: Role | None, manager: User | None,
                       team_ids: Iterable[Any], allowed_networks: Iterable[str],
                       is_active: bool | None = None, request: Any = None) -> User:
    """Change who a user is for access: role, manager, teams, IP ranges, active."""
    errors: dict[str, list[str]] = {}
    networks = _clean_networks(allowed_networks, errors, "allowed_networks")
    node = manager
    depth = 0
    while node is not None and depth < 50:
        if node.pk == user.pk:
            errors["manager"] = ["A user cannot report to themselves, directly or through others."]
            break
        node, depth = node.manager, depth + 1
    if is_active is False and user.pk == getattr(actor, "pk", None):
        errors["is_active"] = ["You cannot deactivate your own account."]
    if errors:
        raise DomainError("The user was not saved.", field_errors=errors)
    with transaction.atomic():
        before = _user_snapshot(user)
        user.role, user.manager, user.allowed_networks = role, manager, networks
        if is_active is not None:
            user.is_active = is_active
        user.save(update_fields=["role", "manager", "allowed_networks", "is_active"])
        teams = list(Team.objects.filter(pk__in=list(team_ids)))
        TeamMembership.objects.filter(user=user).exclude(team__in=teams).delete()
        existing = set(TeamMembership.objects.filter(user=user).values_list("team_id", flat=True))
        TeamMembership.objects.bulk_create([TeamMembership(team=t, user=user) for t in teams
                                            if t.pk not in existing])
        record_event(actor=actor, action="permission_change", object_type="access.user", object_id=user.pk,
                     request=request, changes=diff(before, _user_snapshot(user)))
    access_changed()
    forget(user)
    return user


def _user_snapshot(user: User) -> dict[str, Any]:
    return {"role": user.role.name if user.role_id else "(default)",
            "manager": user.manager.username if user.manager_id else None,
            "teams": sorted(user.teams.values_list("name", flat=True)),
            "allowed_networks": list(user.allowed_networks or []), "is_active": user.is_active}


# ------------------------------------------------------------------------------ sharing


def sharing_default_set(*, actor: Any, object_type: str, access: str, request: Any = None) -> SharingDefault:
    label = object_type.lower()
    if label not in RECORD_TYPES:
        raise DomainError("Unknown record type.", field_errors={"object_type": [f"{object_type!r} is not shareable."]})
    if access not in Access.values:
        raise DomainError("Unknown access level.", field_errors={"access": [f"Choose from {', '.join(Access.values)}."]})
    with transaction.atomic():
        current = SharingDefault.objects.filter(object_type=label).first()
        before = current.access if current else RECORD_TYPES[label].default_access
        default, _ = SharingDefault.objects.update_or_create(object_type=label, defaults={"access": access})
        record_event(actor=actor, action="permission_change", object_type="access.sharingdefault",
                     object_id=label, request=request, changes={"access": [before, access]})
    access_changed()
    return default


def sharing_rule_save(*, actor: Any, rule: SharingRule | None = None, name: str, object_type: str,
                      owner_team: Team | None, criteria: Mapping[str, Any] | None,
                      target_role: Role | None, target_team: Team | None, access: str,
                      active: bool = True, request: Any = None) -> SharingRule:
    """Share records owned by a team and/or matching criteria with a role or a team."""
    errors: dict[str, list[str]] = {}
    label = object_type.lower()
    record_type = RECORD_TYPES.get(label)
    if record_type is None:
        errors["object_type"] = [f"{object_type!r} is not shareable."]
    criteria = dict(criteria or {})
    if record_type is not None:
        bad = sorted(k for k in criteria if k not in record_type.criteria_fields)
        if bad:
            errors["criteria"] = [f"Rules may match on {', '.join(sorted(record_type.criteria_fields))} "
                                  f"only (not {', '.join(bad)})."]
    if owner_team is None and not criteria:
        errors["owner_team"] = ["Say which records: owned by a team, matching criteria, or both."]
    if (target_role is None) == (target_team is None):
        errors["target_role"] = ["Share with exactly one role or one team."]
    if access not in (Access.READ, Access.READ_WRITE):
        errors["access"] = ["Choose read or read and write."]
    if not name.strip():
        errors["name"] = ["Give the rule a name."]
    if errors:
        raise DomainError("The sharing rule was not saved.", field_errors=errors)
    with transaction.atomic():
        before = _rule_snapshot(rule) if rule is not None else {}
        rule = rule or SharingRule()
        rule.name, rule.object_type, rule.owner_team, rule.criteria = name.strip(), label, owner_team, criteria
        rule.target_role, rule.target_team, rule.access, rule.active = target_role, target_team, access, active
        rule.save()
        record_event(actor=actor, action="permission_change", object_type="access.sharingrule",
                     object_id=rule.pk, request=request, changes=diff(before, _rule_snapshot(rule)))
    access_changed()
    return rule


def sharing_rule_delete(*, actor: Any, rule: SharingRule, request: Any = None) -> None:
    with transaction.atomic():
        record_event(actor=actor, action="permission_change", object_type="access.sharingrule",
                     object_id=rule.pk, request=request, changes=diff(_rule_snapshot(rule), {}))
        rule.delete()
    access_changed()


def _rule_snapshot(rule: SharingRule) -> dict[str, Any]:
    return {"name": rule.name, "object_type": rule.object_type,
            "owner_team": rule.owner_team.name if rule.owner_team_id else None, "criteria": rule.criteria,
            "target": (rule.target_role.name if rule.target_role_id else
                       rule.target_team.name if rule.target_team_id else None),
            "access": rule.access, "active": rule.active}


def record_share(*, actor: Any, record: Any, access: str = Access.READ, user: User | None = None,
                 team: Team | None = None, role: Role | None = None, request: Any = None,
                 channel: str = "ui") -> RecordShare:
    """Share one record by hand. Whoever may change the record may share it."""
    if sum(x is not None for x in (user, team, role)) != 1:
        raise DomainError("Share with one user, team or role.", field_errors={"user": ["Pick exactly one."]})
    if access not in (Access.READ, Access.READ_WRITE):
        raise DomainError("Choose read or read and write.", field_errors={"access": ["Choose read or read_write."]})
    if not can(actor, record, "update"):
        raise NotAllowed("Only someone who may change this record may share it.")
    label = record._meta.label_lower
    with transaction.atomic():
        share = RecordShare.objects.create(object_type=label, object_id=record.pk, user=user, team=team,
                                           role=role, access=access,
                                           created_by=actor if getattr(actor, "is_authenticated", False) else None)
        grantee = str(user or team or role)
        _audit_record_event(actor=actor, record=record, action="share", request=request, channel=channel,
                            changes={"shared_with": [None, f"{grantee} ({access})"]})
    return share


def record_unshare(*, actor: Any, share: RecordShare, request: Any = None, channel: str = "ui") -> None:
    record = _record_for(share.object_type, share.object_id)
    if record is not None and not can(actor, record, "update"):
        raise NotAllowed("Only someone who may change this record may stop sharing it.")
    with transaction.atomic():
        grantee = str(share.user or share.team or share.role)
        if record is not None:
            _audit_record_event(actor=actor, record=record, action="unshare", request=request, channel=channel,
                                changes={"shared_with": [f"{grantee} ({share.access})", None]})
        share.delete()


# ------------------------------------------------------------------------- field rules


def field_rules_set(*, actor: Any, role: Role, model_label: str, levels: Mapping[str, str],
                    request: Any = None) -> None:
    """Set a role's level per field: "hidden", "read" or "write" (write removes the rule)."""
    bad = {f: lvl for f, lvl in levels.items() if lvl not in ("hidden", "read", "write")}
    if bad:
        raise DomainError("Unknown field level.", field_errors={f: ["Choose hidden, read or write."] for f in bad})
    if role.is_administrator:
        raise Conflict("Administrators see every field; field rules do not apply to them.")
    with transaction.atomic():
        current = dict(FieldRule.objects.filter(role=role, model_label=model_label).values_list("field", "level"))
        changes = {}
        for name, level in levels.items():
            old = current.get(name, "write")
            if old == level:
                continue
            changes[name] = [old, level]
            if level == "write":
                FieldRule.objects.filter(role=role, model_label=model_label, field=name).delete()
            else:
                FieldRule.objects.update_or_create(role=role, model_label=model_label, field=name,
                                                   defaults={"level": level})
        if changes:
            record_event(actor=actor, action="permission_change", object_type="access.fieldrule",
                         object_id=role.pk, request=request, changes=changes,
                         detail={"role": role.name, "model": model_label})
    access_changed()


# ------------------------------------------------------------- restricted records, break-glass


def record_restrict(*, actor: Any, record: Any, note: str = "", request: Any = None) -> RestrictedRecord:
    """Mark a record restricted (VIP): roles that require it give a reason before opening it."""
    if not has_permission(actor, "access.settings", "manage") and not can(actor, record, "update"):
        raise NotAllowed("Only someone who may change this record may restrict it.")
    with transaction.atomic():
        restricted, created = RestrictedRecord.objects.get_or_create(
            object_type=record._meta.label_lower, object_id=record.pk,
            defaults={"note": note.strip()[:200],
                      "created_by": actor if getattr(actor, "is_authenticated", False) else None})
        if created:
            _audit_record_event(actor=actor, record=record, action="restrict", request=request,
                                changes={"restricted": [False, True]})
    return restricted


def record_unrestrict(*, actor: Any, record: Any, request: Any = None) -> None:
    if not has_permission(actor, "access.settings", "manage") and not can(actor, record, "update"):
        raise NotAllowed("Only someone who may change this record may lift its restriction.")
    with transaction.atomic():
        deleted, _ = RestrictedRecord.objects.filter(object_type=record._meta.label_lower,
                                                     object_id=record.pk).delete()
        if deleted:
            _audit_record_event(actor=actor, record=record, action="unrestrict", request=request,
                                changes={"restricted": [True, False]})


def is_restricted(record: Any) -> bool:
    return RestrictedRecord.objects.filter(object_type=record._meta.label_lower, object_id=record.pk).exists()


def require_reason(user: Any, person: Any) -> bool:
    """True when ``user`` must give a reason (break-glass) before opening ``person`` now.

    That is: the record is restricted, the user's role requires a reason, and the user gave
    none for this record within ``RAPPORT_BREAK_GLASS_MINUTES``.
    """
    if not getattr(user, "is_authenticated", False) or not access_context(user).requires_reason:
        return False
    person_id = getattr(person, "pk", person)
    if not RestrictedRecord.objects.filter(object_type="people.person", object_id=person_id).exists():
        return False
    since = timezone.now() - timedelta(minutes=getattr(settings, "RAPPORT_BREAK_GLASS_MINUTES", 60))
    return not AuditEntry.objects.filter(person_id=person_id, actor_id=user.pk, action="break_glass",
                                         occurred_at__gte=since).exists()


def break_glass(*, user: Any, person: Any, reason: str, request: Any = None, channel: str = "ui") -> None:
    """Record why ``user`` opens a restricted record; opens it for the break-glass window."""
    reason = " ".join(reason.split())
    if len(reason) < 10:
        raise DomainError("Say why you need this record.",
                          field_errors={"reason": ["Give a reason of at least 10 characters."]})
    record_person_access(actor=user, action="break_glass", people=[person], channel=channel,
                         request=request, reason=reason[:1000])


# -------------------------------------------------------------------------- attachments


def attachment_add(*, actor: Any, record: Any, upload: Any, restricted: bool = False,
                   description: str = "", request: Any = None, channel: str = "ui") -> Attachment:
    """S8 — store a file on a record the actor may change; the bytes are sealed at rest."""
    if not has_permission(actor, "access.attachment", "create"):
        raise NotAllowed("Your role may not add attachments.")
    if not can(actor, record, "update"):
        raise NotAllowed("Only someone who may change this record may attach files to it.")
    limit = getattr(settings, "RAPPORT_MAX_ATTACHMENT", 10 * 1024 * 1024)
    size = getattr(upload, "size", None) or 0
    if size > limit:
        raise DomainError("The file is too large.", field_errors={"file": [f"Files up to {limit // 1024 // 1024} MB."]})
    data = upload.read()
    if not data:
        raise DomainError("The file is empty.", field_errors={"file": ["Choose a file that is not empty."]})
    filename = _safe_filename(getattr(upload, "name", "") or "file")
    attachment = Attachment(object_type=record._meta.label_lower, object_id=record.pk, filename=filename,
                            content_type=(getattr(upload, "content_type", "") or "application/octet-stream")[:100],
                            size=len(data), sha256=hashlib.sha256(data).hexdigest(), restricted=bool(restricted),
                            description=description.strip()[:300],
                            uploaded_by=actor if getattr(actor, "is_authenticated", False) else None)
    attachment.storage_name = f"attachments/{attachment.id}.sealed"
    attachment.key_id, sealed = encrypt_bytes(data, _file_context(attachment))
    with transaction.atomic():
        default_storage.save(attachment.storage_name, ContentFile(sealed))
        try:
            attachment.save()
            _audit_record_event(actor=actor, record=record, action="attach", request=request, channel=channel,
                                # No file name: it is personal data and the chain cannot forget it.
                                detail={"attachment": str(attachment.pk), "restricted": attachment.restricted})
        except Exception:
            default_storage.delete(attachment.storage_name)
            raise
    return attachment


def attachment_read(*, user: Any, attachment: Attachment, request: Any = None, channel: str = "ui") -> bytes:
    """The file's bytes for a user the selector already let see it; the download is audited."""
    with default_storage.open(attachment.storage_name, "rb") as handle:
        sealed = handle.read()
    data = decrypt_bytes(attachment.key_id, sealed, _file_context(attachment))
    record = _record_for(attachment.object_type, attachment.object_id)
    if record is not None:
        _audit_record_event(actor=user, record=record, action="view_attachment", request=request,
                            channel=channel, detail={"attachment": str(attachment.pk)})
    return data


def attachment_delete(*, actor: Any, attachment: Attachment, request: Any = None, channel: str = "ui") -> None:
    if not has_permission(actor, "access.attachment", "delete"):
        raise NotAllowed("Your role may not delete attachments.")
    record = _record_for(attachment.object_type, attachment.object_id)
    if record is not None and not can(actor, record, "update"):
        raise NotAllowed("Only someone who may change this record may remove its files.")
    name = attachment.storage_name
    with transaction.atomic():
        if record is not None:
            _audit_record_event(actor=actor, record=record, action="detach", request=request, channel=channel,
                                detail={"attachment": str(attachment.pk)})
        attachment.delete()
        transaction.on_commit(lambda: default_storage.delete(name))


def rotate_attachment_keys(active: str, batch_size: int) -> int:
    """Re-seal attachment files under the active key (a step of ``rapport keys rotate``)."""
    done = 0
    for attachment in Attachment.objects.exclude(key_id=active).order_by("pk")[:batch_size]:
        with default_storage.open(attachment.storage_name, "rb") as handle:
            data = decrypt_bytes(attachment.key_id, handle.read(), _file_context(attachment))
        key_id, sealed = encrypt_bytes(data, _file_context(attachment))
        new_name = f"attachments/{attachment.id}.{key_id}.sealed"
        default_storage.save(new_name, ContentFile(sealed))
        old_name = attachment.storage_name
        Attachment.objects.filter(pk=attachment.pk).update(key_id=key_id, storage_name=new_name)
        default_storage.delete(old_name)
        done += 1
    return done


rotate_attachment_keys.label = "access.Attachment files"  # type: ignore[attr-defined]


def _file_context(attachment: Attachment) -> str:
    return f"access.Attachment:{attachment.id}"


def _safe_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|:*?').strip(" .")
    return cleaned[:200] or "file"


# ------------------------------------------------------------------- planner statistics


def planner_statistics_refresh() -> str:
    """S2 — refresh the query planner's statistics (``ANALYZE``); returns the database vendor.

    Visibility is one ``WHERE`` of OR-ed conditions (owners, shares, criteria). Without
    statistics SQLite guesses every one of them is selective and collects the visible rows
    through each index before sorting, which makes the first page of a list many times
    slower than the same page unfiltered (bench/visibility.py: about 9×). SQLite never
    analyses on its own, so a periodic job does; PostgreSQL's autovacuum does it too, but
    running it after bulk loads (imports) closes the gap at once.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return connection.vendor


# ------------------------------------------------------------------------------ helpers


def _clean_networks(values: Iterable[str], errors: dict[str, list[str]], field: str) -> list[str]:
    texts = [str(v).strip() for v in values if str(v).strip()]
    try:
        return [str(n) for n in parse_networks(texts)]
    except ValueError as err:
        errors[field] = [str(err)]
        return []


def _record_for(object_type: str, object_id: Any) -> Any:
    record_type = RECORD_TYPES.get(object_type)
    if record_type is None:
        return None
    return record_type.model._default_manager.filter(pk=object_id).first()


def _audit_record_event(*, actor: Any, record: Any, action: str, request: Any = None, channel: str = "ui",
                        changes: Mapping[str, Any] | None = None, detail: dict | None = None) -> None:
    if record._meta.label_lower == "people.person":
        record_person_access(actor=actor, action=action, people=[record], channel=channel, request=request,
                             changes=changes, detail=detail)
    else:
        record_change(actor=actor, record=record, action=action, changes=changes or {}, channel=channel,
                      request=request, detail=detail)
