"""C6 — retention: each kind of record is kept for its purpose's period, then erased or deleted.

Policies are rows (``RetentionPolicy``) so the business can set the periods; each names a
rule implemented here:

- ``dormant_people``: people never converted — no activity (created, changed, timeline
  entry) for N months and no consent granted or pending — are erased (as for an erasure
  request: anonymised everywhere, identifiers suppressed).
- ``old_interactions``: timeline entries older than N months are deleted.
- ``touch_log`` / ``decision_log``: the outbound contact log and the gate's decision log.

People under an active legal hold, already erased, or with an open rights request are
exempt. ``find_expired`` is the dry run (what would go and why); ``apply_retention`` does
it, and is the daily scheduled job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from rapport.privacy.jurisdictions import add_months
from rapport.privacy.models import (
    ConsentState,
    DecisionBatch,
    LegalHold,
    PersonPrivacy,
    RetentionPolicy,
    RetentionRun,
    RightsRequest,
    Touch,
)

SAMPLE = 50  # people listed per policy in a dry-run report


@dataclass
class PolicyReport:
    key: str
    rule: str
    action: str
    months: int
    cutoff: str
    count: int = 0
    why: str = ""
    sample: list[dict[str, Any]] = field(default_factory=list)
    done: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "rule": self.rule, "action": self.action, "months": self.months,
                "cutoff": self.cutoff, "count": self.count, "why": self.why, "sample": self.sample,
                "done": self.done}


def find_expired(*, now: dt.datetime | None = None, policy_key: str | None = None) -> list[PolicyReport]:
    """What the enabled policies would erase or delete now, and why (nothing is changed)."""
    now = now or timezone.now()
    reports = []
    for policy in _policies(policy_key):
        queryset, why = _expired(policy, now)
        report = PolicyReport(policy.key, policy.rule, policy.action, policy.months,
                              _cutoff(policy, now).date().isoformat(), queryset.count(), why)
        if policy.rule == RetentionPolicy.Rule.DORMANT_PEOPLE:
            # Ids only: the run's summary is kept, and must not hold names of people it erased.
            report.sample = [{"person_id": str(pk), "last_change": changed.date().isoformat()}
                             for pk, changed in queryset.values_list("pk", "updated_at")[:SAMPLE]]
        reports.append(report)
    return reports


def apply_retention(*, actor: Any = None, dry_run: bool = False, now: dt.datetime | None = None,
                    policy_key: str | None = None) -> RetentionRun:
    """Run every enabled policy (or one); records a ``RetentionRun`` with the figures."""
    now = now or timezone.now()
    run = RetentionRun.objects.create(dry_run=dry_run, triggered_by=actor if getattr(
        actor, "is_authenticated", False) else None)
    reports = find_expired(now=now, policy_key=policy_key)
    if not dry_run:
        policies = {p.key: p for p in _policies(policy_key)}
        for report in reports:
            report.done = _apply(policies[report.key], now, actor)
    run.summary = {"policies": [r.as_dict() for r in reports], "now": now.isoformat()}
    run.finished_at = timezone.now()
    run.save(update_fields=["summary", "finished_at"])
    return run


# ------------------------------------------------------------------------------ rules


def _expired(policy: RetentionPolicy, now: dt.datetime) -> tuple[QuerySet, str]:
    from rapport.people.models import Interaction, Person

    cutoff = _cutoff(policy, now)
    when = f"{cutoff:%d %b %Y}"
    if policy.rule == RetentionPolicy.Rule.DORMANT_PEOPLE:
        people = Person.objects.filter(created_at__lt=cutoff, updated_at__lt=cutoff).exclude(
            Exists(Interaction.objects.filter(person=OuterRef("pk"), occurred_at__gte=cutoff))).exclude(
            Exists(ConsentState.objects.filter(person=OuterRef("pk"), status__in=(
                ConsentState.Status.GRANTED, ConsentState.Status.PENDING)))).exclude(_exempt_people_q())
        return people.order_by("updated_at"), (f"No activity since {when} ({policy.months} months) and no "
                                               "consent: a lead that never converted.")
    if policy.rule == RetentionPolicy.Rule.OLD_INTERACTIONS:
        rows = Interaction.objects.filter(occurred_at__lt=cutoff).exclude(
            Exists(LegalHold.objects.filter(person=OuterRef("person"), released_at__isnull=True)))
        return rows, f"Timeline entries from before {when} ({policy.months} months)."
    if policy.rule == RetentionPolicy.Rule.TOUCH_LOG:
        return Touch.objects.filter(occurred_at__lt=cutoff), f"Outbound contacts logged before {when}."
    if policy.rule == RetentionPolicy.Rule.DECISION_LOG:
        return DecisionBatch.objects.filter(created_at__lt=cutoff), f"Gate decisions made before {when}."
    raise ValueError(f"Unknown retention rule {policy.rule!r}.")


def _apply(policy: RetentionPolicy, now: dt.datetime, actor: Any) -> int:
    queryset, _ = _expired(policy, now)
    if policy.rule == RetentionPolicy.Rule.DORMANT_PEOPLE:
        from rapport.privacy.erasure import erase_person

        done = 0
        for person in list(queryset[:10_000]):
            if policy.action == RetentionPolicy.Action.ERASE:
                erase_person(actor=actor, person=person, reason=f"retention policy {policy.key}",
                             channel="job")
            else:
                # Deleting the row alone would leave what no foreign key cascades to (files,
                # sealed field history, import samples): erase first, without suppressing.
                with transaction.atomic():
                    erase_person(actor=actor, person=person, reason=f"retention policy {policy.key}",
                                 channel="job", suppress_identifiers=False)
                    type(person).objects.filter(pk=person.pk).delete()
            done += 1
        return done
    with transaction.atomic():
        count = queryset.count()
        queryset.delete()
    return count


def _exempt_people_q() -> Q:
    """People retention must not touch: erased already, on legal hold, or with an open request."""
    return (Q(Exists(PersonPrivacy.objects.filter(person=OuterRef("pk"), erased_at__isnull=False)))
            | Q(Exists(LegalHold.objects.filter(person=OuterRef("pk"), released_at__isnull=True)))
            | Q(Exists(RightsRequest.objects.filter(person=OuterRef("pk"),
                                                    status__in=RightsRequest.OPEN_STATUSES))))


def _cutoff(policy: RetentionPolicy, now: dt.datetime) -> dt.datetime:
    return add_months(now, -policy.months)


def _policies(policy_key: str | None) -> list[RetentionPolicy]:
    policies = RetentionPolicy.objects.filter(enabled=True).order_by("key")
    if policy_key:
        policies = RetentionPolicy.objects.filter(key=policy_key)
        if not policies.exists():
            raise ValueError(f"No retention policy {policy_key!r}.")
    return list(policies)
