"""C4 — the contact gate: may we contact this person, on this channel, for this purpose, now?

``decide`` answers for one person; ``decide_batch`` for an audience with a fixed number of
set-based queries (no loop of ``decide``) and gives the same answers. Both return every
reason that applies, in one fixed order, and log every decision (``DecisionBatch``, its
distinct ``DecisionOutcome``s and ``DecisionPack``s saying which person got which;
``decisions_about`` reads a person's decisions back).

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

import bisect
import contextlib
import datetime as dt
import gc
import hashlib
import marshal
import multiprocessing
import os
import sys
import uuid
import zoneinfo
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from rapport.privacy import suppression
from rapport.privacy.jurisdictions import (
    COUNTRY_PHONE_LIST,
    COUNTRY_REGIME,
    OPT_IN,
    PHONE_LISTS,
    PhoneList,
    Regime,
    phone_list_for,
    regime_for,
)
from rapport.privacy.models import (
    Channel,
    ConsentBasis,
    ConsentState,
    ContactPreference,
    DecisionBatch,
    DecisionOutcome,
    DecisionPack,
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
    Channel.PHONE: (SuppressionList.Kind.TPS, SuppressionList.Kind.CTPS, SuppressionList.Kind.US_DNC,
                    SuppressionList.Kind.CA_DNCL, SuppressionList.Kind.PHONE_DNC),
    Channel.POST: (SuppressionList.Kind.MPS,),
    Channel.EMAIL: (SuppressionList.Kind.EMAIL_DNC,),
}
QUIET_CHANNELS = (Channel.PHONE, Channel.SMS)
WEEK = dt.timedelta(days=7)
# Above this many digests of one kind, matching queries the database instead of a Python set.
IN_MEMORY_DIGESTS = 500_000
# How the batch matches the suppression lists' HMAC entries: None joins the contact points'
# stored digests (``digests``, decision 0018); "hashing" hashes every address here (the
# tests run both). Pre-hashed (plain SHA-256) list entries are always matched by hashing.
SUPPRESSION_BY: str | None = None
# How ``decide_batch`` gets the codes: None chooses by database ("join" on PostgreSQL,
# "ordered" on SQLite, decision 0021); the tests set it to check every way on both databases.
STRATEGY: str | None = None
# SQLite: the indexes the ordered query walks (migration 0007), by the table they index. Where
# one is missing the batch falls back to "scan".
ORDERED_INDEXES = {"person": "privacy_gate_person", "point": "privacy_gate_point",
                   "state": "privacy_gate_state", "touch": "privacy_gate_touch"}
# For querysets of at least this many people SQLite's marketing facts may be read by a forked
# helper process meanwhile, where that is safe (``_Helper``, decision 0018). Off (None): at
# 1,000,000 people on two shared cores it saved nothing (6.0–7.3 s against 5.9–6.3 s serial,
# more CPU in all); the tests switch it on to keep it correct.
PARALLEL_FROM: int | None = None
# Id lists longer than this are loaded into a temporary table rather than an IN (...) list.
INLINE_IDS = 500
# PostgreSQL: the joined query's work_mem, and up to how many contact points (the planner's
# estimate) "has a contact point" is one hash of their person ids (about 100 bytes each).
BATCH_WORK_MEM = "256MB"
HASHED_POINTS = 2_000_000
# About this many people (at most 16× as many) per DecisionPack row of the log.
PACK_PEOPLE = 512


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
            _log({_db_text(person.pk): 0}, {0: decision}, channel=channel, purpose=purpose, at=at, actor=actor,
                 context=context)
    return decision


def decide_batch(people: QuerySet | Iterable[Any], channel: str, purpose: str,
                 at: dt.datetime | None = None, *, actor: Any = None, context: str = "",
                 log: bool = True) -> Mapping[Any, Decision]:
    """Decisions for an audience (a Person queryset, or ids / people), keyed by person id.

    A fixed number of set-based queries whatever the audience size: the database works out
    each person's facts as one code, the rules run once per distinct code. The log is one
    batch, its distinct outcomes and packed person ids (``_log``).
    """
    at = at or timezone.now()
    purpose_def = _check(channel, purpose)
    # A large audience's marketing facts may be read by a forked process meanwhile (started
    # first, outside this transaction: ``_Helper``).
    with _no_cyclic_gc(), _Helper(people, channel, purpose_def, at) as helper, transaction.atomic(), \
            _Audience(people) as audience:
        codes, table = _decide_many(audience, channel, purpose_def, at, helper=helper)
        if log:
            _log(codes, table, channel=channel, purpose=purpose, at=at, actor=actor, context=context)
    return _Answers(codes, table, hex_keys=connection.vendor != "postgresql")


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


def _r_dnc_stale(phone_list: PhoneList) -> Reason:
    return Reason("dnc_list", f"Telephone numbers have not been screened against the {phone_list.name} "
                              f"in the last {phone_list.screening_days} days.")


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
        phone_list = phone_list_for(person.country) if channel == Channel.PHONE else None
        if phone_list is not None and _screening_stale(phone_list, at):
            reasons.append(_r_dnc_stale(phone_list))
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


def _screening_stale(phone_list: PhoneList, at: dt.datetime) -> bool:
    """Whether ``phone_list`` was last screened longer ago than it allows (or never)."""
    latest = (SuppressionList.objects.filter(kind__in=phone_list.list_kinds)
              .aggregate(latest=Max("screened_on"))["latest"])
    if latest is None:
        return True
    today = timezone.localdate(at)
    return (today - latest).days > phone_list.screening_days


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


class _Helper:
    """A forked process reading a large audience's country classes and marketing facts —
    consent states, preferences, topics, touches — while this one reads the ids, their status
    and contact points (decision 0018; SQLite's scans, which run in this process otherwise).

    Used for a queryset of at least ``PARALLEL_FROM`` people, outside any transaction and from
    a single-threaded process (``core.forking``: the child opens its own connection and must not
    inherit a lock), when nothing else needs those rows here (no quiet hours, a site-wide cap
    above zero, suppression by stored digests). The child reads in one snapshot of its own and
    sends back each person's bits (``marshal``); suppression and the log stay with the parent,
    in its one transaction.
    """

    def __init__(self, people: Any, channel: str, purpose: Purpose, at: dt.datetime) -> None:
        self.args = (people, channel, purpose, at)
        self.process: Any = None
        self.receive: Any = None

    def __enter__(self) -> _Helper:
        from rapport.core.forking import fork_possible, fork_safe_by_default

        people, channel, purpose, _ = self.args
        if (PARALLEL_FROM is None or not isinstance(people, QuerySet) or not purpose.is_marketing
                or _strategy() != "scan"
                or not fork_possible(connection) or not fork_safe_by_default() or channel in QUIET_CHANNELS
                or default_cap() <= 0 or _suppression_mode(channel, purpose)[1]
                or people.order_by().count() < PARALLEL_FROM):
            return self
        context = multiprocessing.get_context("fork")
        self.receive, send = context.Pipe(duplex=False)
        connections.close_all()  # the child must not share this process's connections
        self.process = context.Process(target=_read_marketing_facts, args=(send, *self.args), daemon=True,
                                       name="rapport-gate-helper")
        self.process.start()
        send.close()
        return self

    @property
    def active(self) -> bool:
        return self.process is not None

    def facts(self) -> dict[str, int]:
        """The child's bits per person (only people with some)."""
        try:
            ok, payload = marshal.loads(self.receive.recv_bytes())  # noqa: S302 - our own child's bytes
        except EOFError as err:
            raise RuntimeError(f"the gate's helper process ended without an answer "
                               f"(exit code {self.process.exitcode})") from err
        if not ok:
            raise RuntimeError(f"the gate's helper process failed: {payload}")
        return payload

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None:
            self.receive.close()
            self.process.join(timeout=5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()


@contextlib.contextmanager
def _read_snapshot() -> Iterator[None]:
    """One snapshot for the helper process's reads: a transaction; on SQLite a deferred one
    (Django's transactions begin IMMEDIATE there, asking for the write lock the parent holds)."""
    if connection.vendor != "sqlite":
        with transaction.atomic():
            yield
        return
    with connection.cursor() as cursor:
        cursor.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")


def _read_marketing_facts(send: Any, people: Any, channel: str, purpose: Purpose, at: dt.datetime) -> None:
    """The forked helper: each person's country class and marketing bits, sent back."""
    try:
        try:
            plan = _plan(channel, purpose, at)
            with _read_snapshot(), _Audience(people) as audience:
                facts: dict[str, int] = dict(_class_rows(plan, *audience.where("p.id"), with_zones=False))
                _marketing_facts(plan, *audience.where("person_id"), facts)
            payload = marshal.dumps((True, facts))
        except Exception as err:  # the parent raises it
            payload = marshal.dumps((False, f"{type(err).__name__}: {err}"))
        finally:
            connections.close_all()
        send.send_bytes(payload)
        send.close()
    finally:
        os._exit(0)  # no atexit handlers or test hooks of the parent in the child


# A person's facts, packed by the database into one integer ("code"): the flags below, then
# small fields. ``_settle`` turns each distinct code into a Decision with the same rule
# functions ``decide`` uses, so a million people cost one fetched (id, code) row each and the
# rules run once per distinct code.
F_ERASED, F_RESTRICTED, F_NO_POINT, F_OBJECTION = 1, 2, 4, 8
F_TOPIC_OFF, F_REFUSED, F_CAP_DEFAULT, F_SUPPRESSED, F_LISTED, F_QUIET = 16, 32, 64, 128, 256, 512
CLASS_SHIFT, STATUS_SHIFT, BASIS_SHIFT, EXPIRED_SHIFT, OWN_CAP_SHIFT, WINDOW_SHIFT = 10, 15, 17, 21, 24, 40
STATUS_INDEX = {None: 0, ConsentState.Status.GRANTED: 1, ConsentState.Status.PENDING: 2,
                ConsentState.Status.WITHDRAWN: 3}
BASIS_INDEX = {"": 0, **{basis: i for i, basis in enumerate(ConsentBasis.values, start=1)}}
_STATUS_OF = {i: status for status, i in STATUS_INDEX.items()}
_BASIS_OF = {i: basis for basis, i in BASIS_INDEX.items()}


@dataclass(frozen=True)
class _Plan:
    """What the codes of one batch mean: country classes, stale phone lists, quiet windows."""

    channel: str
    purpose: Purpose
    at: dt.datetime
    # Class 0 is the strict default (unknown countries); then one class per distinct
    # (regime, national telephone list) among the countries the rules name.
    classes: list[tuple[Regime, PhoneList | None]]
    country_class: dict[str, int]
    stale: frozenset[str]
    windows: list[tuple[dt.time, dt.time]]


def _decide_many(audience: _Audience, channel: str, purpose: Purpose, at: dt.datetime, *,
                 helper: _Helper | None = None) -> tuple[dict[str, int], dict[int, Decision]]:
    """Each person's code keyed by the database's raw id as text (32 hex digits on SQLite, the
    canonical UUID string on PostgreSQL: see ``_fetch``), in id order, and the Decision of
    each distinct code.

    Two ways to the same codes (the tests run both on both databases): PostgreSQL joins
    everything in one query (hash joins, server side); SQLite scans each table once and the
    codes are combined here (its nested-loop joins cost an index probe per person and table,
    several times a scan's cost per row, and most of the tables are sparse).
    """
    plan = _plan(channel, purpose, at)
    entry_kind, hashing = _suppression_mode(channel, purpose)
    by_digests = SUPPRESSION_BY != "hashing"
    codes, points = _codes_of(audience, plan, with_values=hashing, helper=helper)
    if entry_kind is not None and codes:
        if hashing:
            if points is None:
                points = _points(audience, channel, with_values=True)
            internal, listed = _suppression_matches(points, entry_kind, channel, keyed=not by_digests)
            for pid in internal:
                codes[pid] |= F_SUPPRESSED
            for pid in listed:
                codes[pid] |= F_LISTED
        if by_digests:
            internal, listed = _suppression_by_digests(audience, entry_kind, channel)
            for pid in internal:
                if pid in codes:
                    codes[pid] |= F_SUPPRESSED
            for pid in listed:
                if pid in codes:
                    codes[pid] |= F_LISTED
    return codes, {code: _settle(code, plan) for code in set(codes.values())}


def _codes_of(audience: _Audience, plan: _Plan, *, with_values: bool,
              helper: _Helper | None = None) -> tuple[dict[str, int], list[tuple] | None]:
    """The codes before suppression (and the contact points with values when ``with_values``)."""
    strategy = _strategy()
    if strategy == "ordered":
        return _codes_in_order(audience, plan), None
    if strategy == "join":
        with _batch_work_mem() as hashed_points:
            rows = _fetch(*_code_query(audience, plan, hashed_points=hashed_points))
        return (_with_quiet_hours(rows, plan) if len(rows[0]) > 2 else dict(rows)) if rows else {}, None
    return _codes_by_scans(audience, plan, with_values=with_values, helper=helper)


def _strategy() -> str:
    """The way to the codes on this database: ``STRATEGY``, else "join" on PostgreSQL and
    "ordered" on SQLite where its indexes exist (else "scan")."""
    if STRATEGY:
        return STRATEGY
    if connection.vendor == "postgresql":
        return "join"
    return "ordered" if _ordered_hints() is not None else "scan"


def _ordered_hints() -> dict[str, str] | None:
    """SQLite: `` INDEXED BY …`` for each table the ordered query walks (migration 0007), or None
    when one of the indexes is missing; elsewhere no hints (the planner's own choice)."""
    if connection.vendor != "sqlite":
        return dict.fromkeys(ORDERED_INDEXES, "")
    names = tuple(ORDERED_INDEXES.values())
    marks = ", ".join(["%s"] * len(names))
    found = {name for (name,) in _fetch(f"SELECT name FROM sqlite_master WHERE type = 'index' "  # noqa: S608
                                        f"AND name IN ({marks})", names)}
    if len(found) < len(names):
        return None
    return {table: f" INDEXED BY {name}" for table, name in ORDERED_INDEXES.items()}


def _suppression_mode(channel: str, purpose: Purpose) -> tuple[str | None, bool]:
    """The suppression entry kind the batch matches (None: no entries of it, or not
    marketing), and whether it hashes the audience's addresses here to do so."""
    entry_kind = SUPPRESSION_KIND.get(channel) if purpose.is_marketing else None
    if entry_kind is None or not SuppressionEntry.objects.filter(kind=entry_kind).exists():
        return None, False
    # Pre-hashed (plain SHA-256) lists can only be matched by hashing the addresses.
    return entry_kind, SUPPRESSION_BY == "hashing" or _listed_entries(entry_kind, channel).filter(
        algorithm=SuppressionEntry.Algorithm.SHA256).exists()


def _suppression_by_digests(audience: _Audience, entry_kind: str, channel: str) -> tuple[list, list]:
    """People on the internal list / an external list of this channel (HMAC entries), from the
    contact points' stored digests (``digests``): the audience's missing ones made first."""
    from rapport.privacy import digests

    where, params = audience.where("cp.person_id")
    digests.refresh(where, params)
    keyed = SuppressionEntry.objects.filter(kind=entry_kind, algorithm=SuppressionEntry.Algorithm.HMAC_SHA256)
    kind = CONTACT_KIND[channel]
    return (digests.suppressed_people(kind, keyed.filter(source__in=suppression.INTERNAL_SOURCES)),
            digests.suppressed_people(kind, keyed.filter(source=SuppressionEntry.Source.LIST,
                                                         list__kind__in=DNC_LIST_KINDS.get(channel, ()))))


def _listed_entries(entry_kind: str, channel: str) -> QuerySet:
    return SuppressionEntry.objects.filter(kind=entry_kind, source=SuppressionEntry.Source.LIST,
                                           list__kind__in=DNC_LIST_KINDS.get(channel, ()))


@contextlib.contextmanager
def _batch_work_mem() -> Iterator[bool]:
    """PostgreSQL: the joined query's ``work_mem`` (``BATCH_WORK_MEM``) for its duration, and
    whether the contact points' person ids fit it as one hash (``HASHED_POINTS``).

    With the default 4 MB every hash and the final sort of a million people spilled to
    temporary files; set with ``set_config(..., true)``, so it never outlives the transaction,
    and put back as it was after the query.
    """
    from rapport.people.models import ContactPoint

    if connection.vendor != "postgresql":  # SQLite builds a temporary index for an IN (…)
        yield HASHED_POINTS >= 0
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem'), (SELECT reltuples FROM pg_class WHERE oid = %s::regclass)",
                       [ContactPoint._meta.db_table])
        previous, points = cursor.fetchone()
        cursor.execute("SELECT set_config('work_mem', %s, true)", [BATCH_WORK_MEM])
        try:
            yield (points or 0) <= HASHED_POINTS
        finally:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [previous])


def _points(audience: _Audience, channel: str, *, with_values: bool) -> list[tuple]:
    from rapport.people.models import ContactPoint

    where, params = audience.where("person_id")
    columns = "person_id, normalised" if with_values else "person_id"
    return _fetch(f"SELECT {columns} FROM {ContactPoint._meta.db_table} WHERE kind = %s{where}",  # noqa: S608
                  (CONTACT_KIND[channel], *params))


def _codes_in_order(audience: _Audience, plan: _Plan) -> dict[str, int]:
    """The codes (before suppression) from one walk of the audience in id order (SQLite's way,
    decision 0021), then the sparse tables' rows.

    The query reads each person from the person index (id, country, time zone) and probes the
    dense facts — has a contact point, the consent state — in indexes that lead with the person
    id (migration 0007): probes in key order read each index page once, and nothing is looked up
    in a table. One ``(id, code)`` row per person reaches Python. Privacy status, the frequency
    cap, preferences and topic refusals hold for a few percent of people: read where they hold
    and OR-ed in (``_sparse_facts``).
    """
    from rapport.people.models import ContactPoint, Person

    hints = _ordered_hints()
    if hints is None:  # the indexes are gone: the same codes by scans
        return _codes_by_scans(audience, plan, with_values=False)[0]
    marketing = plan.purpose.is_marketing
    quiet = marketing and plan.channel in QUIET_CHANNELS
    adapt = connection.ops.adapt_datetimefield_value
    terms = [f"(CASE WHEN EXISTS (SELECT 1 FROM {ContactPoint._meta.db_table} cp{hints['point']} "  # noqa: S608
             f"WHERE cp.person_id = p.id AND cp.kind = %s) THEN 0 ELSE {F_NO_POINT} END)"]
    params: list[Any] = [CONTACT_KIND[plan.channel]]
    if marketing:
        classes = _stored_country_classes(plan)
        if classes:
            terms.append(f"(CASE p.country {' '.join(['WHEN %s THEN %s'] * len(classes))} ELSE 0 END)")
            params += [v for country, index in classes.items() for v in (country, index << CLASS_SHIFT)]
        terms.append(f"COALESCE((SELECT {_consent_term('cs.')} FROM {ConsentState._meta.db_table} "  # noqa: S608
                     f"cs{hints['state']} WHERE cs.person_id = p.id AND cs.purpose = %s AND cs.channel = %s), 0)")
        params += [adapt(plan.at), plan.purpose.key, plan.channel]
        if default_cap() <= 0:  # a site-wide cap of zero: reached by everyone without their own cap
            terms.append(str(F_CAP_DEFAULT))
    where, where_params = audience.where("p.id")
    # Everyone: walk the whole person index. A part of them: the planner starts from the part.
    person_hint = hints["person"] if audience.everyone else ""
    rows = _fetch(f"SELECT p.id, {' + '.join(terms)}{', p.timezone' if quiet else ''} "  # noqa: S608
                  f"FROM {Person._meta.db_table} p{person_hint} WHERE 1=1{where} ORDER BY p.id",
                  (*params, *where_params))
    if quiet:
        zones = {row[0]: row[2] for row in rows}
        codes = {row[0]: row[1] for row in rows}
    else:
        codes = dict(rows)
    del rows
    prefs = _sparse_facts(plan, audience, codes, hints)
    if quiet:
        codes = _with_quiet_hours([(pid, code, zones[pid], *prefs.get(pid, (None, None)))
                                   for pid, code in codes.items()], plan)
    return codes


def _sparse_facts(plan: _Plan, audience: _Audience, codes: dict[str, int], hints: dict[str, str]) -> dict[str, tuple]:
    """Privacy status, the site-wide frequency cap, channel refusal, own caps and topic refusals
    of the audience OR-ed into ``codes`` (its people only), each read where it holds (a few
    percent of people); returns the own quiet hours ``(start, end)`` of the people who set them."""
    marketing = plan.purpose.is_marketing
    where, params = audience.where("person_id")
    objected = f" + (CASE WHEN objected_at IS NOT NULL THEN {F_OBJECTION} ELSE 0 END)" if marketing else ""
    _or_into(codes, _fetch(
        f"SELECT person_id, (CASE WHEN erased_at IS NOT NULL THEN {F_ERASED} ELSE 0 END) "  # noqa: S608
        f"+ (CASE WHEN restricted_at IS NOT NULL THEN {F_RESTRICTED} ELSE 0 END){objected} "
        f"FROM {PersonPrivacy._meta.db_table} WHERE (erased_at IS NOT NULL OR restricted_at IS NOT NULL"
        f"{' OR objected_at IS NOT NULL' if marketing else ''}){where}", params))
    quiet_hours: dict[str, tuple] = {}
    if not marketing:
        return quiet_hours
    adapt = connection.ops.adapt_datetimefield_value
    week = (True, adapt(plan.at - WEEK), adapt(plan.at))
    if default_cap() > 0:  # (a cap of zero is in the walk's code already)
        # The people at the site-wide cap: the touches' person index read in person order and
        # grouped as it goes.
        _or_into(codes, _fetch(
            f"SELECT person_id, {F_CAP_DEFAULT} FROM {Touch._meta.db_table}{hints['touch']} "  # noqa: S608
            f"WHERE marketing = %s AND occurred_at > %s AND occurred_at <= %s{where} "
            "GROUP BY person_id HAVING COUNT(*) >= %s", (*week, *params, default_cap())))
    # A cap of their own replaces the site-wide one: their touches are counted here.
    allowed = f"{plan.channel}_allowed"
    pr_where, pr_params = audience.where("pr.person_id")
    for pid, channel_allowed, own, start, end, count in _fetch(
            f"SELECT pr.person_id, pr.{allowed}, pr.max_per_week, pr.quiet_start, pr.quiet_end, "  # noqa: S608
            f"(CASE WHEN pr.max_per_week IS NULL THEN 0 ELSE (SELECT COUNT(*) FROM {Touch._meta.db_table} t"
            f"{hints['touch']} WHERE t.person_id = pr.person_id AND t.marketing = %s AND t.occurred_at > %s "
            f"AND t.occurred_at <= %s) END) FROM {ContactPreference._meta.db_table} pr "
            f"WHERE (pr.{allowed} = %s OR pr.max_per_week IS NOT NULL OR pr.quiet_start IS NOT NULL){pr_where}",
            (*week, False, *pr_params)):
        code = codes.get(pid)
        if code is None:
            continue
        if not channel_allowed:
            code |= F_REFUSED
        if own is not None:
            code &= ~F_CAP_DEFAULT
            if count >= own:
                code |= (own + 1) << OWN_CAP_SHIFT
        codes[pid] = code
        if start is not None:
            quiet_hours[pid] = (start, end)
    _or_into(codes, _fetch(f"SELECT person_id, {F_TOPIC_OFF} FROM {TopicSubscription._meta.db_table} "  # noqa: S608
                           f"WHERE topic = %s AND subscribed = %s{where}", (plan.purpose.key, False, *params)))
    return quiet_hours


def _or_into(codes: dict[str, int], rows: list[tuple]) -> None:
    """``codes[id] |= bits`` for each (id, bits) row of someone in ``codes``."""
    for pid, bits in rows:
        if pid in codes:
            codes[pid] |= bits


def _codes_by_scans(audience: _Audience, plan: _Plan, *, with_values: bool,
                    helper: _Helper | None = None) -> tuple[dict[str, int], list[tuple] | None]:
    """The codes from one scan per table (only the rows that say something, for the sparse
    ones), combined in a dict; also the contact points with their values when suppression
    hashes them (``with_values``)."""
    from rapport.people.models import Person

    marketing = plan.purpose.is_marketing
    person_t = Person._meta.db_table
    where, params = audience.where("p.id")
    quiet = marketing and plan.channel in QUIET_CHANNELS
    # The ids alone come in id order from the primary key's index; the country class (for the
    # people whose country has rules) and time zone come from a scan in table order.
    ids = _fetch(f"SELECT p.id FROM {person_t} p WHERE 1=1{where} ORDER BY p.id", params)  # noqa: S608
    codes = dict.fromkeys(map(itemgetter(0), ids), 0)
    del ids
    zones: dict[str, str] = {}
    helped = marketing and helper is not None and helper.active
    if marketing and not helped:
        rows = _class_rows(plan, where, params, with_zones=quiet)
        if quiet:
            zones = {row[0]: row[2] for row in rows}
        # Every code is still 0 here: the rows' (id, class) pairs replace them in C, in place
        # (the keys keep their id order).
        codes.update([row[:2] for row in rows] if quiet else rows)
        del rows
    where, params = audience.where("person_id")

    objected = f" + (CASE WHEN objected_at IS NOT NULL THEN {F_OBJECTION} ELSE 0 END)" if marketing else ""
    status = (f"SELECT person_id, (CASE WHEN erased_at IS NOT NULL THEN {F_ERASED} ELSE 0 END) "  # noqa: S608
              f"+ (CASE WHEN restricted_at IS NOT NULL THEN {F_RESTRICTED} ELSE 0 END){objected} "
              f"FROM {PersonPrivacy._meta.db_table} WHERE (erased_at IS NOT NULL OR restricted_at IS NOT NULL"
              f"{' OR objected_at IS NOT NULL' if marketing else ''}){where}")
    flagged = _fetch(status, params)
    points = _points(audience, plan.channel, with_values=with_values)
    flagged += [(pid, F_NO_POINT) for pid in codes.keys() - set(map(itemgetter(0), points))]
    if helped:
        # The country classes and marketing bits, read by the helper meanwhile, replace the
        # zero codes in C (only the audience's people: its snapshot may hold someone newer);
        # the flags read here are added after.
        facts = helper.facts()
        for pid in facts.keys() - codes.keys():
            del facts[pid]
        codes.update(facts)
    for pid, flags in flagged:
        codes[pid] |= flags
    if not marketing or helped:
        return codes, points if with_values else None

    prefs, touched, own_caps = _marketing_facts(plan, where, params, codes)
    if default_cap() <= 0:  # a site-wide cap of zero stops marketing to everyone without their own cap
        for pid in codes.keys() - touched.keys() - own_caps.keys():
            codes[pid] |= F_CAP_DEFAULT

    if quiet:
        rows = [(pid, code, zones[pid], *(prefs[pid][2:] if pid in prefs else (None, None)))
                for pid, code in codes.items()]
        codes = _with_quiet_hours(rows, plan)
    return codes, points if with_values else None


def _class_rows(plan: _Plan, where: str, params: tuple, *, with_zones: bool) -> list[tuple]:
    """(id, country class in the code) of the audience's people whose country has rules
    (``where`` on ``p.id``); of everyone, with their time zone, when ``with_zones``."""
    from rapport.people.models import Person

    person_t = Person._meta.db_table
    classes = _stored_country_classes(plan)
    case = " ".join(["WHEN %s THEN %s"] * len(classes))
    case_params = [v for pair in classes.items() for v in (pair[0], pair[1] << CLASS_SHIFT)]
    term = f"(CASE p.country {case} ELSE 0 END)" if classes else "0"
    if with_zones:
        return _fetch(f"SELECT p.id, {term}, p.timezone FROM {person_t} p WHERE 1=1{where}",  # noqa: S608
                      (*case_params, *params))
    if not classes:
        return []
    marks = ", ".join(["%s"] * len(classes))
    return _fetch(f"SELECT p.id, {term} FROM {person_t} p WHERE p.country IN ({marks}){where}",  # noqa: S608
                  (*case_params, *classes, *params))


def _marketing_facts(plan: _Plan, where: str, params: tuple, codes: dict[str, int]) -> tuple[dict, dict, dict]:
    """Consent, channel refusal, topic and frequency-cap bits of the audience (``where`` on
    ``person_id``), OR-ed into ``codes`` (a person missing from it is added); also the
    preferences, touch counts and own caps read."""
    adapt = connection.ops.adapt_datetimefield_value
    get = codes.get
    consent = (f"SELECT person_id, {_consent_term('')} FROM {ConsentState._meta.db_table} "  # noqa: S608
               f"WHERE purpose = %s AND channel = %s{where}")
    for pid, bits in _fetch(consent, (adapt(plan.at), plan.purpose.key, plan.channel, *params)):
        codes[pid] = get(pid, 0) | bits
    allowed = f"{plan.channel}_allowed"
    prefs = {r[0]: r[1:] for r in _fetch(
        f"SELECT person_id, {allowed}, max_per_week, quiet_start, quiet_end "  # noqa: S608
        f"FROM {ContactPreference._meta.db_table} WHERE ({allowed} = %s OR max_per_week IS NOT NULL "
        f"OR quiet_start IS NOT NULL){where}", (False, *params))}
    for pid, (channel_allowed, *_) in prefs.items():
        if not channel_allowed:
            codes[pid] = get(pid, 0) | F_REFUSED
    for (pid,) in _fetch(f"SELECT person_id FROM {TopicSubscription._meta.db_table} "  # noqa: S608
                         f"WHERE topic = %s AND subscribed = %s{where}", (plan.purpose.key, False, *params)):
        codes[pid] = get(pid, 0) | F_TOPIC_OFF

    # Frequency cap: touches counted per person; compared with the person's own cap or the default.
    touched = dict(_fetch(f"SELECT person_id, COUNT(*) FROM {Touch._meta.db_table} "  # noqa: S608
                          f"WHERE marketing = %s AND occurred_at > %s AND occurred_at <= %s{where} "
                          f"GROUP BY person_id", (True, adapt(plan.at - WEEK), adapt(plan.at), *params)))
    cap = default_cap()
    own_caps = {pid: p[1] for pid, p in prefs.items() if p[1] is not None}
    for pid, count in touched.items():
        own = own_caps.get(pid)
        if own is None:
            if count >= cap:
                codes[pid] = get(pid, 0) | F_CAP_DEFAULT
        elif count >= own:
            codes[pid] = get(pid, 0) | (own + 1) << OWN_CAP_SHIFT
    for pid, own in own_caps.items():
        if own <= 0 and pid not in touched:
            codes[pid] = get(pid, 0) | (own + 1) << OWN_CAP_SHIFT
    return prefs, touched, own_caps


def _stored_country_classes(plan: _Plan) -> dict[str, int]:
    """The country values stored on people (as typed) whose class is not the default, with it."""
    from rapport.people.models import Person

    classes = {}
    for (value,) in _fetch(f"SELECT DISTINCT country FROM {Person._meta.db_table}", ()):  # noqa: S608
        phone = plan.channel == Channel.PHONE and plan.purpose.is_marketing
        entry = (regime_for(value), phone_list_for(value) if phone else None)
        index = plan.classes.index(entry)
        if index:
            classes[value] = index
    return classes


def _class_term(plan: _Plan) -> str:
    """SQL for a person's country class (``_Plan.classes``) already shifted into the code."""
    if not plan.purpose.is_marketing:
        return "0"
    by_class: dict[int, list[str]] = defaultdict(list)
    for country, index in plan.country_class.items():
        if index:
            by_class[index].append(country)
    # Country codes come from the rules (two letters each), not from input.
    whens = " ".join(f"WHEN UPPER(p.country) IN ({', '.join(repr(c) for c in countries)}) THEN {index}"
                     for index, countries in sorted(by_class.items()))
    return f"(CASE {whens} ELSE 0 END) * {1 << CLASS_SHIFT}" if whens else "0"


def _consent_term(alias: str) -> str:
    """SQL for the consent state's part of the code (status, basis, expired); one ``%s``: now."""
    status = " ".join(f"WHEN '{s}' THEN {i}" for s, i in STATUS_INDEX.items() if s)
    basis = " ".join(f"WHEN '{b}' THEN {i}" for b, i in BASIS_INDEX.items() if b)
    return (f"(CASE {alias}status {status} ELSE 0 END) * {1 << STATUS_SHIFT} "
            f"+ (CASE {alias}lawful_basis {basis} ELSE 0 END) * {1 << BASIS_SHIFT} "
            f"+ (CASE WHEN {alias}expires_at <= %s THEN {1 << EXPIRED_SHIFT} ELSE 0 END)")


def _plan(channel: str, purpose: Purpose, at: dt.datetime) -> _Plan:
    phone = channel == Channel.PHONE and purpose.is_marketing
    classes: list[tuple[Regime, PhoneList | None]] = [(regime_for(None), None)]
    country_class: dict[str, int] = {}
    for country in sorted({*COUNTRY_REGIME, *COUNTRY_PHONE_LIST}):
        entry = (regime_for(country), phone_list_for(country) if phone else None)
        if entry not in classes:
            classes.append(entry)
        country_class[country] = classes.index(entry)
    stale = frozenset(key for key, p in PHONE_LISTS.items() if phone and _screening_stale(p, at))
    return _Plan(channel, purpose, at, classes, country_class, stale, [default_quiet_hours()])


def _code_query(audience: _Audience, plan: _Plan, *, hashed_points: bool = True) -> tuple[str, list]:
    """One query: per person of the audience, in id order, ``(id, code)`` — and for phone and
    SMS marketing the time zone and own quiet hours (quiet hours depend on the clock).

    Contact points and touches are joined as grouped sub-selects rather than correlated
    sub-queries, so the planner can hash-join them instead of probing once per person.
    """
    from rapport.people.models import ContactPoint, Person

    adapt = connection.ops.adapt_datetimefield_value
    where, where_params = audience.where("person_id")
    # "Has a contact point" as a hashed IN: PostgreSQL builds one hash of the points' person
    # ids; a joined DISTINCT sub-select was first aggregated, then hashed again by each
    # parallel worker, and spilled to disk past work_mem (9 of 14 s at 1,000,000 people).
    # Past what fits the batch's work_mem the planner cannot hash the IN and would scan the points
    # once per person: larger tables get the joined sub-select, which spills to disk but stays linear.
    points_sql = f"SELECT {{}}person_id FROM {ContactPoint._meta.db_table} WHERE kind = %s{where}"  # noqa: S608
    terms = [f"(CASE WHEN pp.erased_at IS NOT NULL THEN {F_ERASED} ELSE 0 END)",
             f"(CASE WHEN pp.restricted_at IS NOT NULL THEN {F_RESTRICTED} ELSE 0 END)"]
    params: list[Any] = []
    joins = [f"LEFT JOIN {PersonPrivacy._meta.db_table} pp ON pp.person_id = p.id"]
    join_params: list[Any] = []
    if hashed_points:
        terms.append(f"(CASE WHEN p.id IN ({points_sql.format('')}) THEN 0 ELSE {F_NO_POINT} END)")
        params += [CONTACT_KIND[plan.channel], *where_params]
    else:
        terms.append(f"(CASE WHEN cpk.person_id IS NULL THEN {F_NO_POINT} ELSE 0 END)")
        joins.append(f"LEFT JOIN ({points_sql.format('DISTINCT ')}) cpk ON cpk.person_id = p.id")
        join_params += [CONTACT_KIND[plan.channel], *where_params]
    extra = ""
    if plan.purpose.is_marketing:
        joins += [f"LEFT JOIN {ConsentState._meta.db_table} cs ON cs.person_id = p.id AND cs.purpose = %s "
                  "AND cs.channel = %s",
                  f"LEFT JOIN {ContactPreference._meta.db_table} pr ON pr.person_id = p.id",
                  f"LEFT JOIN {TopicSubscription._meta.db_table} ts ON ts.person_id = p.id AND ts.topic = %s",
                  f"LEFT JOIN (SELECT person_id, COUNT(*) AS n FROM {Touch._meta.db_table} "  # noqa: S608
                  f"WHERE marketing = %s AND occurred_at > %s AND occurred_at <= %s{where} "
                  "GROUP BY person_id) tc ON tc.person_id = p.id"]
        join_params += [plan.purpose.key, plan.channel, plan.purpose.key,
                        True, adapt(plan.at - WEEK), adapt(plan.at), *where_params]
        terms += [
            f"(CASE WHEN pp.objected_at IS NOT NULL THEN {F_OBJECTION} ELSE 0 END)",
            f"(CASE WHEN ts.subscribed = %s THEN {F_TOPIC_OFF} ELSE 0 END)",
            f"(CASE WHEN pr.{plan.channel}_allowed = %s THEN {F_REFUSED} ELSE 0 END)",
            _class_term(plan),
            _consent_term("cs."),
            # The person's own cap travels in the code (its message names it); else the default.
            "(CASE WHEN COALESCE(tc.n, 0) >= COALESCE(pr.max_per_week, %s) THEN (CASE WHEN pr.max_per_week "
            f"IS NULL THEN {F_CAP_DEFAULT} ELSE (pr.max_per_week + 1) * CAST({1 << OWN_CAP_SHIFT} AS BIGINT) END) "
            "ELSE 0 END)",
        ]
        params += [False, False, adapt(plan.at), default_cap()]
        if plan.channel in QUIET_CHANNELS:
            extra = ", p.timezone, pr.quiet_start, pr.quiet_end"
    where, person_params = audience.where("p.id")
    sql = (f"SELECT p.id, {' + '.join(terms)}{extra} FROM {Person._meta.db_table} p "  # noqa: S608
           f"{' '.join(joins)} WHERE 1=1{where} ORDER BY p.id")
    return sql, [*params, *join_params, *person_params]


def _with_quiet_hours(rows: list[tuple], plan: _Plan) -> dict[str, int]:
    """Codes with the quiet-hours flag and window folded in (worked out once per distinct
    time zone and window)."""
    default = plan.windows[0]
    seen: dict[tuple, int] = {}
    codes: dict[str, int] = {}
    for pid, code, zone, start, end in rows:
        key = (zone, start, end)
        extra = seen.get(key)
        if extra is None:
            window = (_time(start), _time(end)) if start is not None else default
            if window not in plan.windows:
                plan.windows.append(window)
            quiet = in_quiet_hours(local_time(plan.at, zone), *window)
            extra = seen[key] = (F_QUIET | plan.windows.index(window) << WINDOW_SHIFT) if quiet else 0
        codes[pid] = code | extra
    return codes


def _settle(code: int, plan: _Plan) -> Decision:
    """The Decision a code stands for, with the rules and messages ``decide`` uses."""
    channel, purpose = plan.channel, plan.purpose
    reasons: list[Reason] = []
    if code & F_ERASED:
        reasons.append(_r_erased())
    if code & F_RESTRICTED:
        reasons.append(_r_restricted())
    if code & F_NO_POINT:
        reasons.append(_r_no_contact_point(channel))
    if purpose.is_marketing:
        regime, phone_list = plan.classes[(code >> CLASS_SHIFT) & 0x1F]
        if code & F_OBJECTION:
            reasons.append(_r_objection())
        status = _STATUS_OF[(code >> STATUS_SHIFT) & 0x3]
        basis = _BASIS_OF.get((code >> BASIS_SHIFT) & 0xF, "")
        expires = plan.at if code >> EXPIRED_SHIFT & 1 else None
        cause = consent_cause(regime, channel, purpose, status, basis, expires, plan.at)
        if cause is not None:
            reasons.append(_consent_reason(regime, channel, purpose, cause, basis))
        if code & F_SUPPRESSED:
            reasons.append(_r_suppressed(channel))
        if code & F_LISTED:
            reasons.append(_r_dnc_listed(channel))
        if phone_list is not None and phone_list.key in plan.stale:
            reasons.append(_r_dnc_stale(phone_list))
        if code & F_REFUSED:
            reasons.append(_r_channel_refused(channel))
        if code & F_TOPIC_OFF:
            reasons.append(_r_topic_off(purpose))
        own_cap = (code >> OWN_CAP_SHIFT) & 0xFFFF
        if own_cap:
            reasons.append(_r_frequency(own_cap - 1))
        elif code & F_CAP_DEFAULT:
            reasons.append(_r_frequency(default_cap()))
        if code & F_QUIET:
            reasons.append(_r_quiet(*plan.windows[code >> WINDOW_SHIFT]))
    return _decision(tuple(reasons))


def _suppression_matches(points: list[tuple], entry_kind: str, channel: str, *,
                         keyed: bool = True) -> tuple[set, set]:
    """People whose contact points match the internal list / an external list of this channel,
    by hashing their values here: with our key (``keyed``; else the stored digests are joined)
    and, for pre-hashed lists, plain SHA-256."""
    entries = SuppressionEntry.objects.filter(kind=entry_kind)
    internal_q = entries.filter(source__in=suppression.INTERNAL_SOURCES)
    listed_q = _listed_entries(entry_kind, channel)
    with_plain = listed_q.filter(algorithm=SuppressionEntry.Algorithm.SHA256).exists()
    if not keyed:
        internal_q = internal_q.none()
        listed_q = listed_q.filter(algorithm=SuppressionEntry.Algorithm.SHA256)

    # One HMAC per compared form of every contact point is the per-row cost here, so the work is
    # flat list comprehensions (no dict per digest): the compared forms (emails: the value and,
    # where it differs, its canonical form — ``suppression.stored_forms``), their digests, and
    # the person each belongs to, side by side.
    if entry_kind == SuppressionEntry.Kind.EMAIL:
        canonical = suppression.canonical_email
        # Only a +tag or a Gmail domain changes an (already normalised) email.
        extra = [(pid, other) for pid, value in points
                 if ("+" in value or "mail.com" in value) and (other := canonical(value)) != value]
        owners = [pid for pid, _ in points] + [pid for pid, _ in extra]
        forms = [value for _, value in points] + [form for _, form in extra]
    else:
        pairs = [(pid, form) for pid, value in points for form in suppression.stored_forms(entry_kind, value)]
        owners, forms = [pid for pid, _ in pairs], [form for _, form in pairs]
    encoded = [form.encode() for form in forms]
    digests = suppression.keyed_digests(encoded) if keyed else []
    of = owners if keyed else []
    if with_plain:
        sha256 = hashlib.sha256
        digests += [sha256(form).hexdigest() for form in encoded]
        of = of + owners
    return _matching(internal_q, of, digests), _matching(listed_q, of, digests)


def _matching(entries: QuerySet, owners: list[Any], digests: list[str]) -> set:
    """The owners whose digest is among ``entries`` (``owners[i]`` owns ``digests[i]``)."""
    if entries.count() <= IN_MEMORY_DIGESTS:
        hits = set(entries.values_list("digest", flat=True))
    else:
        hits = set()
        unique = list(set(digests))
        for start in range(0, len(unique), 500):
            hits.update(entries.filter(digest__in=unique[start:start + 500]).values_list("digest", flat=True))
    if not hits:
        return set()
    return {pid for pid, digest in zip(owners, digests, strict=True) if digest in hits}


# --------------------------------------------------------------------------- the log


def _log(codes: dict[str, int], table: dict[int, Decision], *, channel: str, purpose: str, at: dt.datetime,
         actor: Any, context: str) -> DecisionBatch:
    """Write the decision log: the batch, one row per distinct outcome, and the packs saying
    which person got which (docs/decisions/0005-packed-decision-log.md)."""
    counts = Counter(codes.values())
    outcomes: list[Decision] = []
    position: dict[int, int] = {}
    seen: dict[int, int] = {}
    for code in counts:
        decision = table[code]
        index = seen.get(id(decision))
        if index is None:
            index = seen[id(decision)] = len(outcomes)
            outcomes.append(decision)
        position[code] = index
    if len(outcomes) > 0xFFFF:
        raise RuntimeError("More distinct outcomes than a decision pack can index.")
    sizes = [0] * len(outcomes)
    for code, count in counts.items():
        sizes[position[code]] += count
    batch = DecisionBatch.objects.create(
        channel=channel, purpose=purpose, at=at, size=len(codes), requested_by=_as_user(actor),
        allowed_count=sum(n for d, n in zip(outcomes, sizes, strict=True) if d.allowed), context=context[:100])
    DecisionOutcome.objects.bulk_create([
        DecisionOutcome(batch=batch, index=i, allowed=d.allowed, reasons=_codes(d),
                        messages=[r.message for r in d.reasons], count=n)
        for i, (d, n) in enumerate(zip(outcomes, sizes, strict=True))])
    keys = list(codes)
    ids = sorted(keys)  # already in id order (the query's ORDER BY): a linear pass
    # In that order (the usual case) each person's outcome comes straight from the codes.
    per_person = codes.values() if ids == keys else map(codes.__getitem__, ids)
    indexes = array("H", map(position.__getitem__, per_person))
    if sys.byteorder == "big":
        indexes.byteswap()
    _insert_packs(batch.pk, _packs(ids, indexes))
    return batch


def _insert_packs(batch_id: int, packs: Iterator[tuple[str, int, bytes, bytes]]) -> None:
    """The packs as rows, in one statement: ``COPY`` (binary) on PostgreSQL, ``executemany``
    elsewhere (through ``bulk_create`` each of ~4,000 rows cost more than building it)."""
    table = connection.ops.quote_name(DecisionPack._meta.db_table)
    columns = "batch_id, prefix, size, member_ids, outcome_indexes"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "varchar", "int4", "bytea", "bytea"])
                for row in packs:
                    copy.write_row((batch_id, *row))
        else:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s)",  # noqa: S608
                               [(batch_id, *row) for row in packs])


def _packs(ids: list[str], indexes: array) -> Iterator[tuple[str, int, bytes, bytes]]:
    """The batch's people in packs of the ids sharing their first hex digits (more digits for
    larger batches, a few hundred people per pack): (prefix, size, member ids, outcome indexes)."""
    width = 0
    while width < 4 and len(ids) > PACK_PEOPLE * 16 ** width:
        width += 1
    start, total = 0, len(ids)
    while start < total:
        head = ids[start][:width]
        # Ids are hex text (PostgreSQL's have dashes, after the first 8 digits): every one
        # with this head sorts before head + "g".
        end = bisect.bisect_left(ids, head + "g", start) if width else total
        members = bytes.fromhex("".join(ids[start:end]).replace("-", ""))
        yield head.lower(), end - start, members, indexes[start:end].tobytes()
        start = end


def decision_outcomes_of(person: Any) -> QuerySet:
    """The logged outcomes (``DecisionOutcome``, with their batch) of every decision about the
    person or an id merged into them: what was decided, when, why."""
    from rapport.privacy.datamap import person_ids

    ids = {uuid.UUID(str(pk)) for pk in person_ids(person)}
    prefixes = {pk.hex[:width] for pk in ids for width in range(5)}
    wanted: dict[int, set[int]] = defaultdict(set)
    packs = DecisionPack.objects.filter(prefix__in=prefixes).values_list("batch_id", "member_ids", "outcome_indexes")
    for batch_id, members, indexes in packs.iterator(chunk_size=200):
        members, indexes = bytes(members), bytes(indexes)
        for pk in ids:
            at = members.find(pk.bytes)
            while at != -1 and at % 16:  # only a whole, aligned id counts
                at = members.find(pk.bytes, at + 1)
            if at != -1:
                slot = at // 8  # 16 bytes per id, 2 per index
                wanted[batch_id].add(int.from_bytes(indexes[slot:slot + 2], "little"))
    if not wanted:
        return DecisionOutcome.objects.none()
    pks = [pk for pk, batch_id, index in DecisionOutcome.objects.filter(batch_id__in=list(wanted))
           .values_list("pk", "batch_id", "index") if index in wanted[batch_id]]
    return DecisionOutcome.objects.filter(pk__in=pks).select_related("batch")


def decisions_about(person: Any) -> list[dict[str, Any]]:
    """Every logged decision about the person, newest first: when, channel, purpose, answer, why."""
    rows = decision_outcomes_of(person).order_by("-batch__created_at", "-batch_id")
    return [{"at": o.batch.at, "decided_at": o.batch.created_at, "channel": o.batch.channel,
             "purpose": o.batch.purpose, "allowed": o.allowed, "reasons": o.reasons.split(",") if o.reasons else [],
             "messages": list(o.messages), "context": o.batch.context, "batch": o.batch_id} for o in rows]


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


def _db_text(value: Any) -> str:
    """A person id as ``_fetch`` returns it (32 hex digits on SQLite, the UUID string on PostgreSQL)."""
    value = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return str(value) if connection.vendor == "postgresql" else value.hex


class _Answers(Mapping):
    """Decisions keyed by person id (UUID) over the database's text keys (see ``_fetch``).

    Holds each person's code and the Decision of each distinct code: building a million
    UUID objects (or a million-entry dict of Decisions) up front cost more than deciding. A
    key becomes a UUID only when the keys are iterated; lookups by UUID (or its string) are
    direct.
    """

    __slots__ = ("_codes", "_hex", "_table")

    def __init__(self, codes: dict[str, int], table: dict[int, Decision], *, hex_keys: bool) -> None:
        self._codes = codes
        self._table = table
        self._hex = hex_keys

    def __getitem__(self, key: Any) -> Decision:
        try:
            value = key if isinstance(key, uuid.UUID) else uuid.UUID(str(key))
        except ValueError as err:
            raise KeyError(key) from err
        return self._table[self._codes[value.hex if self._hex else str(value)]]

    def __iter__(self) -> Iterator[uuid.UUID]:
        return (uuid.UUID(k) for k in self._codes)

    def __len__(self) -> int:
        return len(self._codes)

    def values(self) -> Any:
        return [*map(self._table.__getitem__, self._codes.values())]

    def items(self) -> Any:
        table = self._table
        return [(uuid.UUID(k), table[code]) for k, code in self._codes.items()]


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
