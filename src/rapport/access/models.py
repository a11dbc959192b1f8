"""S1–S8 — staff users, roles, teams, record sharing, field security, the audit trail,
attachments and API tokens.

Rules about these rows live in ``services`` (writes), ``selectors`` (reads), ``sharing``
(visibility), ``fieldsecurity`` and ``audit``; the models only describe what is stored.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from rapport.access.encryption import EncryptedTextField
from rapport.core.models import RapportModel


class Access(models.TextChoices):
    """How much of a record a sharing default, rule or share grants."""

    PRIVATE = "private", "Private (owner only)"
    READ = "read", "Read only"
    READ_WRITE = "read_write", "Read and write"


class Role(RapportModel):
    """S1 — a permission set: per object type, the actions a member may perform.

    ``permissions`` is ``{"people.person": ["create", "read", ...], ...}``; the catalogue of
    object types and actions is ``rapport.access.permissions.OBJECT_TYPES``.
    """

    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    permissions = models.JSONField(default=dict, blank=True)
    is_administrator = models.BooleanField(default=False, help_text="Sees and may do everything.")
    is_default = models.BooleanField(default=False, help_text="The role of users given none.")
    requires_mfa = models.BooleanField(default=False, help_text="Members must sign in with a second factor.")
    requires_reason = models.BooleanField(
        default=False, help_text="Members give a reason before opening a restricted (VIP) record.")
    allowed_networks = models.JSONField(
        default=list, blank=True, help_text="IPv4/IPv6 CIDR ranges members may sign in from (empty: any).")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Team(RapportModel):
    """S1 — a group of users; sharing rules share records owned by, or with, a team."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A member of staff: one role, any number of teams, an optional manager (S1)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    role = models.ForeignKey(Role, null=True, blank=True, on_delete=models.PROTECT, related_name="users",
                             help_text="Empty: the default role.")
    manager = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="reports")
    teams = models.ManyToManyField(Team, blank=True, through="TeamMembership", related_name="members")
    allowed_networks = models.JSONField(
        default=list, blank=True, help_text="CIDR ranges this user may sign in from, on top of the role's.")

    class Meta:
        ordering = ["username"]

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class TeamMembership(models.Model):
    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        ordering = ["team__name"]
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="access_membership_once")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class SharingDefault(models.Model):
    """S2 — the organisation-wide default access to records of one type nobody shared."""

    object_type = models.CharField(max_length=100, primary_key=True)
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.PRIVATE)

    class Meta:
        ordering = ["object_type"]

    def __str__(self) -> str:
        return f"{self.object_type}: {self.access}"


class SharingRule(RapportModel):
    """S2 — records owned by a team and/or matching criteria are shared with a role or team."""

    name = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100, db_index=True)
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                   help_text="Records owned by members of this team…")
    criteria = models.JSONField(default=dict, blank=True,
                                help_text='…and/or matching these fields, e.g. {"country": "GB"}.')
    target_role = models.ForeignKey(Role, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    target_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    access = models.CharField(max_length=16, choices=[c for c in Access.choices if c[0] != "private"],
                              default=Access.READ)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["object_type", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(target_role__isnull=False, target_team__isnull=True)
                           | models.Q(target_role__isnull=True, target_team__isnull=False)),
                name="access_rule_one_target",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RecordShare(RapportModel):
    """S2 — a manual share of one record with a user, team or role."""

    object_type = models.CharField(max_length=100)
    object_id = models.UUIDField()
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    role = models.ForeignKey(Role, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    access = models.CharField(max_length=16, choices=[c for c in Access.choices if c[0] != "private"],
                              default=Access.READ)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="access_share_record"),
            # visibility's shares subquery: one index range per kind of grantee, covering
            models.Index(fields=["user", "object_type", "access", "object_id"], name="access_share_user"),
            models.Index(fields=["team", "object_type", "access", "object_id"], name="access_share_team"),
            models.Index(fields=["role", "object_type", "access", "object_id"], name="access_share_role"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False, team__isnull=True, role__isnull=True)
                           | models.Q(user__isnull=True, team__isnull=False, role__isnull=True)
                           | models.Q(user__isnull=True, team__isnull=True, role__isnull=False)),
                name="access_share_one_grantee",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id} → {self.user or self.team or self.role}"


class FieldRule(models.Model):
    """S3 — a role's access to one field: hidden or read-only (no rule: read and write)."""

    class Level(models.TextChoices):
        HIDDEN = "hidden", "Hidden"
        READ = "read", "Read only"

    id = models.BigAutoField(primary_key=True)
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="field_rules")
    model_label = models.CharField(max_length=100)
    field = models.CharField(max_length=100)
    level = models.CharField(max_length=8, choices=Level.choices)

    class Meta:
        ordering = ["model_label", "field"]
        constraints = [models.UniqueConstraint(fields=["role", "model_label", "field"],
                                               name="access_field_rule_once")]

    def __str__(self) -> str:
        return f"{self.role}: {self.model_label}.{self.field} {self.level}"


class RestrictedRecord(RapportModel):
    """S5 — a restricted (VIP) record: roles that require it give a reason before opening it."""

    object_type = models.CharField(max_length=100)
    object_id = models.UUIDField()
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["object_type", "object_id"],
                                               name="access_restricted_once")]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id}"


class ChainSeqField(models.BigIntegerField):
    """A BigIntegerField declared ``integer`` on SQLite: as a primary key that is the rowid
    (SQLite makes only a column declared exactly ``INTEGER PRIMARY KEY`` the rowid; ``bigint``
    would be a second b-tree). SQLite's integers are 64-bit either way; PostgreSQL keeps bigint."""

    def db_type(self, connection):  # type: ignore[no-untyped-def]
        if connection.vendor == "sqlite":
            return "integer"
        return super().db_type(connection)


UNINDEXED_ACTION = "view"  # the one action the action index leaves out (decision 0037)


class AuditEntry(models.Model):
    """S5 — one link of the tamper-evident access audit chain.

    ``hash`` is an HMAC over this entry's fields and ``prev_hash``; editing a row breaks its
    own hash, deleting one breaks the next entry's link (or the chain head for the last).
    No foreign keys: nothing may cascade into the trail, and erasing a user keeps their name.
    """

    class Channel(models.TextChoices):
        UI = "ui", "Staff UI"
        API = "api", "API"
        CLI = "cli", "Command line"
        EXPORT = "export", "Export"
        JOB = "job", "Background job"
        IMPORT = "import", "Import"
        PORTAL = "portal", "Customer portal"
        SYSTEM = "system", "System"

    # The chain's own order is the key (decision 0026): on SQLite it is the rowid, so an append
    # writes no separate id, no unique seq index and no AUTOINCREMENT counter.
    seq = ChainSeqField(primary_key=True)
    occurred_at = models.DateTimeField(db_index=True)
    # Not indexed: no query looks entries up by actor id alone (the audit search matches the
    # actor's name; break-glass checks go through the person), and every index is a page more
    # in each audited read's commit (decision 0022).
    actor_id = models.UUIDField(null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    # Indexed without views (``access_audit_action_not_view``, decision 0037).
    action = models.CharField(max_length=32)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    person_id = models.UUIDField(null=True, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    ip = models.CharField(max_length=45, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True, help_text="Canonical JSON")
    # Old and new values are personal data: sealed, and erasable without breaking the chain
    # (the hash covers their digest, not the ciphertext).
    changes = EncryptedTextField(null=True, blank=True)
    changes_digest = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["person_id", "-seq"], name="access_audit_person"),
            # Only entries with field history: the one query by record (``selectors.field_history``)
            # asks for those, and reads (most entries) then write no page of this index.
            models.Index(fields=["object_type", "object_id", "-seq"], name="access_audit_object_changes",
                         condition=models.Q(changes__isnull=False)),
            # Every action but views: views are most of the trail (each read of a person writes
            # one) and the newest views are simply the newest entries; queries for any other
            # action say ``NOT action = 'view'`` too, so both planners can use it (decision 0037).
            models.Index(fields=["action"], name="access_audit_action_not_view",
                         condition=~models.Q(action=UNINDEXED_ACTION)),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor_name} {self.action} {self.object_type} {self.object_id}"


class AuditChainHead(models.Model):
    """The last link of the chain; appenders lock this row, so appends are serialised."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="")

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class AccessGeneration(models.Model):
    """Labels every access-settings change gives a new value (``policy.access_changed``, triggers).

    Read with each request (with the API token on token requests), it tells every process at
    once that what it cached is stale. ``value`` changes on every change, manual shares
    included; ``config_value`` only on changes to the sharing configuration (roles, teams,
    rules, defaults, field rules, users' hierarchy), so a share does not reload the
    configuration, only the shared ids (decision 0010).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)
    config_value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"access generation {self.value}"


class Attachment(RapportModel):
    """S8 — a file on a record, stored sealed; served only through the authorised view."""

    object_type = models.CharField(max_length=100)
    object_id = models.UUIDField()
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, default="application/octet-stream")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_name = models.CharField(max_length=255, unique=True, editable=False)
    key_id = models.CharField(max_length=40, editable=False)
    restricted = models.BooleanField(default=False, help_text="Only the record owner, the uploader and "
                                                               "roles allowed restricted files see it.")
    description = models.CharField(max_length=300, blank=True)
    uploaded_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="access_attachment_record")]

    def __str__(self) -> str:
        return self.filename


class RateLimitCounter(models.Model):
    """S7 — requests counted per key (token or IP) in fixed windows, shared by every process."""

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=100)
    window = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window"], name="access_rate_once")]

    def __str__(self) -> str:
        return f"{self.key}@{self.window}: {self.count}"


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 of the secret is stored; the prefix finds the row."""

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        EXPORT = "export", "Export"
        ADMIN = "admin", "Admin"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)



class AuditEntryPerson(models.Model):
    """S5 — one person covered by a bulk audit entry (an export page, an import chunk).

    A bulk read of thousands of people is one chained ``AuditEntry`` whose ``detail`` holds
    the number and the SHA-256 of these rows' person ids, so ``verify_chain`` finds a row
    edited, deleted or added; indexed by person, so "who exported person X" stays one lookup
    (``audit.person_entries``). Written only by ``audit.record_people_access_bulk``, under
    the chain head's lock. No foreign keys, as for the entries.
    """

    id = models.BigAutoField(primary_key=True)
    entry_seq = models.BigIntegerField(help_text="The seq of the AuditEntry that covers this person")
    person_id = models.UUIDField()

    class Meta:
        indexes = [models.Index(fields=["person_id", "entry_seq"], name="access_audit_covered_person")]

    def __str__(self) -> str:
        return f"#{self.entry_seq} {self.person_id}"
