"""I3–I4 — the duplicate review queue, remembered "not the same person" pairs and merge records.

Pairs are stored with ``left_id < right_id`` (as text), so a pair has one row whichever way
round it was found; ``pair_key`` makes that a unique constraint on both databases.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from rapport.core.models import RapportModel


def pair_key(a: object, b: object) -> str:
    """One key for an unordered pair of person ids."""
    x, y = sorted((str(a), str(b)))
    return f"{x}:{y}"


class DuplicateSuggestion(RapportModel):
    """I3 — a pair the batch de-duplication thinks may be one person, waiting for a reviewer.

    A merge removes the suggestions of the merged person (the merge record keeps them, and
    unmerge puts them back); "Not the same person" turns the row *rejected* and writes a
    ``NotDuplicate``.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REJECTED = "rejected", "Not the same person"

    left = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    right = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    pair = models.CharField(max_length=80, unique=True, editable=False)
    probability = models.FloatField(db_index=True)
    # [{"field", "level", "weight"}] as the engine reports it: levels and weights, no values.
    evidence = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    found_by = models.CharField(max_length=32, default="dedupe", help_text="dedupe, job, realtime")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-probability", "created_at"]
        indexes = [models.Index(fields=["status", "-probability"], name="identity_sugg_queue")]

    def __str__(self) -> str:
        return f"{self.left_id} ~ {self.right_id} ({self.probability:.2f}, {self.status})"

    def save(self, *args: object, **kwargs: object) -> None:
        self.pair = pair_key(self.left_id, self.right_id)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class NotDuplicate(RapportModel):
    """I3 — a reviewer said these two are different people: never suggest the pair again."""

    left = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    right = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    pair = models.CharField(max_length=80, unique=True, editable=False)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.left_id} ≠ {self.right_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.pair = pair_key(self.left_id, self.right_id)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class MergeRecord(RapportModel):
    """I4 — one merge, with everything needed to undo it exactly.

    The merged person's row is deleted (after every related row was moved to the survivor)
    and kept here as a full snapshot: no empty "tombstone" person haunts lists, searches and
    the duplicate queue, and unmerge re-creates the row with its original id. ``snapshot``:
    ``merged_person`` (every column), ``survivor_before`` / ``survivor_after`` (the fields
    survivorship changed), ``moved`` (label → field → row ids moved to the survivor),
    ``deleted`` (label → full rows of the merged side that collided with a unique constraint),
    ``updated`` (label → [row id, before, after] of survivor rows merged conservatively),
    ``created`` (label → ids the merge added, e.g. carried consent withdrawals).
    """

    class Status(models.TextChoices):
        MERGED = "merged", "Merged"
        UNMERGED = "unmerged", "Unmerged"

    survivor = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    merged_person_id = models.UUIDField(db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.MERGED, db_index=True)
    field_choices = models.JSONField(default=dict)
    reason = models.CharField(max_length=300, blank=True)
    probability = models.FloatField(null=True, blank=True)
    snapshot = models.JSONField(default=dict)
    merged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    unmerged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    unmerged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.merged_person_id} → {self.survivor_id} ({self.status})"
