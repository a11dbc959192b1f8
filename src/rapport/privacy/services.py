"""C2, C3, C5, C7 — writes of the privacy core: consent, notices, preferences, privacy status.

- ``record_consent`` appends to the ledger and rewrites the derived state in one transaction.
- ``recompute_consent_state`` re-derives a person's state (after a merge moved events).
- Double opt-in: email consent stays *pending* until ``confirm_consent`` is called with the
  signed, expiring token sent to the person.
- Restriction, objection and legal holds live on ``PersonPrivacy``/``LegalHold``;
  ``ensure_not_restricted`` is what other services call before changing a person.

Every function is keyword-only and records the access audit entry for the change.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from rapport.access.audit import record_person_access
from rapport.privacy.errors import (
    InvalidConfirmation,
    LegalHoldActive,
    PersonErased,
    ProcessingRestricted,
)
from rapport.privacy.jurisdictions import implied_consent_expiry
from rapport.privacy.models import (
    Channel,
    ConsentBasis,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    ContactPreference,
    LegalHold,
    Notice,
    NoticeVersion,
    PersonPrivacy,
    TopicSubscription,
    Touch,
)
from rapport.privacy.purposes import MARKETING_PURPOSES, PURPOSES

DOI_SALT = "rapport.privacy.double-opt-in"
DOI_MAX_AGE = dt.timedelta(days=7)
# The access audit's channel for each way consent is captured.
AUDIT_CHANNEL = {ConsentSource.FORM: "portal", ConsentSource.IMPORT: "import", ConsentSource.STAFF: "ui",
                 ConsentSource.API: "api", ConsentSource.PORTAL: "portal", ConsentSource.DOUBLE_OPT_IN: "portal",
                 ConsentSource.OBJECTION: "ui", ConsentSource.MERGE: "system", ConsentSource.UNSUBSCRIBE: "portal"}
PREFERENCE_FIELDS = ("preferred_channel", "email_allowed", "phone_allowed", "sms_allowed", "post_allowed",
                     "social_allowed", "max_per_week", "quiet_start", "quiet_end")


# ------------------------------------------------------------------------- privacy status


def privacy_of(person: Any) -> PersonPrivacy | None:
    """The person's privacy status row, if any (no row: nothing restricted, objected or erased)."""
    return PersonPrivacy.objects.filter(person_id=person.pk).first()


def ensure_not_restricted(person: Any) -> None:
    """Raise when the person's data may not be changed: erased, or processing restricted.

    Call it from every service that changes a person's data (edits, new contact points,
    timeline entries, campaign sends). Withdrawing consent is always allowed.
    """
    refusal = change_refusal(person)
    if refusal is not None:
        raise refusal


def change_refusal(person: Any) -> PersonErased | ProcessingRestricted | None:
    """Why the person's data may not be changed (the error ``ensure_not_restricted`` raises), or None.

    Screens use it to offer no edit that would only be refused.
    """
    status = privacy_of(person)
    if status is None:
        return None
    if status.erased_at is not None:
        return PersonErased(f"This person was erased on {status.erased_at:%d %b %Y}; the record is "
                            "anonymised and cannot take new data.")
    if status.restricted_at is not None:
        return ProcessingRestricted(
            f"Processing of this person's data is restricted since {status.restricted_at:%d %b %Y} "
            f"(GDPR Art. 18): it is stored but may not be changed or used. "
            f"Reason: {status.restriction_reason or 'not given'}.")
    return None


def restrict_processing(*, actor: Any, person: Any, reason: str, channel: str = "ui") -> PersonPrivacy:
    """Freeze all processing but storage: the gate denies everything, edits are refused."""
    if not reason.strip():
        raise ValidationError({"reason": ["Say why processing is restricted."]})
    with transaction.atomic():
        status = lock_privacy_status(person)
        if status.erased_at is not None:
            raise PersonErased("This person was erased; there is nothing left to restrict.")
        if status.restricted_at is None:
            status.restricted_at = timezone.now()
        status.restriction_reason = reason.strip()
        status.save()
        record_person_access(actor=actor, action="change", people=[person], channel=channel,
                             detail={"privacy": "restricted"})
    return status


def lift_restriction(*, actor: Any, person: Any, channel: str = "ui") -> PersonPrivacy:
    with transaction.atomic():
        status = lock_privacy_status(person)
        status.restricted_at = None
        status.restriction_reason = ""
        status.save()
        record_person_access(actor=actor, action="change", people=[person], channel=channel,
                             detail={"privacy": "restriction lifted"})
    return status


def record_objection(*, actor: Any, person: Any, source: str = ConsentSource.STAFF,
                     channel: str = "ui") -> PersonPrivacy:
    """Objection to direct marketing (Art. 21(2)): every marketing consent is withdrawn at once."""
    with transaction.atomic():
        status = lock_privacy_status(person)
        if status.erased_at is not None:
            raise PersonErased("This person was erased; marketing to them is already impossible.")
        now = timezone.now()
        if status.objected_at is None:
            status.objected_at = now
            status.save()
        states = ConsentState.objects.filter(person_id=person.pk, purpose__in=MARKETING_PURPOSES).exclude(
            status=ConsentState.Status.WITHDRAWN)
        for purpose, ch in list(states.values_list("purpose", "channel")):
            _append_event(person=person, purpose=purpose, channel=ch, granted=False,
                          lawful_basis=ConsentBasis.CONSENT, source=ConsentSource.OBJECTION,
                          captured_by=_as_user(actor), occurred_at=now, proof={"objection": True})
            _write_state(person, purpose, ch)
        record_person_access(actor=actor, action="change", people=[person], channel=channel,
                             detail={"privacy": "objection to marketing"})
    return status


def lift_objection(*, actor: Any, person: Any, channel: str = "ui") -> PersonPrivacy:
    """The person withdrew their objection; consents must be given again to market to them."""
    with transaction.atomic():
        status = lock_privacy_status(person)
        status.objected_at = None
        status.save()
        record_person_access(actor=actor, action="change", people=[person], channel=channel,
                             detail={"privacy": "objection lifted"})
    return status


def active_legal_hold(person: Any) -> LegalHold | None:
    return LegalHold.objects.filter(person_id=person.pk, released_at__isnull=True).first()


def place_legal_hold(*, actor: Any, person: Any, reason: str) -> LegalHold:
    if not reason.strip():
        raise ValidationError({"reason": ["Say which legal matter needs the data kept."]})
    with transaction.atomic():
        hold = LegalHold.objects.create(person=person, reason=reason.strip(), placed_by=_as_user(actor))
        record_person_access(actor=actor, action="change", people=[person], channel="ui",
                             detail={"privacy": "legal hold placed"})
    return hold


def release_legal_hold(*, actor: Any, hold: LegalHold) -> LegalHold:
    with transaction.atomic():
        hold.released_at = timezone.now()
        hold.released_by = _as_user(actor)
        hold.save(update_fields=["released_at", "released_by", "updated_at"])
        record_person_access(actor=actor, action="change", people=[hold.person], channel="ui",
                             detail={"privacy": "legal hold released"})
    return hold


def ensure_no_legal_hold(person: Any) -> None:
    hold = active_legal_hold(person)
    if hold is not None:
        raise LegalHoldActive(f"A legal hold placed on {hold.created_at:%d %b %Y} keeps this person's data: "
                              f"{hold.reason}")


# ------------------------------------------------------------------------------ consent


def record_consent(*, person: Any, purpose: str, channel: str, granted: bool, lawful_basis: str,
                   source: str, captured_by: Any = None, notice_version: NoticeVersion | None = None,
                   ip: str | None = None, user_agent: str | None = None, proof: dict | None = None,
                   occurred_at: dt.datetime | None = None,
                   double_opt_in: bool | None = None) -> ConsentEvent:
    """Append a grant or withdrawal to the ledger and update the derived state (C2).

    An express email consent waits for the double opt-in (the event is *pending*, a signed
    confirmation link is mailed) unless ``double_opt_in=False`` says the address was already
    confirmed (e.g. an import with proof); other lawful bases never wait. Withdrawals are always accepted, even for a person
    whose processing is restricted.
    """
    now = timezone.now()
    occurred_at = occurred_at or now
    errors = _consent_errors(purpose=purpose, channel=channel, granted=granted, lawful_basis=lawful_basis,
                             source=source, proof=proof, occurred_at=occurred_at, now=now,
                             notice_version=notice_version, ip=ip)
    if errors:
        raise ValidationError(errors)
    if granted:
        ensure_not_restricted(person)
    else:
        status = privacy_of(person)
        if status is not None and status.erased_at is not None:
            raise PersonErased("This person was erased; there is no consent left to withdraw.")
    if double_opt_in is None:
        double_opt_in = True
    # Double opt-in confirms *express* consent to an address; soft opt-in and implied consent rest
    # on an existing relationship, not on a confirmed sign-up, so they never wait for a link.
    pending = bool(granted and double_opt_in and channel == Channel.EMAIL
                   and lawful_basis == ConsentBasis.CONSENT)
    with transaction.atomic():
        _lock_person(person)
        event = _append_event(person=person, purpose=purpose, channel=channel, granted=granted,
                              pending=pending, lawful_basis=lawful_basis, source=source,
                              captured_by=_as_user(captured_by), notice_version=notice_version, ip=ip or None,
                              user_agent=user_agent or "", proof=proof or {}, occurred_at=occurred_at)
        _write_state(person, purpose, channel)
        record_person_access(actor=captured_by, action="change", people=[person],
                             channel=AUDIT_CHANNEL.get(source, "system"),
                             detail={"consent": f"{purpose}/{channel}",
                                     "granted": granted, "pending": pending})
        if pending:
            from rapport.core.jobs import enqueue_on_commit
            from rapport.privacy.tasks import send_consent_confirmation_task

            enqueue_on_commit(send_consent_confirmation_task, str(event.pk))
    return event


def confirmation_token(event: ConsentEvent) -> str:
    """The signed token of a pending grant's confirmation link (expires after DOI_MAX_AGE)."""
    return signing.dumps({"e": str(event.pk)}, salt=DOI_SALT, compress=True)


def confirm_consent(*, token: str, ip: str | None = None, user_agent: str | None = None,
                    now: dt.datetime | None = None) -> ConsentEvent:
    """Record the double opt-in confirmation for the pending grant behind ``token``.

    Idempotent: a second click returns the first confirmation. A link whose grant was
    withdrawn afterwards is refused.
    """
    max_age = getattr(settings, "RAPPORT_DOUBLE_OPT_IN_MAX_AGE", DOI_MAX_AGE)
    try:
        data = signing.loads(token, salt=DOI_SALT, max_age=max_age)
    except signing.SignatureExpired as err:
        raise InvalidConfirmation("This confirmation link has expired; please sign up again.") from err
    except signing.BadSignature as err:
        raise InvalidConfirmation("This confirmation link is not valid.") from err
    with transaction.atomic():
        pending = (ConsentEvent.objects.select_related("person").filter(pk=data.get("e"), pending=True)
                   .first())
        if pending is None:
            raise InvalidConfirmation("This confirmation link is not valid.")
        done = ConsentEvent.objects.filter(confirms=pending).first()
        if done is not None:
            return done
        person = pending.person
        _lock_person(person)
        ensure_not_restricted(person)
        later_withdrawal = ConsentEvent.objects.filter(
            person_id=person.pk, purpose=pending.purpose, channel=pending.channel, granted=False,
            occurred_at__gte=pending.occurred_at).exists()
        if later_withdrawal:
            raise InvalidConfirmation("This sign-up was withdrawn after the link was sent; please sign up again.")
        event = _append_event(
            person=person, purpose=pending.purpose, channel=pending.channel, granted=True,
            lawful_basis=pending.lawful_basis, source=ConsentSource.DOUBLE_OPT_IN,
            notice_version=pending.notice_version, ip=ip or None, user_agent=user_agent or "",
            proof={"confirms_receipt": str(pending.receipt_id)}, occurred_at=now or timezone.now(),
            confirms=pending)
        _write_state(person, pending.purpose, pending.channel)
        record_person_access(actor=None, action="change", people=[person], channel="portal",
                             detail={"consent": f"{pending.purpose}/{pending.channel}", "confirmed": True})
    return event


def recompute_consent_state(*, person: Any) -> list[ConsentState]:
    """Re-derive every consent state of ``person`` from the ledger (call after a merge).

    Conservative by design: when the ledger holds events captured for more than one person
    (a merge moved them here) and any of those ledgers ended in a withdrawal, that withdrawal
    is carried over as a new ``merge`` event dated now — so it wins whatever the dates of the
    other side's grants, and only a consent given after the merge can override it. A
    carried withdrawal stops counting if the events it came from are moved away (unmerge).
    """
    with transaction.atomic():
        _lock_person(person)
        events = list(ConsentEvent.objects.filter(person_id=person.pk).order_by("occurred_at", "created_at"))
        groups: dict[tuple[str, str], list[ConsentEvent]] = defaultdict(list)
        for event in events:
            groups[(event.purpose, event.channel)].append(event)
        now = timezone.now()
        for (purpose, channel), group in groups.items():
            carry = _withdrawal_to_carry(group)
            if carry is not None:
                _append_event(person=person, purpose=purpose, channel=channel, granted=False,
                              lawful_basis=carry.lawful_basis, source=ConsentSource.MERGE, occurred_at=now,
                              proof={"carried_receipt": str(carry.receipt_id)},
                              carried_from=carry.origin_person_id)
        states = [_write_state(person, purpose, channel) for purpose, channel in groups]
        stale = ConsentState.objects.filter(person_id=person.pk)
        for purpose, channel in {(s.purpose, s.channel) for s in stale} - set(groups):
            stale.filter(purpose=purpose, channel=channel).delete()
    return [s for s in states if s is not None]


@dataclass(frozen=True)
class DerivedState:
    status: str
    lawful_basis: str
    since: dt.datetime
    expires_at: dt.datetime | None
    event: ConsentEvent


def derive_state(events: Iterable[ConsentEvent]) -> DerivedState | None:
    """The current state from events in ledger order (occurred_at, then recorded order).

    - The latest withdrawal or confirmed grant decides.
    - A pending grant (double opt-in) makes a missing or withdrawn state *pending*; it never
      downgrades a granted one.
    - A merge-carried withdrawal counts only while events of the ledger it came from are here.
    - Implied consents (CASL) carry their expiry.
    """
    events = list(events)
    present = {e.origin_person_id for e in events if e.carried_from is None}
    state: DerivedState | None = None
    for event in events:
        if event.carried_from is not None and event.carried_from not in present:
            continue
        if not event.granted:
            state = DerivedState(ConsentState.Status.WITHDRAWN, event.lawful_basis, event.occurred_at, None, event)
        elif event.pending:
            if state is None or state.status != ConsentState.Status.GRANTED:
                state = DerivedState(ConsentState.Status.PENDING, event.lawful_basis, event.occurred_at,
                                     None, event)
        else:
            state = DerivedState(ConsentState.Status.GRANTED, event.lawful_basis, event.occurred_at,
                                 implied_consent_expiry(event.lawful_basis, event.occurred_at), event)
    return state


# -------------------------------------------------------------------------- preferences


def preferences_update(*, actor: Any, person: Any, changes: dict[str, Any],
                       topics: dict[str, bool] | None = None, channel: str = "ui") -> ContactPreference:
    """Set contact preferences (C3) and per-topic subscriptions; unknown fields are refused."""
    unknown = sorted(set(changes) - set(PREFERENCE_FIELDS))
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in unknown})
    bad_topics = sorted(set(topics or {}) - set(MARKETING_PURPOSES))
    if bad_topics:
        raise ValidationError({"topics": [f"Unknown topic(s): {', '.join(bad_topics)}; choose from "
                                          f"{', '.join(MARKETING_PURPOSES)}."]})
    ensure_not_restricted(person)
    with transaction.atomic():
        _lock_person(person)
        preference, _ = ContactPreference.objects.get_or_create(person_id=person.pk)
        for name, value in changes.items():
            setattr(preference, name, value)
        if preference.preferred_channel and not preference.allows(preference.preferred_channel):
            raise ValidationError({"preferred_channel": ["The preferred channel cannot also be refused."]})
        if (preference.quiet_start is None) != (preference.quiet_end is None):
            raise ValidationError({"quiet_end": ["Give both the start and the end of the quiet hours."]})
        preference.full_clean(exclude=["person"])
        preference.version += 1
        preference.save()
        for topic, subscribed in (topics or {}).items():
            TopicSubscription.objects.update_or_create(person_id=person.pk, topic=topic,
                                                       defaults={"subscribed": bool(subscribed)})
        record_person_access(actor=actor, action="change", people=[person], channel=channel,
                             detail={"preferences": sorted(changes) + sorted(topics or {})})
    return preference


# ------------------------------------------------------------------------------ touches


def record_touch(*, person: Any, channel: str, purpose: str, sent_by: Any = None, via: str = "outbound",
                 reference: str = "", occurred_at: dt.datetime | None = None) -> Touch:
    """Log an outbound contact (counts towards the organisation-wide frequency cap)."""
    if purpose not in PURPOSES:
        raise ValidationError({"purpose": [f"Choose one of {', '.join(PURPOSES)}."]})
    if channel not in Channel.values:
        raise ValidationError({"channel": [f"Choose one of {', '.join(Channel.values)}."]})
    return Touch.objects.create(person_id=person.pk, channel=channel, purpose=purpose,
                                marketing=PURPOSES[purpose].is_marketing,
                                occurred_at=occurred_at or timezone.now(), sent_by=_as_user(sent_by),
                                via=via, reference=reference[:100])


# ------------------------------------------------------------------------------ notices


def notice_publish(*, actor: Any, key: str, title: str, text: str,
                   purposes: Iterable[str] = ()) -> NoticeVersion:
    """Publish a new version of notice ``key`` (created on first use). Old versions never change."""
    purposes = list(purposes)
    errors: dict[str, list[str]] = {}
    if not text.strip():
        errors["text"] = ["The notice needs its text."]
    unknown = sorted(set(purposes) - set(PURPOSES))
    if unknown:
        errors["purposes"] = [f"Unknown purpose(s): {', '.join(unknown)}."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        notice, created = Notice.objects.select_for_update().get_or_create(
            key=key, defaults={"title": title or key, "purposes": purposes})
        if not created:
            notice.title = title or notice.title
            notice.purposes = purposes or notice.purposes
            notice.full_clean()
            notice.save()
        last = notice.versions.order_by("-version").values_list("version", flat=True).first() or 0
        version = NoticeVersion(notice=notice, version=last + 1, text=text, published_at=timezone.now(),
                                published_by=_as_user(actor))
        version.save()
    return version


# ------------------------------------------------------------------------------ helpers


def _consent_errors(*, purpose: str, channel: str, granted: bool, lawful_basis: str, source: str,
                    proof: dict | None, occurred_at: dt.datetime, now: dt.datetime,
                    notice_version: NoticeVersion | None, ip: str | None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    purpose_def = PURPOSES.get(purpose)
    if purpose_def is None:
        errors["purpose"] = [f"Choose one of {', '.join(PURPOSES)}."]
    elif not purpose_def.is_marketing:
        errors["purpose"] = [f"“{purpose_def.label}” is a service purpose: it needs no consent."]
    if channel not in Channel.values:
        errors["channel"] = [f"Choose one of {', '.join(Channel.values)}."]
    if lawful_basis not in ConsentBasis.values:
        errors["lawful_basis"] = [f"Choose one of {', '.join(ConsentBasis.values)}."]
    elif granted and lawful_basis == ConsentBasis.SOFT_OPT_IN:
        if purpose_def is not None and not purpose_def.soft_opt_in:
            errors["lawful_basis"] = ["The soft opt-in only covers the business's own similar products."]
        elif not (proof or {}).get("refusal_offered"):
            errors["proof"] = ["A soft opt-in needs proof that a simple way to refuse was offered "
                               '({"refusal_offered": true, …}).']
    if source not in ConsentSource.values:
        errors["source"] = [f"Choose one of {', '.join(ConsentSource.values)}."]
    if occurred_at > now + dt.timedelta(minutes=5):
        errors["occurred_at"] = ["Consent cannot be recorded for the future."]
    if notice_version is not None:
        covered = notice_version.notice.purposes
        if covered and purpose not in covered:
            errors["notice_version"] = [f"Notice “{notice_version.notice.key}” does not cover {purpose}."]
    if ip:
        from django.core.validators import validate_ipv46_address

        try:
            validate_ipv46_address(ip)
        except ValidationError:
            errors["ip"] = ["Enter a valid IPv4 or IPv6 address."]
    if proof is not None and not isinstance(proof, dict):
        errors["proof"] = ["Proof must be an object."]
    return errors


def _append_event(*, person: Any, purpose: str, channel: str, granted: bool, lawful_basis: str, source: str,
                  occurred_at: dt.datetime, pending: bool = False, captured_by: Any = None,
                  notice_version: NoticeVersion | None = None, ip: str | None = None, user_agent: str = "",
                  proof: dict | None = None, confirms: ConsentEvent | None = None,
                  carried_from: Any = None) -> ConsentEvent:
    return ConsentEvent.objects.create(
        person_id=person.pk, origin_person_id=person.pk, purpose=purpose, channel=channel, granted=granted,
        pending=pending, lawful_basis=lawful_basis, source=source, captured_by=captured_by,
        notice_version=notice_version, ip=ip, user_agent=user_agent, proof=proof or {},
        occurred_at=occurred_at, confirms=confirms, carried_from=carried_from)


def _write_state(person: Any, purpose: str, channel: str) -> ConsentState | None:
    events = ConsentEvent.objects.filter(person_id=person.pk, purpose=purpose, channel=channel).order_by(
        "occurred_at", "created_at")
    derived = derive_state(events)
    if derived is None:
        ConsentState.objects.filter(person_id=person.pk, purpose=purpose, channel=channel).delete()
        return None
    state, _ = ConsentState.objects.update_or_create(
        person_id=person.pk, purpose=purpose, channel=channel,
        defaults={"status": derived.status, "lawful_basis": derived.lawful_basis, "since": derived.since,
                  "expires_at": derived.expires_at, "event": derived.event})
    return state


def _withdrawal_to_carry(group: list[ConsentEvent]) -> ConsentEvent | None:
    """In a merged ledger, the last withdrawal of a ledger that a later grant would override."""
    streams: dict[Any, list[ConsentEvent]] = defaultdict(list)
    for event in group:
        if event.carried_from is None:
            streams[event.origin_person_id].append(event)
    if len(streams) < 2:
        return None
    derived = derive_state(group)
    if derived is None or derived.status == ConsentState.Status.WITHDRAWN:
        return None
    carried = {e.carried_from for e in group if e.carried_from is not None}
    for origin, stream in streams.items():
        last = stream[-1]
        if not last.granted and origin not in carried:
            return last
    return None


def lock_privacy_status(person: Any) -> PersonPrivacy:
    _lock_person(person)
    status, _ = PersonPrivacy.objects.select_for_update().get_or_create(person_id=person.pk)
    return status


def _lock_person(person: Any) -> None:
    """Serialise privacy writes per person (rows locked in one order: the person first)."""
    from rapport.people.models import Person

    Person.objects.select_for_update().filter(pk=person.pk).values_list("pk", flat=True).first()


def _as_user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None
