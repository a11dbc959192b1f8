"""C1–C8, I5 — what the privacy core stores.

- Consent (C2, C7): ``Notice``/``NoticeVersion`` (versioned texts), the append-only
  ``ConsentEvent`` ledger and the derived ``ConsentState`` (one row per person, purpose and
  channel, rewritten in the same transaction as each event).
- Preferences (C3): ``ContactPreference`` and ``TopicSubscription``.
- The gate (C4): ``Touch`` (every outbound contact, by anyone) and the decision log
  (``DecisionBatch`` + its ``DecisionOutcome``s + ``DecisionPack``s of person ids).
- Rights (C5): ``RightsRequest`` with its history, ``PersonPrivacy`` (restricted, objected,
  erased — kept here so the people models stay free of privacy state).
- Suppression (I5): ``SuppressionEntry`` (keyed hashes only) and imported ``SuppressionList``s.
- Retention (C6): ``RetentionPolicy``, ``RetentionRun``, ``LegalHold``.
- Security notices (C8): ``SecurityNotice``.

High-volume, append-only tables (consent state, touches, decisions, suppression entries) use
big-integer keys rather than UUIDs: they are written a million rows at a time and never
addressed from outside.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from rapport.core.models import RapportModel


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone call"
    SMS = "sms", "SMS"
    POST = "post", "Post"
    SOCIAL = "social", "Social media"


class ConsentBasis(models.TextChoices):
    """Why a contact is allowed: the kinds of permission a consent event can record."""

    CONSENT = "consent", "Express consent"
    SOFT_OPT_IN = "soft_opt_in", "Soft opt-in (existing customer, similar products, refusal offered)"
    IMPLIED_PURCHASE = "implied_purchase", "Implied consent: purchase (CASL, 2 years)"
    IMPLIED_ENQUIRY = "implied_enquiry", "Implied consent: enquiry (CASL, 6 months)"
    LEGITIMATE_INTERESTS = "legitimate_interests", "Legitimate interests"
    CONTRACT = "contract", "Contract"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation"


class ConsentSource(models.TextChoices):
    FORM = "form", "Web form"
    IMPORT = "import", "Import"
    STAFF = "staff", "Staff"
    API = "api", "API"
    PORTAL = "portal", "Customer portal"
    DOUBLE_OPT_IN = "double_opt_in", "Double opt-in confirmation"
    OBJECTION = "objection", "Objection to marketing"
    MERGE = "merge", "Carried over by a merge"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe link"


# ------------------------------------------------------------------------- notices (C7)


class Notice(RapportModel):
    """A collection notice (privacy notice, form wording); its text lives in versions."""

    key = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    purposes = models.JSONField(default=list, blank=True, help_text="Purpose keys this notice covers")

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.title

    @property
    def current_version(self) -> NoticeVersion | None:
        return self.versions.order_by("-version").first()


class NoticeVersion(RapportModel):
    """One published wording of a notice. Never edited: a change publishes a new version."""

    notice = models.ForeignKey(Notice, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    text = models.TextField()
    published_at = models.DateTimeField()
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["notice", "-version"]
        constraints = [models.UniqueConstraint(fields=["notice", "version"], name="privacy_notice_version_once")]

    def __str__(self) -> str:
        return f"{self.notice.key} v{self.version}"


# ------------------------------------------------------------------------- consent (C2)


class ConsentEvent(RapportModel):
    """One grant or withdrawal, as it happened. Append-only: erasure only pseudonymises proof."""

    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="consent_events")
    # The person the event was captured for; differs from ``person`` after a merge moved it.
    origin_person_id = models.UUIDField(db_index=True)
    purpose = models.CharField(max_length=64)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    granted = models.BooleanField()
    # A grant waiting for its double opt-in confirmation (email).
    pending = models.BooleanField(default=False)
    lawful_basis = models.CharField(max_length=32, choices=ConsentBasis.choices)
    source = models.CharField(max_length=16, choices=ConsentSource.choices)
    captured_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    notice_version = models.ForeignKey(NoticeVersion, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="consent_events")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True)
    proof = models.JSONField(default=dict, blank=True)
    receipt_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    occurred_at = models.DateTimeField()
    # The pending grant a double opt-in confirmation confirms.
    confirms = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A withdrawal carried over by a merge names the ledger (origin person) it came from.
    carried_from = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-created_at"]
        indexes = [models.Index(fields=["person", "purpose", "channel", "occurred_at"],
                                name="privacy_consent_ledger")]

    def __str__(self) -> str:
        verb = "pending" if self.pending else ("granted" if self.granted else "withdrawn")
        return f"{self.purpose}/{self.channel} {verb}"


class ConsentState(models.Model):
    """Current consent per person, purpose and channel, derived from the ledger."""

    class Status(models.TextChoices):
        GRANTED = "granted", "Granted"
        PENDING = "pending", "Pending confirmation"
        WITHDRAWN = "withdrawn", "Withdrawn"

    id = models.BigAutoField(primary_key=True)
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="consent_states")
    purpose = models.CharField(max_length=64)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    lawful_basis = models.CharField(max_length=32, choices=ConsentBasis.choices, blank=True)
    since = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    event = models.ForeignKey(ConsentEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["purpose", "channel"]
        constraints = [models.UniqueConstraint(fields=["person", "purpose", "channel"],
                                               name="privacy_consent_state_once")]
        # Covering for the gate's batch: a purpose's states are read from the index alone
        # (SQLite fetched each row from the table, a second lookup per state).
        indexes = [models.Index(fields=["purpose", "channel", "status", "person", "lawful_basis", "expires_at"],
                                name="privacy_state_gate")]

    def __str__(self) -> str:
        return f"{self.purpose}/{self.channel}: {self.status}"


# --------------------------------------------------------------------- preferences (C3)


class ContactPreference(RapportModel):
    """How the person likes to be contacted. No row means no stated preference."""

    person = models.OneToOneField("people.Person", on_delete=models.CASCADE, related_name="contact_preference")
    preferred_channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    email_allowed = models.BooleanField(default=True)
    phone_allowed = models.BooleanField(default=True)
    sms_allowed = models.BooleanField(default=True)
    post_allowed = models.BooleanField(default=True)
    social_allowed = models.BooleanField(default=True)
    max_per_week = models.PositiveSmallIntegerField(null=True, blank=True,
                                                    help_text="Marketing contacts per 7 days, by anyone")
    quiet_start = models.TimeField(null=True, blank=True, help_text="In the person's time zone")
    quiet_end = models.TimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["person"]

    def __str__(self) -> str:
        return f"preferences of {self.person_id}"

    def allows(self, channel: str) -> bool:
        return bool(getattr(self, f"{channel}_allowed", True))


class TopicSubscription(models.Model):
    """Per-topic subscription (a marketing purpose); no row means no stated preference."""

    id = models.BigAutoField(primary_key=True)
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="topic_subscriptions")
    topic = models.CharField(max_length=64)
    subscribed = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["topic"]
        constraints = [models.UniqueConstraint(fields=["person", "topic"], name="privacy_topic_once")]

    def __str__(self) -> str:
        return f"{self.topic}: {'on' if self.subscribed else 'off'}"


# --------------------------------------------------------------------------- gate (C4)


class Touch(models.Model):
    """One outbound contact with a person, by anyone in the organisation (frequency caps)."""

    id = models.BigAutoField(primary_key=True)
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="touches")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    purpose = models.CharField(max_length=64)
    marketing = models.BooleanField()
    occurred_at = models.DateTimeField()
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    via = models.CharField(max_length=32, default="outbound")
    reference = models.CharField(max_length=100, blank=True, help_text="Campaign or message reference")

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["person", "occurred_at"], name="privacy_touch_person"),
                   # Covering for the frequency cap's count of the last 7 days (and retention's cut-off).
                   models.Index(fields=["occurred_at", "marketing", "person"], name="privacy_touch_recent")]

    def __str__(self) -> str:
        return f"{self.channel}/{self.purpose} at {self.occurred_at:%Y-%m-%d %H:%M}"


class DecisionBatch(models.Model):
    """One call of the gate: a single decision or an audience decided at once."""

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    purpose = models.CharField(max_length=64)
    at = models.DateTimeField()
    size = models.PositiveIntegerField(default=0)
    allowed_count = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    context = models.CharField(max_length=100, blank=True, help_text="What asked: campaign, outbound, API…")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.channel}/{self.purpose} × {self.size}"


class DecisionOutcome(models.Model):
    """One distinct answer of a batch (allowed, or one list of reasons) and how many got it.

    A million-person batch has a few dozen outcomes; who got which is in the batch's
    ``DecisionPack`` rows (see docs/decisions/0005-packed-decision-log.md).
    """

    id = models.BigAutoField(primary_key=True)
    batch = models.ForeignKey(DecisionBatch, on_delete=models.CASCADE, related_name="outcomes")
    # Position of this outcome in the batch: the number a pack's ``outcome_indexes`` holds.
    index = models.PositiveIntegerField()
    allowed = models.BooleanField()
    reasons = models.CharField(max_length=200, blank=True, help_text="Reason codes, comma-separated")
    messages = models.JSONField(default=list, blank=True, help_text="Each reason's message, in order")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["batch", "index"]
        constraints = [models.UniqueConstraint(fields=["batch", "index"], name="privacy_outcome_once")]

    def __str__(self) -> str:
        return f"{'allowed' if self.allowed else 'denied'} {self.reasons} × {self.count}"

    @property
    def created_at(self) -> object:
        """When the decision was made (the batch's time), for the access export."""
        return self.batch.created_at


class DecisionPack(models.Model):
    """Who got which outcome: the person ids of one batch whose hex id starts with ``prefix``.

    ``member_ids`` is the 16-byte ids, sorted, back to back; ``outcome_indexes`` the outcome
    index of each (unsigned 16-bit little-endian), in the same order. One row per prefix keeps
    a batch to a few thousand rows however large it is, and finding one person's decisions is
    an indexed equality lookup on the prefixes of their id (``gate.decisions_about``).
    """

    id = models.BigAutoField(primary_key=True)
    batch = models.ForeignKey(DecisionBatch, on_delete=models.CASCADE, related_name="packs")
    # The first 0–4 hex digits shared by every id in the pack (longer for larger batches).
    prefix = models.CharField(max_length=4, blank=True)
    size = models.PositiveIntegerField()
    member_ids = models.BinaryField()
    outcome_indexes = models.BinaryField()

    class Meta:
        ordering = ["batch", "prefix"]
        indexes = [models.Index(fields=["prefix"], name="privacy_pack_prefix")]

    def __str__(self) -> str:
        return f"pack {self.prefix or '*'} of batch {self.batch_id} × {self.size}"


# --------------------------------------------------------------- rights and status (C5)


class PersonPrivacy(RapportModel):
    """Privacy status of one person: restricted, objected to marketing, erased."""

    person = models.OneToOneField("people.Person", on_delete=models.CASCADE, related_name="privacy")
    restricted_at = models.DateTimeField(null=True, blank=True)
    restriction_reason = models.TextField(blank=True)
    objected_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    erased_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-updated_at"]
        verbose_name_plural = "person privacy"

    def __str__(self) -> str:
        return f"privacy of {self.person_id}"


class RightsRequest(RapportModel):
    """A data-protection rights request, tracked against its statutory due date."""

    class Kind(models.TextChoices):
        ACCESS = "access", "Access (copy of data)"
        RECTIFICATION = "rectification", "Rectification"
        ERASURE = "erasure", "Erasure"
        RESTRICTION = "restriction", "Restriction of processing"
        OBJECTION = "objection", "Objection to marketing"
        PORTABILITY = "portability", "Data portability"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received — identity not verified"
        VERIFIED = "verified", "Identity verified"
        COMPLETED = "completed", "Completed"
        REFUSED = "refused", "Refused"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATUSES = (Status.RECEIVED, Status.VERIFIED)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    person = models.ForeignKey("people.Person", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="rights_requests")
    requester_name = models.CharField(max_length=200, blank=True)
    requester_contact = models.CharField(max_length=320, blank=True)
    channel = models.CharField(max_length=16, default="email")
    details = models.TextField(blank=True)
    received_on = models.DateField()
    due_on = models.DateField()
    extension_reason = models.TextField(blank=True)
    extended_at = models.DateTimeField(null=True, blank=True)
    verification_method = models.CharField(max_length=100, blank=True)
    verification_note = models.TextField(blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    outcome = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["due_on", "created_at"]
        indexes = [models.Index(fields=["status", "due_on"], name="privacy_request_queue")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} request received {self.received_on}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_extended(self) -> bool:
        return self.extended_at is not None


class RightsRequestEvent(models.Model):
    """History of a request: received, verified, extended, executed, refused…"""

    id = models.BigAutoField(primary_key=True)
    request = models.ForeignKey(RightsRequest, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=32)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------- suppression (I5)


class SuppressionList(RapportModel):
    """An imported do-not-contact list (telephone/mail preference service, …) and when screened."""

    class Kind(models.TextChoices):
        TPS = "tps", "Telephone Preference Service"
        CTPS = "ctps", "Corporate Telephone Preference Service"
        MPS = "mps", "Mail Preference Service"
        US_DNC = "us_dnc", "US National Do Not Call Registry"
        CA_DNCL = "ca_dncl", "Canada National Do Not Call List"
        PHONE_DNC = "phone_dnc", "Other telephone do-not-call list"
        EMAIL_DNC = "email_dnc", "Email do-not-contact list"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    screened_on = models.DateField(help_text="The date the list was downloaded / screened against")
    entry_count = models.PositiveIntegerField(default=0)
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-screened_on", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (screened {self.screened_on})"


class SuppressionEntry(models.Model):
    """One suppressed identifier, stored only as a hash (HMAC keyed, or a list's own SHA-256)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"
        ADDRESS = "address", "Postal address"

    class Source(models.TextChoices):
        ERASURE = "erasure", "Erased person"
        MANUAL = "manual", "Added by staff"
        LIST = "list", "External list"

    class Algorithm(models.TextChoices):
        HMAC_SHA256 = "hmac-sha256", "HMAC-SHA-256 (our key)"
        SHA256 = "sha256", "SHA-256 (pre-hashed list)"

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    digest = models.CharField(max_length=64)
    algorithm = models.CharField(max_length=16, choices=Algorithm.choices, default=Algorithm.HMAC_SHA256)
    source = models.CharField(max_length=16, choices=Source.choices)
    list = models.ForeignKey(SuppressionList, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="entries")
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "digest"], name="privacy_suppression_digest")]

    def __str__(self) -> str:
        return f"{self.kind} {self.digest[:10]}… ({self.source})"


class ContactDigest(models.Model):
    """The keyed digest (HMAC, the suppression key) of one contact point's compared forms.

    Lets the gate's batch find suppressed people by joining the list's entries to these
    digests instead of hashing every address of the audience (decision 0018). Rows are made,
    cleared and deleted by database triggers on ``people_contactpoint`` (migration 0006), so
    no writer of contact points — services, the import's bulk path, merges, erasure — can
    forget them; a cleared row (``digest`` NULL) is filled by the next batch that needs it,
    ``version`` (bumped by the triggers) guarding against a change made meanwhile.
    """

    point_id = models.UUIDField(primary_key=True)  # people.ContactPoint's id (no FK: the triggers keep it)
    version = models.IntegerField(default=0)
    # HMAC of the compared form (``suppression.stored_forms``), "" for kinds never suppressed.
    digest = models.CharField(max_length=64, null=True)
    # HMAC of the provider-canonical email when it differs from the address (Gmail dots, +tags).
    canonical = models.CharField(max_length=64, null=True)

    class Meta:
        indexes = [
            models.Index(fields=["point_id"], condition=models.Q(digest__isnull=True), name="privacy_digest_missing"),
            models.Index(fields=["digest"], condition=models.Q(digest__isnull=False), name="privacy_digest_value"),
            models.Index(fields=["canonical"], condition=models.Q(canonical__isnull=False),
                         name="privacy_digest_canonical"),
        ]

    def __str__(self) -> str:
        return f"digest of contact point {self.point_id}"


class ContactDigestKey(models.Model):
    """A fingerprint of the key the stored ``ContactDigest``s were made with (one row): when
    the suppression key changes, every digest is cleared rather than silently matching none."""

    fingerprint = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"contact digests under key {self.fingerprint[:8]}…"


# ------------------------------------------------------------------------ retention (C6)


class RetentionPolicy(RapportModel):
    """How long one kind of record is kept, and what happens when it expires."""

    class Rule(models.TextChoices):
        DORMANT_PEOPLE = "dormant_people", "People with no activity and no consent"
        OLD_INTERACTIONS = "old_interactions", "Timeline entries older than the period"
        TOUCH_LOG = "touch_log", "Outbound contact log"
        DECISION_LOG = "decision_log", "Contact gate decision log"

    class Action(models.TextChoices):
        ERASE = "erase", "Erase the person (anonymise everywhere, suppress identifiers)"
        DELETE = "delete", "Delete the records"

    key = models.SlugField(max_length=64, unique=True)
    rule = models.CharField(max_length=32, choices=Rule.choices)
    purpose = models.CharField(max_length=64, blank=True, help_text="The purpose the data was kept for")
    description = models.TextField(blank=True)
    months = models.PositiveIntegerField()
    action = models.CharField(max_length=16, choices=Action.choices)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["key"]
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"{self.key}: {self.months} months"


class RetentionRun(models.Model):
    """One run of the retention job (or a dry run): what it found and did."""

    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField()
    summary = models.JSONField(default=dict)
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"retention {'dry run' if self.dry_run else 'run'} {self.started_at:%Y-%m-%d %H:%M}"


class LegalHold(RapportModel):
    """Keeps a person's data out of retention and erasure while a legal matter needs it."""

    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="legal_holds")
    reason = models.TextField()
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"legal hold on {self.person_id}"

    @property
    def active(self) -> bool:
        return self.released_at is None


# ----------------------------------------------------------------- security notices (C8)


class SecurityNotice(RapportModel):
    """A breach or security notice sent to affected people (a service message, logged)."""

    subject = models.CharField(max_length=200)
    body = models.TextField()
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    audience_size = models.PositiveIntegerField(default=0)
    sent_count = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=dict, blank=True, help_text="Reason code → number of people")
    batch = models.ForeignKey(DecisionBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.subject
