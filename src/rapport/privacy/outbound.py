"""C4, C8 — the one module that sends anything to a person. Always through the gate.

Every send asks ``gate.decide`` first (the decision is logged), sends only when allowed, and
records a ``Touch`` so the organisation-wide frequency cap sees it. Email goes through
Django's mail API; SMS, calls and letters through pluggable senders named in the
``RAPPORT_SENDERS`` setting (``{"sms": "dotted.path.Class", ...}``); by default they land in
``OUTBOX`` (for development and tests) and the log.

A test (``privacy/tests/test_outbound.py``) fails if any other module imports Django's
mail sending functions, ``smtplib`` or an SMS client: this is the only way out.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils.module_loading import import_string

from rapport.privacy import gate
from rapport.privacy.models import Channel, SecurityNotice, Touch
from rapport.privacy.services import record_touch

logger = logging.getLogger("rapport.outbound")


@dataclass(frozen=True)
class OutboundResult:
    sent: bool
    decision: gate.Decision
    address: str = ""
    touch: Touch | None = None


class Sender(Protocol):
    """Delivers one message on a channel that is not email (SMS gateway, dialler, print house)."""

    def send(self, *, to: str, body: str, subject: str = "", channel: str) -> None: ...


class OutboxSender:
    """Default sender: keeps messages in ``OUTBOX`` and logs them. Replace in production."""

    def send(self, *, to: str, body: str, subject: str = "", channel: str) -> None:
        OUTBOX.append({"channel": channel, "to": to, "subject": subject, "body": body})
        logger.info("outbound %s queued in the outbox", channel)


OUTBOX: list[dict[str, str]] = []


# ------------------------------------------------------------------------------ sending


def send_email(*, person: Any, purpose: str, subject: str, body: str, html_body: str | None = None,
               actor: Any = None, reference: str = "", headers: dict[str, str] | None = None,
               to: str | None = None) -> OutboundResult:
    """Email the person (their primary address, or ``to`` if it is one of theirs) if the gate allows."""
    decision = gate.decide(person, Channel.EMAIL, purpose, actor=actor, context=f"outbound email {reference}")
    if not decision.allowed:
        return OutboundResult(False, decision)
    address = _address(person, "email", to)
    message = EmailMultiAlternatives(subject=subject, body=body, to=[address], headers=headers or {},
                                     from_email=getattr(settings, "DEFAULT_FROM_EMAIL", None))
    if html_body:
        message.attach_alternative(html_body, "text/html")
    message.send()
    touch = record_touch(person=person, channel=Channel.EMAIL, purpose=purpose, sent_by=actor, reference=reference)
    return OutboundResult(True, decision, address, touch)


def send_sms(*, person: Any, purpose: str, text: str, actor: Any = None, reference: str = "") -> OutboundResult:
    return _send_other(Channel.SMS, person=person, purpose=purpose, body=text, actor=actor, reference=reference)


def place_call(*, person: Any, purpose: str, script: str = "", actor: Any = None,
               reference: str = "") -> OutboundResult:
    """Hand the number to the dialler (the phone sender) if the gate allows the call now."""
    return _send_other(Channel.PHONE, person=person, purpose=purpose, body=script, actor=actor,
                       reference=reference)


def send_letter(*, person: Any, purpose: str, body: str, actor: Any = None, reference: str = "") -> OutboundResult:
    return _send_other(Channel.POST, person=person, purpose=purpose, body=body, actor=actor, reference=reference)


def send_security_notice(*, people: Any, subject: str, body: str, actor: Any,
                         channel: str = Channel.EMAIL) -> SecurityNotice:
    """C8 — tell affected people about a breach or threat: a service message, logged.

    Marketing consent and preferences do not apply; erasure and restriction still do. The
    audience is decided in one batch; the notice records how many were told and why others
    were not.
    """
    if not subject.strip() or not body.strip():
        from django.core.exceptions import ValidationError

        raise ValidationError({"subject": ["A notice needs a subject and a text."]})
    from rapport.people.models import Person

    decisions = gate.decide_batch(people, channel, "security_notice", actor=actor, context="security notice")
    skipped: Counter[str] = Counter()
    sent = 0
    allowed_ids = [pid for pid, d in decisions.items() if d.allowed]
    for decision in decisions.values():
        if not decision.allowed:
            skipped.update(set(decision.codes))
    for start in range(0, len(allowed_ids), 500):
        for person in Person.objects.filter(pk__in=allowed_ids[start:start + 500]):
            sent += _deliver_notice(person, channel, subject, body, actor)
    with transaction.atomic():
        notice = SecurityNotice.objects.create(subject=subject, body=body, channel=channel,
                                               created_by=actor if getattr(actor, "is_authenticated", False) else None,
                                               audience_size=len(decisions), sent_count=sent, skipped=dict(skipped))
    return notice


def _deliver_notice(person: Any, channel: str, subject: str, body: str, actor: Any) -> int:
    address = _address(person, gate.CONTACT_KIND[channel], None)
    if channel == Channel.EMAIL:
        EmailMultiAlternatives(subject=subject, body=body, to=[address],
                               from_email=getattr(settings, "DEFAULT_FROM_EMAIL", None)).send()
    else:
        _sender(channel).send(to=address, body=body, subject=subject, channel=channel)
    record_touch(person=person, channel=channel, purpose="security_notice", sent_by=actor, via="security_notice")
    return 1


def send_consent_confirmation(event_id: Any) -> OutboundResult | None:
    """Mail the double opt-in link for a pending email consent (a service message)."""
    from django.urls import reverse

    from rapport.privacy.models import ConsentEvent
    from rapport.privacy.purposes import PURPOSES
    from rapport.privacy.services import confirmation_token

    event = ConsentEvent.objects.select_related("person").filter(pk=event_id, pending=True).first()
    if event is None:
        return None
    base = getattr(settings, "RAPPORT_BASE_URL", "http://localhost:8000").rstrip("/")
    link = base + reverse("privacy:consent-confirm", args=[confirmation_token(event)])
    label = PURPOSES[event.purpose].label
    body = (f"Please confirm that you would like to receive “{label}” by email.\n\n"
            f"Confirm: {link}\n\nIf you did not ask for this, ignore this message: nothing will be sent.")
    return send_email(person=event.person, purpose="transactional", subject=f"Please confirm: {label}",
                      body=body, reference=f"doi:{event.receipt_id}")


# ------------------------------------------------------------------------------ helpers


def _send_other(channel: str, *, person: Any, purpose: str, body: str, actor: Any, reference: str) -> OutboundResult:
    decision = gate.decide(person, channel, purpose, actor=actor, context=f"outbound {channel} {reference}")
    if not decision.allowed:
        return OutboundResult(False, decision)
    address = _address(person, gate.CONTACT_KIND[channel], None)
    _sender(channel).send(to=address, body=body, channel=channel)
    touch = record_touch(person=person, channel=channel, purpose=purpose, sent_by=actor, reference=reference)
    return OutboundResult(True, decision, address, touch)


def _address(person: Any, kind: str, wanted: str | None) -> str:
    from rapport.people.models import ContactPoint

    points = ContactPoint.objects.filter(person_id=person.pk, kind=kind).order_by("-primary", "created_at")
    if wanted:
        wanted_l = wanted.strip().lower()
        for point in points:
            if point.normalised == wanted_l or point.value.strip().lower() == wanted_l:
                return point.value.strip() if kind != "phone" else point.normalised
        raise ValueError("The address is not one of the person's contact points.")
    point = points.first()
    if point is None:  # the gate refuses first (no_contact_point); kept as a safety net
        raise ValueError(f"The person has no {kind} contact point.")
    return point.normalised if kind in ("phone", "email") else point.value


def _sender(channel: str) -> Sender:
    path = getattr(settings, "RAPPORT_SENDERS", {}).get(channel)
    if not path:
        return OutboxSender()
    return import_string(path)()
