"""P1–P3 — people, their contact points, organisations, employment history and the timeline."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from rapport.access.encryption import BlindIndexField, EncryptedCharField, EncryptedDateField
from rapport.core.models import RapportModel


class Tag(RapportModel):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RecordQuerySet(models.QuerySet):
    """Visibility lives in one place (S2): ``visible_to`` is the only filter views may use."""

    def visible_to(self, user, action: str = "read") -> RecordQuerySet:
        from rapport.access.sharing import restrict

        return restrict(self, user, action)


class Organisation(RapportModel):
    """P2 — an account, with an optional parent for group structures."""

    name = models.CharField(max_length=200)
    name_key = models.CharField(max_length=200, db_index=True, editable=False)
    domain = models.CharField(max_length=253, blank=True, db_index=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="children")
    notes = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="organisations")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="owned_organisations")
    version = models.PositiveIntegerField(default=1)

    objects = RecordQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Person(RapportModel):
    """P1 — one record per customer, however they reach the business."""

    class Gender(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        NON_BINARY = "non_binary", "Non-binary"
        OTHER = "other", "Other"
        UNDISCLOSED = "undisclosed", "Prefers not to say"

    class IncomeBand(models.TextChoices):
        UNDER_20K = "under_20k", "Under 20,000"
        FROM_20K = "20k_40k", "20,000–40,000"
        FROM_40K = "40k_70k", "40,000–70,000"
        FROM_70K = "70k_100k", "70,000–100,000"
        OVER_100K = "over_100k", "Over 100,000"
        UNDISCLOSED = "undisclosed", "Prefers not to say"

    honorific = models.CharField(max_length=32, blank=True)
    given_name = models.CharField(max_length=100, blank=True)
    middle_names = models.CharField(max_length=100, blank=True)
    family_name = models.CharField(max_length=100, blank=True)
    preferred_name = models.CharField(max_length=100, blank=True)
    # Folded name keys (a-z0-9) for index-backed prefix search; kept in step by services.
    given_key = models.CharField(max_length=100, db_index=True, editable=False, default="")
    family_key = models.CharField(max_length=100, db_index=True, editable=False, default="")
    preferred_key = models.CharField(max_length=100, db_index=True, editable=False, default="")
    language = models.CharField(max_length=16, blank=True, help_text="BCP 47 tag, e.g. en-GB")
    timezone = models.CharField(max_length=64, blank=True, help_text="IANA zone, e.g. Europe/London")
    country = models.CharField(max_length=2, blank=True, db_index=True,
                               help_text="ISO 3166-1 alpha-2; decides the privacy rules that apply")
    notes = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="people")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="owned_people")
    # Optional demographics: sensitive, sealed at rest (S6); exact lookups go through the
    # blind indexes (``rapport.access.encryption.blind_q``), kept in step on every save().
    birth_date = EncryptedDateField(null=True, blank=True)
    birth_date_index = BlindIndexField(source="birth_date")
    gender = EncryptedCharField(max_length=16, null=True, blank=True, choices=Gender.choices)
    gender_index = BlindIndexField(source="gender")
    income_band = EncryptedCharField(max_length=16, null=True, blank=True, choices=IncomeBand.choices,
                                     help_text="Household income band")
    income_band_index = BlindIndexField(source="income_band")
    version = models.PositiveIntegerField(default=1)

    objects = RecordQuerySet.as_manager()

    class Meta:
        ordering = ["family_key", "given_key", "id"]
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        first = self.preferred_name or self.given_name
        name = " ".join(part for part in (first, self.family_name) if part)
        return name or "(no name)"

    @property
    def full_name(self) -> str:
        parts = (self.honorific, self.given_name, self.middle_names, self.family_name)
        return " ".join(p for p in parts if p) or "(no name)"


class ContactPoint(RapportModel):
    """P1 — one way to reach a person: email, phone (E.164), postal address, handle or URL."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"
        ADDRESS = "address", "Postal address"
        SOCIAL = "social", "Social handle"
        URL = "url", "Web address"

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="contact_points")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    label = models.CharField(max_length=32, blank=True, help_text="home, work, mobile, …")
    value = models.TextField(help_text="As given")
    normalised = models.CharField(max_length=320, db_index=True, editable=False)
    # no index of its own: every read of it names the kind, and (kind, search_key) serves those
    search_key = models.CharField(max_length=200, editable=False)
    source = models.CharField(max_length=64, blank=True, help_text="Where this came from")
    verified = models.BooleanField(default=False)
    primary = models.BooleanField(default=False)
    # RapportModel's timestamps without their indexes: points are read per person, never by
    # date, and every import writes millions of them (decision 0040)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "-primary", "created_at"]
        indexes = [models.Index(fields=["kind", "search_key"], name="people_cp_kind_search")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.value}"


class Employment(RapportModel):
    """P2 — a job: when someone moves, the old job ends and the new one starts; history stays."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="employments")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="employments")
    title = models.CharField(max_length=200, blank=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-start_date", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(start_date__isnull=True)
                | models.Q(end_date__gte=models.F("start_date")),
                name="people_employment_end_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.person} at {self.organisation}"

    @property
    def is_current(self) -> bool:
        return self.end_date is None


class Interaction(RapportModel):
    """P3 — one event on a person's timeline, from any channel."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"
        SMS = "sms", "SMS"
        MEETING = "meeting", "Meeting"
        POST = "post", "Post"
        WEB = "web", "Web"
        SOCIAL = "social", "Social"
        IN_PERSON = "in_person", "In person"
        PRESS = "press", "Newspaper / print"
        INTERNAL = "internal", "Internal"

    class Kind(models.TextChoices):
        NOTE = "note", "Note"
        CALL = "call", "Call"
        EMAIL = "email", "Email"
        MEETING = "meeting", "Meeting"
        LETTER = "letter", "Letter"
        WEB_FORM = "web_form", "Web form"
        COMPETITION_ENTRY = "competition_entry", "Competition entry"
        COUPON = "coupon", "Coupon"
        SURVEY = "survey", "Survey"
        SOCIAL_MESSAGE = "social_message", "Social message"
        PURCHASE = "purchase", "Purchase"
        PAYMENT = "payment", "Payment"
        CASE_EVENT = "case_event", "Case event"
        CAMPAIGN_EVENT = "campaign_event", "Campaign event"

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"
        INTERNAL = "internal", "Internal"

    class Sentiment(models.TextChoices):
        NEUTRAL = "neutral", "Neutral"
        COMPLIMENT = "compliment", "Compliment"
        COMPLAINT = "complaint", "Complaint"

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="interactions")
    organisation = models.ForeignKey(Organisation, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="interactions")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    direction = models.CharField(max_length=16, choices=Direction.choices, default=Direction.INBOUND)
    occurred_at = models.DateTimeField(db_index=True)
    summary = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    sentiment = models.CharField(max_length=16, choices=Sentiment.choices, default=Sentiment.NEUTRAL)
    source_system = models.CharField(max_length=64, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-occurred_at", "-created_at"]
        indexes = [models.Index(fields=["person", "-occurred_at"], name="people_interaction_timeline")]
        constraints = [
            # The same event imported twice is stored once.
            models.UniqueConstraint(
                fields=["source_system", "external_id"],
                condition=~models.Q(external_id=""),
                name="people_interaction_external_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"
