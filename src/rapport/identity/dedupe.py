"""I3 — batch de-duplication of the whole database into the review queue.

``run_dedupe`` turns every person (erased people left out) into engine records through the
same match keys as file mode — names, emails, phones, postal addresses, birth date — then
runs the engine's batch path (``engine.resolve``, the same as file mode, ``workers`` threads
comparing): union blocking, Fellegi–Sunter weights learnt from the database
itself (the fixed real-time model below ``MIN_TRAINING`` people, where EM has too little to
learn from), scoring with evidence and non-chaining clustering. Pairs at or above the
threshold inside one cluster become ``DuplicateSuggestion`` rows (open ones are refreshed, and
withdrawn when a later run no longer finds them); pairs a reviewer marked "not the same
person" are never suggested again.

Auto-merge is off unless ``auto_merge_above`` (or the ``RAPPORT_AUTO_MERGE_ABOVE`` setting)
is given: then pairs at or above it are merged straight away, into the older record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from rapport.identity import engine
from rapport.identity.filemode import default_workers
from rapport.identity.models import DuplicateSuggestion, NotDuplicate, pair_key

DEFAULT_THRESHOLD = 0.8
MIN_TRAINING = engine.MIN_TRAINING  # below this many people the fixed real-time model scores the pairs
CHUNK = 2000

Progress = Callable[[str, int, int], None]


@dataclass
class DedupeReport:
    people: int = 0
    pairs_compared: int = 0
    pairs_above: int = 0
    suggested_new: int = 0
    suggested_updated: int = 0
    withdrawn: int = 0           # open suggestions this run no longer found (data changed)
    remembered_different: int = 0
    auto_merged: int = 0
    dry_run: bool = False
    model: str = "estimated"
    seconds: float = 0.0
    pairs: list[dict[str, Any]] = field(default_factory=list)  # what was (or would be) suggested


def auto_merge_setting() -> float | None:
    """``RAPPORT_AUTO_MERGE_ABOVE`` (unset: auto-merge is off)."""
    import os

    value = getattr(settings, "RAPPORT_AUTO_MERGE_ABOVE", None) or os.environ.get("RAPPORT_AUTO_MERGE_ABOVE")
    return float(value) if value not in (None, "") else None


def run_dedupe(*, threshold: float = DEFAULT_THRESHOLD, auto_merge_above: float | None = None,
               dry_run: bool = False, actor: Any = None, channel: str = "cli",
               progress: Progress | None = None, workers: int | None = None) -> DedupeReport:
    """Score the whole database and fill the review queue (or, with ``dry_run``, only report).

    ``workers``: threads comparing strings (default: one per CPU, ``filemode.default_workers``).
    """
    from django.core.exceptions import ValidationError

    errors = {}
    if not 0.0 < threshold <= 1.0:
        errors["threshold"] = ["Give a probability above 0 and at most 1."]
    if auto_merge_above is not None and not (threshold <= auto_merge_above <= 1.0):
        errors["auto_merge_above"] = ["Give a probability between the threshold and 1."]
    if workers is not None and workers < 1:
        errors["workers"] = ["Give at least 1."]
    if errors:
        raise ValidationError(errors)
    started = time.monotonic()
    report = DedupeReport(dry_run=dry_run)
    progress = progress or (lambda stage, done, total: None)
    records = list(_people_records(progress))
    report.people = len(records)
    model = None
    if len(records) < MIN_TRAINING:
        from rapport.identity.services import REALTIME_MODEL

        model, report.model = REALTIME_MODEL, "fixed (too few people to learn from)"
    # The batch path (arrays; ``workers`` threads compare strings), as file mode runs it.
    result = engine.resolve(records, threshold=threshold, model=model, workers=workers or default_workers(),
                            progress=progress)
    report.pairs_compared = result.pairs_scored
    clusters = result.labels
    strong = [m for m in result.matches if clusters[m.left] == clusters[m.right]]
    report.pairs_above = len(strong)
    rejected = set(NotDuplicate.objects.values_list("pair", flat=True))
    fresh = []
    for match in strong:
        if pair_key(match.left, match.right) in rejected:
            report.remembered_different += 1
        else:
            fresh.append(match)
    report.pairs = [{"left": str(m.left), "right": str(m.right), "probability": round(m.probability, 4),
                     "evidence": m.evidence} for m in fresh]
    if dry_run:
        report.seconds = round(time.monotonic() - started, 2)
        return report
    _store(fresh, report, progress, found_by="job" if channel == "job" else "dedupe")
    if auto_merge_above is not None:
        report.auto_merged = _auto_merge([m for m in fresh if m.probability >= auto_merge_above], actor, channel)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def _people_records(progress: Progress) -> Iterator[engine.Prepared]:
    from rapport.people.models import ContactPoint, Person
    from rapport.privacy.models import PersonPrivacy

    erased = set(PersonPrivacy.objects.filter(erased_at__isnull=False).values_list("person_id", flat=True))
    total = Person.objects.count()
    ids = list(Person.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        chunk = [pk for pk in ids[start:start + CHUNK] if pk not in erased]
        points: dict[Any, dict[str, list[str]]] = {}
        for person_id, kind, value in ContactPoint.objects.filter(
                person_id__in=chunk, kind__in=["email", "phone", "address"]).values_list(
                "person_id", "kind", "value"):
            role = "street" if kind == "address" else kind
            points.setdefault(person_id, {}).setdefault(role, []).append(value)
        for person in Person.objects.filter(pk__in=chunk).only("id", "given_name", "family_name", "birth_date"):
            record = {"given_name": person.given_name, "family_name": person.family_name,
                      **points.get(person.pk, {})}
            if person.birth_date:
                record["birth_date"] = person.birth_date.isoformat()
            yield engine.prepare(person.pk, record)
        progress("Reading people", min(start + CHUNK, total), total)


def _store(matches: list[engine.Match], report: DedupeReport, progress: Progress, found_by: str) -> None:
    """Add new pairs, refresh open ones, withdraw open ones this run no longer finds."""
    keys = {pair_key(m.left, m.right) for m in matches}
    with transaction.atomic():
        existing = {}
        for suggestion in DuplicateSuggestion.objects.only("id", "pair", "status").iterator(chunk_size=CHUNK):
            existing[suggestion.pair] = suggestion
        new, changed = [], []
        for done, match in enumerate(matches, start=1):
            left, right = sorted((match.left, match.right), key=str)
            key = pair_key(left, right)
            suggestion = existing.get(key)
            evidence = [e for e in match.evidence if e["level"] != engine.MISSING]
            if suggestion is None:
                new.append(DuplicateSuggestion(left_id=left, right_id=right, pair=key, evidence=evidence,
                                               probability=match.probability, found_by=found_by))
            elif suggestion.status == DuplicateSuggestion.Status.OPEN:
                suggestion.probability, suggestion.evidence = match.probability, evidence
                changed.append(suggestion)
            if done % CHUNK == 0:
                progress("Storing suggestions", done, len(matches))
        DuplicateSuggestion.objects.bulk_create(new, batch_size=500)
        DuplicateSuggestion.objects.bulk_update(changed, ["probability", "evidence"], batch_size=500)
        stale = [s.pk for key, s in existing.items() if key not in keys and s.status == DuplicateSuggestion.Status.OPEN]
        for start in range(0, len(stale), 500):
            DuplicateSuggestion.objects.filter(pk__in=stale[start:start + 500]).delete()
    report.suggested_new, report.suggested_updated, report.withdrawn = len(new), len(changed), len(stale)
    progress("Storing suggestions", len(matches), len(matches))


def _auto_merge(matches: list[engine.Match], actor: Any, channel: str) -> int:
    """Merge each confident pair into the older record, following earlier merges of the run."""
    from rapport.identity.merge import merge_people
    from rapport.people.models import Person

    into: dict[Any, Any] = {}

    def current(pk: Any) -> Any:
        while pk in into:
            pk = into[pk]
        return pk

    merged = 0
    for match in matches:
        a, b = current(match.left), current(match.right)
        if a == b:
            continue
        people = {p.pk: p for p in Person.objects.filter(pk__in=[a, b])}
        if len(people) != 2:
            continue
        survivor, other = sorted(people.values(), key=lambda p: (p.created_at, str(p.pk)))
        merge_people(survivor=survivor, merged=other, actor=actor, channel=channel,
                     reason=f"auto-merged by de-duplication (p={match.probability:.3f})",
                     probability=match.probability)
        into[other.pk] = survivor.pk
        merged += 1
    return merged
