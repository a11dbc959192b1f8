"""C4 — the contact gate: may we contact this person, on this channel, for this purpose, now?

``decide`` answers for one person; ``decide_batch`` for an audience with a fixed number of
set-based queries (no loop of ``decide``) and gives the same answers. Both return every
reason that applies, in one fixed order, and log every decision (``DecisionBatch`` +
``ContactDecision``; the batch form writes its log in bulk).

Rules (see docs/privacy.md):

- Every purpose: ``erased``, ``restricted`` (GDPR Art. 18 — storage only), and
  ``no_contact_point`` (nothing to reach the person on that channel).
- Marketing purposes only (service messages — transactional, security and breach notices —
  skip these): ``objection``; consent under the person's jurisdiction (``withdrawn`` on any
  regime; ``no_consent`` where the channel is opt-in and there is no valid consent of an
  accepted kind: pending double opt-in, expired implied consent, soft opt-in outside its
  scope); ``suppressed`` (internal suppression list); ``dnc_list`` (external do-not-contact
  list, or telephone numbers not screened recently enough); ``preference`` (channel refused,
  topic unsubscribed); ``frequency_cap`` (marketing touches by anyone in the last 7 days);
  ``quiet_hours`` (phone and SMS, in the person's time zone).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from rapport.privacy import suppression
from rapport.privacy.jurisdictions import OPT_IN, REGIMES, Regime, regime_for
from rapport.privacy.models import (
    Channel,
    ConsentBasis,
    ConsentState,
    ContactDecision,
    ContactPreference,
    DecisionBatch,
    PersonPrivacy,
    SuppressionEntry,
    SuppressionList,
    TopicSubscription,
    Touch,
)
from rapport.privacy.purposes import Purpose, get_purpose

REASON_ORDER = ("erased", "restricted", "no_contact_point", "objection", "withdrawn", "no_consent",
                "suppressed", "dnc_list", "preference", "frequency_cap", "quiet_hours")
CONTACT_KIND = {Channel.EMAIL: "email", Channel.PHONE: "phone", Channel.SMS: "phone",
                Channel.POST: "address", Channel.SOCIAL: "social"}
SUPPRESSION_KIND = {Channel.EMAIL: SuppressionEntry.Kind.EMAIL, Channel.PHONE: SuppressionEntry.Kind.PHONE,
                    Channel.SMS: SuppressionEntry.Kind.PHONE, Channel.POST: SuppressionEntry.Kind.ADDRESS}
DNC_LIST_KINDS = {
    Channel.PHONE: (SuppressionList.Kind.TPS, SuppressionList.Kind.CTPS, SuppressionList.Kind.PHONE_DNC),
    Channel.POST: (SuppressionList.Kind.MPS,),
    Channel.EMAIL: (SuppressionList.Kind.EMAIL_DNC,),
}
QUIET_CHANNELS = (Channel.PHONE, Channel.SMS)
WEEK = dt.timedelta(days=7)
# Above this many digests of one kind, matching queries the database instead of a Python set.
IN_MEMORY_DIGESTS = 500_000
# Id lists longer than this are loaded into a temporary table rather than an IN (...) list.
INLINE_IDS = 500
# People per ``write`` of the decision log's COPY on PostgreSQL.
COPY_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class Decision:
    """The gate's answer. Identical decisions are shared between people: treat as read-only."""

    allowed: bool
    reasons: tuple[Reason, ...] = ()

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]


ALLOWED = Decision(True, ())


# --------------------------------------------------------------------------- public API


def decide(person: Any, channel: str, purpose: str, at: dt.datetime | None = None, *,
           actor: Any = None, context: str = "", log: bool = True) -> Decision:
    """The decision for one person, with every reason that applies; logged."""
    at = at or timezone.now()
    purpose_def = _check(channel, purpose)
    decision = _decide_one(person, channel, purpose_def, at)
    if log:
        with transaction.atomic():
            batch = DecisionBatch.objects.create(channel=channel, purpose=purpose, at=at, size=1,
                                                 allowed_count=int(decision.allowed),
                                                 requested_by=_as_user(actor), context=context[:100])
            ContactDecision.objects.create(batch=batch, person_id=person.pk, allowed=decision.allowed,
                                           reasons=_codes(decision))
    return decision


def decide_batch(people: QuerySet | Iterable[Any], channel: str, purpose: str,
                 at: dt.datetime | None = None, *, actor: Any = None, context: str = "",
                 log: bool = True) -> Mapping[Any, Decision]:
    """Decisions for an audience (a Person queryset, or ids / people), keyed by person id.

    A fixed number of set-based queries whatever the audience size; the log is written in
    bulk (PostgreSQL ``COPY``, SQLite ``executemany``).
    """
    at = at or timezone.now()
    purpose_def = _check(channel, purpose)
    with transaction.atomic(), _Audience(people) as audience, _no_cyclic_gc():
        raw = _decide_many(audience, channel, purpose_def, at)
        if log:
            _log_batch(raw, channel=channel, purpose=purpose, at=at, actor=actor, context=context)
    return _to_uuid_keys(raw)


def reason_messages() -> dict[str, str]:
    """One line per reason code, for documentation and the UI legend."""
    return {
        "erased": "The person was erased.",
        "restricted": "Processing is restricted (GDPR Art. 18): storage only.",
        "no_contact_point": "Nothing to reach the person on this channel.",
        "objection": "The person objected to direct marketing.",
        "withdrawn": "Consent for this purpose and channel was withdrawn.",
        "no_consent": "No valid consent where the jurisdiction requires opt-in.",
        "suppressed": "The identifier is on the internal suppression list.",
        "dnc_list": "On an external do-not-contact list, or not screened recently enough.",
        "preference": "The person refused this channel or unsubscribed from this topic.",
        "frequency_cap": "Enough marketing contacts in the last 7 days, by anyone.",
        "quiet_hours": "Quiet hours in the person's time zone (phone and SMS).",
    }


# ----------------------------------------------------------------------------- messages


_KIND_LABEL = {"email": "email address", "phone": "phone number", "address": "postal address",
               "social": "social handle"}


def _r_erased() -> Reason:
    return Reason("erased", "The person was erased; they may not be contacted.")


def _r_restricted() -> Reason:
    return Reason("restricted", "Processing of this person's data is restricted (GDPR Art. 18): storage only.")


def _r_no_contact_point(channel: str) -> Reason:
    return Reason("no_contact_point", f"No {_KIND_LABEL[CONTACT_KIND[channel]]} to contact by "
                                      f"{Channel(channel).label.lower()}.")


def _r_objection() -> Reason:
    return Reason("objection", "The person objected to direct marketing.")


def _r_withdrawn(purpose: Purpose, channel: str) -> Reason:
    return Reason("withdrawn", f"Consent to “{purpose.label}” by {Channel(channel).label.lower()} was withdrawn.")


def _r_no_consent(purpose: Purpose, channel: str, regime: Regime, cause: str, basis: str = "") -> Reason:
    what = f"“{purpose.label}” by {Channel(channel).label.lower()}"
    law = f"{regime.law} requires opt-in"
    if cause == "pending":
        text = f"Consent to {what} awaits the double opt-in confirmation; {law}."
    elif cause == "expired":
        text = f"Implied consent to {what} ({ConsentBasis(basis).label}) has expired; {law}."
    elif cause == "basis":
        scope = " for this purpose" if basis == ConsentBasis.SOFT_OPT_IN else ""
        text = f"{ConsentBasis(basis).label} is not valid{scope} under {regime.law}; {what} needs opt-in."
    else:
        text = f"No consent to {what}; {law}."
    return Reason("no_consent", text)


def _r_suppressed(channel: str) -> Reason:
    return Reason("suppressed", f"The person's {_KIND_LABEL[CONTACT_KIND[channel]]} is on the suppression list.")


def _r_dnc_listed(channel: str) -> Reason:
    return Reason("dnc_list", f"The person's {_KIND_LABEL[CONTACT_KIND[channel]]} is on an external "
                              "do-not-contact list.")


def _r_dnc_stale(regime: Regime) -> Reason:
    return Reason("dnc_list", f"Telephone numbers have not been screened against the {regime.phone_list_name} "
                              f"in the last {regime.phone_screening_days} days.")


def _r_channel_refused(channel: str) -> Reason:
    return Reason("preference", f"The person does not want contact by {Channel(channel).label.lower()}.")


def _r_topic_off(purpose: Purpose) -> Reason:
    return Reason("preference", f"The person unsubscribed from “{purpose.label}”.")


def _r_frequency(cap: int) -> Reason:
    return Reason("frequency_cap", f"Frequency cap reached: at most {cap} marketing contact"
                                   f"{'' if cap == 1 else 's'} per 7 days, by anyone.")


def _r_quiet(start: dt.time, end: dt.time) -> Reason:
    return Reason("quiet_hours", f"Quiet hours {start:%H:%M}–{end:%H:%M} in the person's time zone.")


# ------------------------------------------------------------------------ shared rules


def default_cap() -> int:
    return int(getattr(settings, "RAPPORT_MARKETING_TOUCHES_PER_WEEK", 3))


def default_quiet_hours() -> tuple[dt.time, dt.time]:
    start, end = getattr(settings, "RAPPORT_QUIET_HOURS", ("21:00", "08:00"))
    return dt.time.fromisoformat(start), dt.time.fromisoformat(end)


def in_quiet_hours(local: dt.time, start: dt.time, end: dt.time) -> bool:
    """Whether ``local`` falls in [start, end), the window possibly spanning midnight."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def local_time(at: dt.datetime, zone_name: str) -> dt.time:
    """``at`` on the wall clock of ``zone_name`` (the site's zone when blank or unknown)."""
    return at.astimezone(_zone(zone_name)).time().replace(tzinfo=None)


def consent_cause(regime: Regime, channel: str, purpose: Purpose, status: str | None, basis: str,
                  expires_at: dt.datetime | None, at: dt.datetime) -> str | None:
    """Why consent fails (withdrawn / none / pending / expired / basis), or None when it holds."""
    if status == ConsentState.Status.WITHDRAWN:
        return "withdrawn"
    rule = regime.rule(channel)
    if rule.mode != OPT_IN:
        return None
    if status is None:
        return "none"
    if status == ConsentState.Status.PENDING:
        return "pending"
    if not rule.accepts(basis) or (basis == ConsentBasis.SOFT_OPT_IN and not purpose.soft_opt_in):
        return "basis"
    if expires_at is not None and expires_at <= at:
        return "expired"
    return None


def _consent_reason(regime: Regime, channel: str, purpose: Purpose, cause: str, basis: str) -> Reason:
    if cause == "withdrawn":
        return _r_withdrawn(purpose, channel)
    return _r_no_consent(purpose, channel, regime, cause, basis)


# ----------------------------------------------------------------------- single person


def _decide_one(person: Any, channel: str, purpose: Purpose, at: dt.datetime) -> Decision:
    from rapport.people.models import ContactPoint, Person

    person = Person.objects.only("id", "country", "timezone").get(pk=person.pk)
    reasons: list[Reason] = []
    status = PersonPrivacy.objects.filter(person_id=person.pk).first()
    if status is not None and status.erased_at is not None:
        reasons.append(_r_erased())
    if status is not None and status.restricted_at is not None:
        reasons.append(_r_restricted())
    kind = CONTACT_KIND[channel]
    values = list(ContactPoint.objects.filter(person_id=person.pk, kind=kind).values_list("normalised", flat=True))
    if not values:
        reasons.append(_r_no_contact_point(channel))
    if purpose.is_marketing:
        regime = regime_for(person.country)
        if status is not None and status.objected_at is not None:
            reasons.append(_r_objection())
        state = ConsentState.objects.filter(person_id=person.pk, purpose=purpose.key, channel=channel).first()
        cause = consent_cause(regime, channel, purpose, state.status if state else None,
                              state.lawful_basis if state else "", state.expires_at if state else None, at)
        if cause is not None:
            reasons.append(_consent_reason(regime, channel, purpose, cause, state.lawful_basis if state else ""))
        entry_kind = SUPPRESSION_KIND.get(channel)
        if entry_kind is not None and values:
            digests = set()
            for value in values:
                for form in suppression.stored_forms(entry_kind, value):
                    digests |= {suppression.keyed_digest(form), suppression.plain_digest(form)}
            matches = SuppressionEntry.objects.filter(kind=entry_kind, digest__in=digests)
            if matches.filter(source__in=suppression.INTERNAL_SOURCES).exists():
                reasons.append(_r_suppressed(channel))
            if matches.filter(source=SuppressionEntry.Source.LIST, list__kind__in=DNC_LIST_KINDS.get(channel, ())
                              ).exists():
                reasons.append(_r_dnc_listed(channel))
        if channel == Channel.PHONE and regime.phone_screening_days and _screening_stale(regime, at):
            reasons.append(_r_dnc_stale(regime))
        preference = ContactPreference.objects.filter(person_id=person.pk).first()
        if preference is not None and not preference.allows(channel):
            reasons.append(_r_channel_refused(channel))
        if TopicSubscription.objects.filter(person_id=person.pk, topic=purpose.key, subscribed=False).exists():
            reasons.append(_r_topic_off(purpose))
        cap = preference.max_per_week if preference and preference.max_per_week is not None else default_cap()
        touches = Touch.objects.filter(person_id=person.pk, marketing=True, occurred_at__gt=at - WEEK,
                                       occurred_at__lte=at).count()
        if touches >= cap:
            reasons.append(_r_frequency(cap))
        if channel in QUIET_CHANNELS:
            start, end = ((preference.quiet_start, preference.quiet_end)
                          if preference and preference.quiet_start is not None else default_quiet_hours())
            if in_quiet_hours(local_time(at, person.timezone), start, end):
                reasons.append(_r_quiet(start, end))
    return _decision(tuple(reasons))


def _screening_stale(regime: Regime, at: dt.datetime) -> bool:
    """Whether the newest telephone list screening is older than ``regime`` allows (or missing)."""
    latest = (SuppressionList.objects.filter(kind__in=DNC_LIST_KINDS[Channel.PHONE])
              .aggregate(latest=Max("screened_on"))["latest"])
    if latest is None:
        return True
    today = timezone.localdate(at)
    return (today - latest).days > (regime.phone_screening_days or 0)


# ------------------------------------------------------------------------------ batch


class _Audience:
    """The audience as an SQL sub-select (``self.sql``/``self.params``) for raw queries.

    A queryset is compiled as is; a long list of ids goes into a temporary table.
    """

    TEMP = "rapport_gate_audience"

    def __init__(self, people: Any) -> None:
        self.people = people
        self.temp = False
        self.everyone = False

    def __enter__(self) -> _Audience:
        from rapport.people.models import Person

        people = self.people
        if isinstance(people, QuerySet):
            query = people.order_by().values("pk")
            self.everyone = not people.query.where and not people.query.is_sliced
            self.sql, self.params = query.query.get_compiler(connection=connection).as_sql()
            return self
        ids = [getattr(p, "pk", p) for p in people]
        if len(ids) <= INLINE_IDS:
            query = Person.objects.filter(pk__in=ids).values("pk")
            self.sql, self.params = query.query.get_compiler(connection=connection).as_sql()
            return self
        self.temp = True
        column = "uuid" if connection.vendor == "postgresql" else "char(32)"
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.TEMP} (id {column} PRIMARY KEY)")
            cursor.execute(f"DELETE FROM {self.TEMP}")  # noqa: S608 - constant table name
            rows = {_db_id(i) for i in ids}
            if connection.vendor == "postgresql":
                # COPY: a row at a time through executemany took longer than deciding the list.
                with cursor.cursor.copy(f"COPY {self.TEMP} (id) FROM STDIN") as copy:
                    copy.write("".join([f"{i}\n" for i in rows]))
            else:
                cursor.executemany(f"INSERT INTO {self.TEMP} (id) VALUES (%s)", [(i,) for i in rows])  # noqa: S608
        self.sql, self.params = f"SELECT id FROM {self.TEMP}", ()  # noqa: S608
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.temp:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {self.TEMP}")  # noqa: S608

    def where(self, column: str) -> tuple[str, tuple]:
        """``AND column IN (audience)`` (nothing when the audience is everyone)."""
        if self.everyone:
            return "", ()
        return f" AND {column} IN ({self.sql})", tuple(self.params)


def _decide_many(audience: _Audience, channel: str, purpose: Purpose, at: dt.datetime) -> dict[Any, Decision]:
    """Decisions keyed by the database's raw id as text (32 hex digits on SQLite, the canonical
    UUID string on PostgreSQL: see ``_fetch``)."""
    from rapport.people.models import ContactPoint, Person

    person_t, cp_t = Person._meta.db_table, ContactPoint._meta.db_table
    where, params = audience.where("p.id")
    people = _fetch(f"SELECT p.id, p.country, p.timezone FROM {person_t} p WHERE 1=1{where}", params)  # noqa: S608
    # Each distinct Reason gets one bit; a person's reasons are an int (a million people: one
    # dict of ints, no list per person, and the shared Decision is looked up by that int).
    masks: dict[Any, int] = {}
    bits: dict[Reason, int] = {}

    def mark(ids: Iterable[Any], reason: Reason) -> None:
        bit = bits.get(reason)
        if bit is None:
            bit = bits[reason] = 1 << len(bits)
        get = masks.get
        for pid in ids:
            masks[pid] = get(pid, 0) | bit

    where, params = audience.where("person_id")
    status_rows = _fetch(
        f"SELECT person_id, erased_at IS NOT NULL, restricted_at IS NOT NULL, objected_at IS NOT NULL "  # noqa: S608
        f"FROM {PersonPrivacy._meta.db_table} WHERE (erased_at IS NOT NULL OR restricted_at IS NOT NULL "
        f"OR objected_at IS NOT NULL){where}", params)
    mark((r[0] for r in status_rows if r[1]), _r_erased())
    mark((r[0] for r in status_rows if r[2]), _r_restricted())

    kind = CONTACT_KIND[channel]
    entry_kind = SUPPRESSION_KIND.get(channel) if purpose.is_marketing else None
    points = _fetch(f"SELECT person_id, normalised FROM {cp_t} WHERE kind = %s{where}", (kind, *params))  # noqa: S608
    reachable = {r[0] for r in points}
    mark((r[0] for r in people if r[0] not in reachable), _r_no_contact_point(channel))

    if purpose.is_marketing:
        mark((r[0] for r in status_rows if r[3]), _r_objection())
        _mark_consent(people, channel, purpose, at, audience, mark)
        if entry_kind is not None and points:
            internal, listed = _suppression_matches(points, entry_kind, channel)
            mark(internal, _r_suppressed(channel))
            mark(listed, _r_dnc_listed(channel))
        if channel == Channel.PHONE:
            stale = {k for k, r in REGIMES.items() if r.phone_screening_days and _screening_stale(r, at)}
            if stale:
                for regime_key, ids in _by_regime(people).items():
                    if regime_key in stale:
                        mark(ids, _r_dnc_stale(REGIMES[regime_key]))
        _mark_preferences(people, channel, purpose, at, audience, mark)
    by_bit = [(bit, reason) for reason, bit in bits.items()]
    settled = {mask: _decision(tuple(reason for bit, reason in by_bit if mask & bit))
               for mask in set(masks.values())}
    decisions = dict.fromkeys((row[0] for row in people), ALLOWED)
    for pid, mask in masks.items():
        decisions[pid] = settled[mask]
    return decisions


def _mark_consent(people: list[tuple], channel: str, purpose: Purpose, at: dt.datetime,
                  audience: _Audience, mark: Any) -> None:
    where, params = audience.where("person_id")
    states = {r[0]: r[1:] for r in _fetch(
        f"SELECT person_id, status, lawful_basis, expires_at FROM {ConsentState._meta.db_table} "  # noqa: S608
        f"WHERE purpose = %s AND channel = %s{where}", (purpose.key, channel, *params))}
    for regime_key, ids in _by_regime(people).items():
        regime = REGIMES[regime_key]
        opt_in = regime.rule(channel).mode == OPT_IN
        by_cause: dict[tuple[str, str], list[Any]] = defaultdict(list)
        candidates = ids if opt_in else (i for i in ids if i in states)
        # ``consent_cause`` is a pure function of the state's values: worked out once per
        # distinct (status, basis, expiry) instead of once per person.
        causes: dict[tuple, tuple[str, str] | None] = {}
        for pid in candidates:
            state = states.get(pid, _NO_STATE)
            found = causes.get(state, _UNKNOWN)
            if found is _UNKNOWN:
                status, basis, expires = state
                cause = consent_cause(regime, channel, purpose, status, basis or "", _aware(expires), at)
                found = causes[state] = (cause, basis or "") if cause is not None else None
            if found is not None:
                by_cause[found].append(pid)
        for (cause, basis), pids in by_cause.items():
            mark(pids, _consent_reason(regime, channel, purpose, cause, basis))


_NO_STATE: tuple = (None, "", None)
_UNKNOWN: Any = object()


def _mark_preferences(people: list[tuple], channel: str, purpose: Purpose, at: dt.datetime,
                      audience: _Audience, mark: Any) -> None:
    where, params = audience.where("person_id")
    allowed_col = f"{channel}_allowed"
    prefs = {r[0]: r[1:] for r in _fetch(
        f"SELECT person_id, {allowed_col}, max_per_week, quiet_start, quiet_end "  # noqa: S608
        f"FROM {ContactPreference._meta.db_table} WHERE ({allowed_col} = %s OR max_per_week IS NOT NULL "
        f"OR quiet_start IS NOT NULL){where}", (False, *params))}
    mark((pid for pid, p in prefs.items() if not p[0]), _r_channel_refused(channel))
    unsubscribed = _fetch(f"SELECT person_id FROM {TopicSubscription._meta.db_table} "  # noqa: S608
                          f"WHERE topic = %s AND subscribed = %s{where}", (purpose.key, False, *params))
    mark((r[0] for r in unsubscribed), _r_topic_off(purpose))

    counts = dict(_fetch(f"SELECT person_id, COUNT(*) FROM {Touch._meta.db_table} "  # noqa: S608
                         f"WHERE marketing = %s AND occurred_at > %s AND occurred_at <= %s{where} "
                         f"GROUP BY person_id", (True, at - WEEK, at, *params)))
    cap = default_cap()
    capped: dict[int, list[Any]] = defaultdict(list)
    for pid, count in counts.items():
        own = prefs.get(pid)
        limit = own[1] if own is not None and own[1] is not None else cap
        if count >= limit:
            capped[limit].append(pid)
    for pid, p in prefs.items():
        if p[1] is not None and p[1] <= 0 and pid not in counts:
            capped[p[1]].append(pid)
    if cap <= 0:  # a site-wide cap of zero stops marketing to everyone without their own cap
        capped[cap].extend(r[0] for r in people if r[0] not in counts
                           and (r[0] not in prefs or prefs[r[0]][1] is None))
    for limit, pids in capped.items():
        mark(pids, _r_frequency(limit))

    if channel in QUIET_CHANNELS:
        start, end = default_quiet_hours()
        quiet_zones: dict[str, bool] = {}
        own_quiet = {pid: (_time(p[2]), _time(p[3])) for pid, p in prefs.items() if p[2] is not None}
        by_window: dict[tuple[dt.time, dt.time], list[Any]] = defaultdict(list)
        for pid, _country, zone in people:
            window = own_quiet.get(pid)
            if window is None:
                if zone not in quiet_zones:
                    quiet_zones[zone] = in_quiet_hours(local_time(at, zone), start, end)
                if quiet_zones[zone]:
                    by_window[(start, end)].append(pid)
            elif in_quiet_hours(local_time(at, zone), *window):
                by_window[window].append(pid)
        for window, pids in by_window.items():
            mark(pids, _r_quiet(*window))


def _suppression_matches(points: list[tuple], entry_kind: str, channel: str) -> tuple[set, set]:
    """People whose contact points match the internal list / an external list of this channel."""
    entries = SuppressionEntry.objects.filter(kind=entry_kind)
    if not entries.exists():
        return set(), set()
    list_kinds = DNC_LIST_KINDS.get(channel, ())
    internal_q = entries.filter(source__in=suppression.INTERNAL_SOURCES)
    listed_q = entries.filter(source=SuppressionEntry.Source.LIST, list__kind__in=list_kinds)
    with_plain = listed_q.filter(algorithm=SuppressionEntry.Algorithm.SHA256).exists()
    key = suppression.suppression_key()
    import hashlib
    import hmac

    # One HMAC per compared form of every contact point is the per-row cost here, so the work is
    # flat list comprehensions (no dict per digest): the compared forms (emails: the value and,
    # where it differs, its canonical form — ``suppression.stored_forms``), their digests, and
    # the person each belongs to, side by side.
    if entry_kind == SuppressionEntry.Kind.EMAIL:
        canonical = suppression.canonical_email
        extra = [(pid, other) for pid, value in points if (other := canonical(value)) != value]
        owners = [pid for pid, _ in points] + [pid for pid, _ in extra]
        forms = [value for _, value in points] + [form for _, form in extra]
    else:
        pairs = [(pid, form) for pid, value in points for form in suppression.stored_forms(entry_kind, value)]
        owners, forms = [pid for pid, _ in pairs], [form for _, form in pairs]
    encoded = [form.encode() for form in forms]
    hmac_digest = hmac.digest
    digests = [hmac_digest(key, form, "sha256").hex() for form in encoded]
    if with_plain:
        sha256 = hashlib.sha256
        digests += [sha256(form).hexdigest() for form in encoded]
        owners += owners
    return _matching(internal_q, owners, digests), _matching(listed_q, owners, digests)


def _matching(entries: QuerySet, owners: list[Any], digests: list[str]) -> set:
    """The owners whose digest is among ``entries`` (``owners[i]`` owns ``digests[i]``)."""
    if entries.count() <= IN_MEMORY_DIGESTS:
        hits = set(entries.values_list("digest", flat=True))
    else:
        hits = set()
        unique = list(set(digests))
        for start in range(0, len(unique), 500):
            hits.update(entries.filter(digest__in=unique[start:start + 500]).values_list("digest", flat=True))
    return {pid for pid, digest in zip(owners, digests, strict=True) if digest in hits}


def _by_regime(people: list[tuple]) -> dict[str, list[Any]]:
    regime_of: dict[str, str] = {}
    groups: dict[str, list[Any]] = defaultdict(list)
    for pid, country, _zone in people:
        key = regime_of.get(country)
        if key is None:
            key = regime_of[country] = regime_for(country).key
        groups[key].append(pid)
    return groups


def _log_batch(decisions: dict[Any, Decision], *, channel: str, purpose: str, at: dt.datetime,
               actor: Any, context: str) -> DecisionBatch:
    allowed = sum(1 for d in decisions.values() if d.allowed)
    batch = DecisionBatch.objects.create(channel=channel, purpose=purpose, at=at, size=len(decisions),
                                         allowed_count=allowed, requested_by=_as_user(actor),
                                         context=context[:100])
    # A handful of shared Decision objects: their log columns are worked out once each, keyed
    # by identity (hashing a Decision per person cost more than writing its row).
    distinct = {id(d): d for d in decisions.values()}
    table = ContactDecision._meta.db_table
    columns = "batch_id, person_id, allowed, reasons"
    batch_id = int(batch.pk)
    get = decisions.__getitem__
    # In person-id order the person index grows at its end: fewer page splits. The keys are
    # text (see ``_fetch``), so they sort as the database orders the ids.
    order = sorted(decisions)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY's text format, a line per person built from a per-decision suffix (codes are
            # [a-z_,] only: nothing to escape).
            tails = {k: f"\t{'t' if d.allowed else 'f'}\t{_codes(d)}\n" for k, d in distinct.items()}
            head = f"{batch_id}\t"
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for start in range(0, len(order), COPY_CHUNK):
                    copy.write("".join([head + pid + tails[id(get(pid))]
                                        for pid in order[start:start + COPY_CHUNK]]))
        else:
            # The batch id is an int written into the statement: two parameters bound per row.
            cols = {k: (d.allowed, _codes(d)) for k, d in distinct.items()}
            rows = [(pid, *cols[id(get(pid))]) for pid in order]
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({batch_id}, %s, %s, %s)",  # noqa: S608
                               rows)
    return batch


# ------------------------------------------------------------------------------ helpers


_DECISIONS: dict[tuple[Reason, ...], Decision] = {}
_ORDER = {code: i for i, code in enumerate(REASON_ORDER)}


def _decision(reasons: tuple[Reason, ...]) -> Decision:
    """A shared Decision per distinct list of reasons (a million answers, a handful of objects).

    Cached under the reasons as marked too, so most people cost one dict lookup, not a sort.
    """
    if not reasons:
        return ALLOWED
    decision = _DECISIONS.get(reasons)
    if decision is None:
        ordered = tuple(sorted(reasons, key=lambda r: _ORDER[r.code]))
        decision = _DECISIONS.get(ordered)
        if len(_DECISIONS) > 10_000:
            _DECISIONS.clear()
        if decision is None:
            decision = _DECISIONS[ordered] = Decision(False, ordered)
        _DECISIONS[reasons] = decision
    return decision


def _codes(decision: Decision) -> str:
    return ",".join(dict.fromkeys(r.code for r in decision.reasons))


def _check(channel: str, purpose: str) -> Purpose:
    if channel not in Channel.values:
        raise ValueError(f"Unknown channel {channel!r}; choose one of {', '.join(Channel.values)}.")
    return get_purpose(purpose)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector off while a batch runs (back on afterwards, as it was).

    A million-person batch allocates millions of row tuples, none of them in cycles; the
    collector's full passes over them made a million people cost 15× a hundred thousand.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fetch(sql: str, params: tuple | list) -> list[tuple]:
    """Rows of a raw query; on PostgreSQL ``uuid`` columns come back as text.

    The batch handles a few million ids: psycopg's ``uuid.UUID`` objects cost more than the
    rest of a row, and the log's COPY wants text anyway (SQLite stores 32 hex digits already).
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg.types.string import TextLoader

            cursor.cursor.adapters.register_loader("uuid", TextLoader)
        cursor.execute(sql, params)
        return cursor.fetchall()


def _db_id(value: Any) -> Any:
    """A person id as the database stores it (uuid on PostgreSQL, 32 hex chars on SQLite)."""
    value = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return value if connection.vendor == "postgresql" else value.hex


def _to_uuid_keys(raw: dict[Any, Decision]) -> Mapping[Any, Decision]:
    return _TextKeyed(raw, hex_keys=connection.vendor != "postgresql")


class _TextKeyed(Mapping):
    """Decisions keyed by person id (UUID) over the database's text keys (see ``_fetch``).

    Building a million UUID objects up front took longer than deciding; here a key becomes a
    UUID only when the keys are iterated, and lookups by UUID (or its string) are direct.
    """

    __slots__ = ("_hex", "_raw")

    def __init__(self, raw: dict[str, Decision], *, hex_keys: bool) -> None:
        self._raw = raw
        self._hex = hex_keys

    def __getitem__(self, key: Any) -> Decision:
        try:
            value = key if isinstance(key, uuid.UUID) else uuid.UUID(str(key))
        except ValueError as err:
            raise KeyError(key) from err
        return self._raw[value.hex if self._hex else str(value)]

    def __iter__(self) -> Iterator[uuid.UUID]:
        return (uuid.UUID(k) for k in self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def values(self) -> Any:
        return self._raw.values()


_ZONES: dict[str, Any] = {}


def _zone(name: str) -> Any:
    zone = _ZONES.get(name)
    if zone is None:
        try:
            zone = zoneinfo.ZoneInfo(name) if name else zoneinfo.ZoneInfo(settings.TIME_ZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        _ZONES[name] = zone
    return zone


def _aware(value: Any) -> dt.datetime | None:
    """A timestamp from a raw query as an aware datetime (SQLite returns text, naive UTC)."""
    if value is None or (isinstance(value, dt.datetime) and value.tzinfo is not None):
        return value
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _time(value: Any) -> dt.time:
    return value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value))


def _as_user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None
