"""A3 — imports: the uploaded file, its mapping, its progress and everything needed to undo it.

- ``ImportMapping``: a named, reusable mapping template.
- ``Import``: one file being imported. ``next_row`` is the committed progress: each chunk of
  rows is written in one transaction together with the new ``next_row``, so a killed import
  resumes exactly where the last committed chunk ended.
- ``ImportedPerson``: which people an import created or changed (for "merged into a person
  this import created" and for undo).
- ``ImportChunk``: per chunk, what the chunk did to records that existed before (values before,
  contact points and jobs added, jobs ended) — the undo ledger.
- ``ImportIssue``: invalid, suppressed and warning rows with row number, column and message.

Import rows hold personal data (see ``imports/datamap.py``); files and ledgers are purged
after ``IMPORT_RETENTION_DAYS``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from rapport.core.models import RapportModel


class ImportMapping(RapportModel):
    """A named mapping template (columns → fields, date format, separator)."""

    name = models.CharField(max_length=100, unique=True)
    mapping = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Import(RapportModel):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        PREVIEWING = "previewing", "Previewing"
        PREVIEWED = "previewed", "Previewed"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        UNDOING = "undoing", "Undoing"
        UNDONE = "undone", "Undone"

    class Policy(models.TextChoices):
        FILL_BLANKS = "fill_blanks", "Fill blanks (keep what Rapport has)"
        OVERWRITE = "overwrite", "Overwrite with the file's values"
        ADD_CONTACT_POINTS = "add_contact_points", "Only add contact points"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel workbook"
        VCARD = "vcard", "vCard"
        JSON = "json", "JSON (Rapport export)"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="+")
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=500, blank=True, help_text="Relative to MEDIA_ROOT")
    file_size = models.BigIntegerField(default=0)
    file_sha256 = models.CharField(max_length=64, blank=True)
    format = models.CharField(max_length=8, choices=Format.choices)
    encoding = models.CharField(max_length=32, blank=True)
    delimiter = models.CharField(max_length=2, blank=True)
    sheet = models.CharField(max_length=100, blank=True)
    sheets = models.JSONField(default=list)
    headers = models.JSONField(default=list)
    sample = models.JSONField(default=list)
    preset = models.CharField(max_length=16, blank=True)
    mapping = models.JSONField(default=dict)
    mapping_name = models.CharField(max_length=100, blank=True)
    policy = models.CharField(max_length=24, choices=Policy.choices, default=Policy.FILL_BLANKS)
    # C2 — provenance of any marketing permission the file brings.
    consent_purpose = models.CharField(max_length=64, blank=True, default="")
    consent_source = models.CharField(max_length=200, blank=True)
    consent_lawful_basis = models.CharField(max_length=32, blank=True)
    consent_collected_on = models.DateField(null=True, blank=True)
    consent_notice_version = models.CharField(max_length=64, blank=True, help_text="notice-key:version")
    consent_confirmed = models.BooleanField(
        default=False, help_text="The source already confirmed these email addresses (double opt-in)")
    chunk_size = models.PositiveIntegerField(default=2000)
    total_rows = models.PositiveIntegerField(default=0)
    next_row = models.PositiveIntegerField(default=0, help_text="Rows committed so far")
    counts = models.JSONField(default=dict)
    preview = models.JSONField(default=dict)
    report_rows = models.JSONField(default=list, help_text="Outcome of the first rows of the run")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED,
                              db_index=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"

    @property
    def progress_percent(self) -> int:
        total = self.preview.get("total_rows") if self.status == self.Status.PREVIEWING else None
        total = total or self.total_rows
        done = self.preview.get("next_row", 0) if self.status == self.Status.PREVIEWING else self.next_row
        return min(100, int(done * 100 / total)) if total else 0

    @property
    def premapped(self) -> bool:
        """vCard and JSON files say what each value is: they need no column mapping."""
        return self.format in (self.Format.VCARD, self.Format.JSON)

    @property
    def brings_consent(self) -> bool:
        columns = (self.mapping or {}).get("columns", {})
        return any(str(rule.get("target", "")).startswith("consent_") and rule.get("target") != "consent_date"
                   for rule in columns.values() if isinstance(rule, dict))


class ImportedPerson(models.Model):
    """A person an import created (``created``) or changed; one row per import and person."""

    id = models.BigAutoField(primary_key=True)
    # no index of its own: the unique (import_run, person_id) one below leads with it
    import_run = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="people", db_index=False)
    person_id = models.UUIDField(db_index=True)
    created = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["import_run", "person_id"],
                                               name="imports_person_once_per_import")]

    def __str__(self) -> str:
        return f"{self.person_id} ({'created' if self.created else 'updated'})"


class ImportChunk(models.Model):
    """What one committed chunk did, in enough detail to undo it."""

    id = models.BigAutoField(primary_key=True)
    import_run = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    first_row = models.PositiveIntegerField()
    row_count = models.PositiveIntegerField()
    created_organisations = models.JSONField(default=list)
    # [{"person", "version_before", "version_after", "before": {field: old}, "points": [ids],
    #   "jobs": [ids], "ended_jobs": [[id, old_end_date]], "tags": [tag ids]}]
    changes = models.JSONField(default=list)
    # {person_id: version after this chunk} for people created in this chunk
    created_versions = models.JSONField(default=dict)
    committed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["import_run", "index"]
        constraints = [models.UniqueConstraint(fields=["import_run", "index"],
                                               name="imports_chunk_once")]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.import_run_id}"


class ImportIssue(models.Model):
    class Kind(models.TextChoices):
        INVALID = "invalid", "Invalid"
        SUPPRESSED = "suppressed", "Suppressed"
        SKIPPED = "skipped", "Skipped"
        WARNING = "warning", "Warning"

    class Phase(models.TextChoices):
        PREVIEW = "preview", "Preview"
        RUN = "run", "Run"

    id = models.BigAutoField(primary_key=True)
    import_run = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="issues")
    phase = models.CharField(max_length=8, choices=Phase.choices)
    row = models.PositiveIntegerField()
    column = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.TextField()

    class Meta:
        ordering = ["row", "id"]
        indexes = [models.Index(fields=["import_run", "phase", "row"], name="imports_issue_row")]

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"
