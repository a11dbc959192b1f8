"""C2, C3, C5, I5 — reads of the privacy core: consent, receipts, status, request queue.

Who may see a person is decided by ``Person.objects.visible_to`` (S2) in the adapters before
these are called; these functions take a person the caller may already see.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from rapport.privacy.jurisdictions import regime_for
from rapport.privacy.models import (
    ConsentBasis,
    ConsentEvent,
    ConsentState,
    ContactPreference,
    LegalHold,
    PersonPrivacy,
    RightsRequest,
    SuppressionEntry,
    SuppressionList,
    TopicSubscription,
)
from rapport.privacy.purposes import PURPOSES

KANTARA_VERSION = "KI-CR-v1.1.0"


def consent_states(*, person: Any) -> list[ConsentState]:
    return list(ConsentState.objects.filter(person_id=person.pk).order_by("purpose", "channel"))


def consent_history(*, person: Any) -> QuerySet[ConsentEvent]:
    """The ledger, newest first, with what each row needs to display."""
    return (ConsentEvent.objects.filter(person_id=person.pk)
            .select_related("captured_by", "notice_version__notice").order_by("-occurred_at", "-created_at"))


def preferences_of(*, person: Any) -> tuple[ContactPreference | None, dict[str, bool]]:
    preference = ContactPreference.objects.filter(person_id=person.pk).first()
    topics = dict(TopicSubscription.objects.filter(person_id=person.pk).values_list("topic", "subscribed"))
    return preference, topics


def status_of(*, person: Any) -> PersonPrivacy | None:
    return PersonPrivacy.objects.filter(person_id=person.pk).first()


def active_legal_holds(*, person: Any) -> list[LegalHold]:
    return list(LegalHold.objects.filter(person_id=person.pk, released_at__isnull=True))


@dataclass(frozen=True)
class PanelData:
    person: Any
    status: PersonPrivacy | None
    states: list[ConsentState]
    preference: ContactPreference | None
    topics: dict[str, bool]
    open_requests: list[RightsRequest]
    holds: list[LegalHold]
    regime: Any


def panel_data(*, person: Any) -> PanelData:
    """What the privacy panel of the 360° view shows (a constant number of queries)."""
    preference, topics = preferences_of(person=person)
    return PanelData(
        person=person, status=status_of(person=person), states=consent_states(person=person),
        preference=preference, topics=topics,
        open_requests=list(RightsRequest.objects.filter(person_id=person.pk,
                                                        status__in=RightsRequest.OPEN_STATUSES)),
        holds=active_legal_holds(person=person), regime=regime_for(person.country))


# ------------------------------------------------------------------------------ receipts


def consent_receipt(event: ConsentEvent) -> dict[str, Any]:
    """The event as a Kantara Initiative Consent Receipt (specification v1.1)."""
    controller = controller_details()
    purpose = PURPOSES.get(event.purpose)
    notice = event.notice_version
    policy_url = controller.get("policy_url") or ""
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": regime_for(event.person.country if event.person_id else "").law,
        "consentTimestamp": int(event.occurred_at.timestamp()),
        "collectionMethod": event.get_source_display(),
        "consentReceiptID": str(event.receipt_id),
        "publicKey": "",
        "language": getattr(event.person, "language", "") or settings.LANGUAGE_CODE,
        "piiPrincipalId": str(event.person_id),
        "piiControllers": [{
            "piiController": controller.get("name", ""),
            "onBehalf": False,
            "contact": controller.get("contact", ""),
            "address": controller.get("address", ""),
            "email": controller.get("email", ""),
            "phone": controller.get("phone", ""),
            "piiControllerUrl": controller.get("url", ""),
        }],
        "policyUrl": policy_url,
        "services": [{
            "service": f"{purpose.label if purpose else event.purpose} by {event.get_channel_display()}",
            "purposes": [{
                "purpose": purpose.description if purpose else event.purpose,
                "purposeCategory": [purpose.label if purpose else event.purpose],
                "consentType": _consent_type(event),
                "piiCategory": ["Contact details", "Name"],
                "primaryPurpose": False,
                "termination": _termination(event),
                "thirdPartyDisclosure": False,
                "thirdPartyName": "",
            }],
        }],
        "sensitive": False,
        "spiCat": [],
        # Rapport extensions (allowed by the spec as additional fields).
        "x-rapport": {
            "granted": event.granted, "pending": event.pending, "channel": event.channel,
            "lawfulBasis": event.lawful_basis, "source": event.source,
            "noticeVersion": f"{notice.notice.key} v{notice.version}" if notice else None,
            "ip": event.ip, "userAgent": event.user_agent or None,
        },
    }


def _consent_type(event: ConsentEvent) -> str:
    if event.lawful_basis in (ConsentBasis.CONSENT,):
        return "EXPLICIT"
    return "IMPLICIT"


def _termination(event: ConsentEvent) -> str:
    from rapport.privacy.jurisdictions import implied_consent_expiry

    expiry = implied_consent_expiry(event.lawful_basis, event.occurred_at)
    if not event.granted:
        return "Withdrawn"
    if expiry:
        return f"Lapses on {expiry:%Y-%m-%d} unless renewed; withdraw at any time"
    return "Until withdrawn"


def controller_details() -> dict[str, str]:
    """The data controller, from ``RAPPORT_CONTROLLER`` (name, contact, address, email, phone, url…)."""
    defaults = {"name": "The business operating Rapport", "contact": "", "address": "", "email": "",
                "phone": "", "url": "", "policy_url": "", "dpo": ""}
    return {**defaults, **getattr(settings, "RAPPORT_CONTROLLER", {})}


# ------------------------------------------------------------------------ request queue


def request_queue(*, status: str = "open", kind: str = "", overdue_only: bool = False,
                  today: dt.date | None = None) -> QuerySet[RightsRequest]:
    """Rights requests, soonest due first; ``status="open"`` means received or verified."""
    today = today or timezone.localdate()
    requests = RightsRequest.objects.select_related("person", "verified_by")
    if status == "open":
        requests = requests.filter(status__in=RightsRequest.OPEN_STATUSES)
    elif status:
        requests = requests.filter(status=status)
    if kind:
        requests = requests.filter(kind=kind)
    if overdue_only:
        requests = requests.filter(status__in=RightsRequest.OPEN_STATUSES, due_on__lt=today)
    return requests.order_by("due_on", "created_at")


def queue_counts(*, today: dt.date | None = None) -> dict[str, int]:
    today = today or timezone.localdate()
    open_q = Q(status__in=RightsRequest.OPEN_STATUSES)
    return RightsRequest.objects.aggregate(
        open=Count("id", filter=open_q),
        overdue=Count("id", filter=open_q & Q(due_on__lt=today)),
        due_soon=Count("id", filter=open_q & Q(due_on__gte=today, due_on__lte=today + dt.timedelta(days=7))),
    )


# ------------------------------------------------------------------------- suppression


def suppression_overview() -> dict[str, Any]:
    internal = (SuppressionEntry.objects.exclude(source=SuppressionEntry.Source.LIST)
                .values("source", "kind").annotate(n=Count("id")).order_by("source", "kind"))
    lists = list(SuppressionList.objects.select_related("imported_by").order_by("-screened_on", "-created_at"))
    latest_phone = (SuppressionList.objects.filter(kind__in=("tps", "ctps", "us_dnc", "ca_dncl", "phone_dnc"))
                    .aggregate(latest=Max("screened_on"))["latest"])
    age = (timezone.localdate() - latest_phone).days if latest_phone else None
    return {"internal": list(internal), "lists": lists, "latest_phone_screening": latest_phone,
            "phone_screening_age_days": age, "phone_lists": phone_list_screening()}


def phone_list_screening() -> list[dict[str, Any]]:
    """Per national telephone list: when it was last screened and whether the gate now refuses
    telephone marketing to its countries for it (never screened, or too long ago)."""
    from rapport.privacy.jurisdictions import PHONE_LISTS

    today = timezone.localdate()
    rows = []
    for phone_list in PHONE_LISTS.values():
        latest = (SuppressionList.objects.filter(kind__in=phone_list.list_kinds)
                  .aggregate(latest=Max("screened_on"))["latest"])
        age = (today - latest).days if latest else None
        rows.append({"key": phone_list.key, "name": phone_list.name, "countries": list(phone_list.countries),
                     "screening_days": phone_list.screening_days, "latest": latest, "age_days": age,
                     "stale": age is None or age > phone_list.screening_days})
    return rows


def manual_entries() -> QuerySet[SuppressionEntry]:
    return SuppressionEntry.objects.filter(source=SuppressionEntry.Source.MANUAL).order_by("-created_at")


# ------------------------------------------------------------------------- access audit


def access_log(*, person: Any, limit: int = 1000) -> list[dict[str, Any]] | None:
    """Who viewed, searched, exported or changed the person (S5), or None when not recorded here.

    The access-control app owns the audit; it is imported lazily so this keeps working
    on a build without it.
    """
    try:
        from rapport.access.audit import person_entries
    except ImportError:
        return None
    # Their own entries and the bulk ones (exports, imports) that cover them (decision 0008).
    rows = person_entries(person.pk).order_by("-occurred_at")[:limit]
    out = []
    for row in rows:
        out.append({
            "at": _iso(getattr(row, "occurred_at", None) or getattr(row, "at", None)),
            "actor": getattr(row, "actor_name", "") or str(getattr(row, "actor_id", "") or ""),
            "action": getattr(row, "action", ""),
            "channel": getattr(row, "channel", ""),
            "ip": getattr(row, "ip", "") or "",
            "reason": getattr(row, "reason", "") or "",
        })
    return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
