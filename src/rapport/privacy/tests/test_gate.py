"""C4 — the contact gate: every reason, jurisdictions, the decision log, batch == single.

The property tests generate random histories (consent events, preferences, topic
subscriptions, suppressions, do-not-call lists, restrictions, objections and past touches by
several staff) and check the gate against an independent statement of the rules: it never
allows what they forbid, never denies without a rule, and the batch answers equal the
single ones.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from rapport.core import testing
from rapport.people.models import Person
from rapport.privacy import gate, services, suppression
from rapport.privacy.jurisdictions import OPT_IN, implied_consent_expiry, phone_list_for, regime_for
from rapport.privacy.models import ConsentBasis, DecisionBatch, DecisionPack
from rapport.privacy.purposes import PURPOSES

pytestmark = pytest.mark.django_db

NOON = dt.time(12, 0)


def _at(hour: int = 12, zone: str = "Europe/London") -> dt.datetime:
    """Tomorrow at ``hour`` local time (consent events are recorded in the past)."""
    day = timezone.localdate() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour, 0), tzinfo=zoneinfo.ZoneInfo(zone))


def _codes(decision):
    return decision.codes


# ------------------------------------------------------------------------------ examples


def test_uk_email_marketing_needs_opt_in(make_person, grant):
    # given
    person = make_person(emails=["ann@example.com"], country="GB", timezone_name="Europe/London")
    # when / then
    assert _codes(gate.decide(person, "email", "newsletter", _at())) == ["no_consent"]
    grant(person)
    assert gate.decide(person, "email", "newsletter", _at()).allowed


def test_uk_soft_opt_in_covers_similar_products_only(make_person, grant):
    # given: a customer who bought, was offered a refusal, did not refuse
    person = make_person(emails=["ann@example.com"], country="GB")
    grant(person, "offers", basis=ConsentBasis.SOFT_OPT_IN)
    # then
    assert gate.decide(person, "email", "offers", _at()).allowed
    # and: a soft opt-in recorded for the US (no such concept) still allows under opt-out
    us = make_person(emails=["bob@example.com"], country="US")
    assert gate.decide(us, "email", "offers", _at()).allowed


def test_soft_opt_in_is_not_enough_in_canada(make_person, grant):
    # given
    person = make_person(emails=["ann@example.ca"], country="CA")
    grant(person, "offers", basis=ConsentBasis.SOFT_OPT_IN)
    # when
    decision = gate.decide(person, "email", "offers", _at())
    # then
    assert _codes(decision) == ["no_consent"]
    assert "not valid" in decision.reasons[0].message


def test_us_email_is_opt_out_but_withdrawal_denies(make_person, withdraw):
    # given
    person = make_person(emails=["bob@example.com"], country="US", timezone_name="America/New_York")
    # then
    assert gate.decide(person, "email", "newsletter", _at()).allowed
    withdraw(person)
    assert _codes(gate.decide(person, "email", "newsletter", _at())) == ["withdrawn"]


def test_casl_implied_consent_lapses(make_person, grant):
    # given: an enquiry seven months ago
    person = make_person(emails=["cam@example.ca"], country="CA")
    grant(person, basis=ConsentBasis.IMPLIED_ENQUIRY, occurred_at=timezone.now() - dt.timedelta(days=214))
    # when
    decision = gate.decide(person, "email", "newsletter", _at())
    # then
    assert _codes(decision) == ["no_consent"] and "expired" in decision.reasons[0].message
    # and: a purchase three months ago still counts (two years)
    grant(person, basis=ConsentBasis.IMPLIED_PURCHASE, occurred_at=timezone.now() - dt.timedelta(days=90))
    assert gate.decide(person, "email", "newsletter", _at()).allowed


def test_pending_double_opt_in_is_not_consent(make_person):
    # given
    person = make_person(emails=["ann@example.com"], country="FR")
    services.record_consent(person=person, purpose="newsletter", channel="email", granted=True,
                            lawful_basis="consent", source="form")
    # when
    decision = gate.decide(person, "email", "newsletter", _at())
    # then
    assert _codes(decision) == ["no_consent"] and "double opt-in" in decision.reasons[0].message


def test_frequency_cap_counts_touches_by_anyone(make_person, grant, staff_user, admin_user):
    # given: three recruiters from one firm phoned the same person this week
    person = make_person(phones=["+447911123456"], country="US", timezone_name="America/New_York")
    suppression.import_list(name="DNC", kind="us_dnc", screened_on=timezone.localdate(), values=[])
    at = _at(12, "America/New_York")
    other = testing.make_user("recruiter3")
    for user in (staff_user, admin_user, other):
        services.record_touch(person=person, channel="phone", purpose="sales_outreach", sent_by=user,
                              occurred_at=at - dt.timedelta(hours=2))
    # when
    decision = gate.decide(person, "phone", "sales_outreach", at)
    # then
    assert _codes(decision) == ["frequency_cap"]
    # and: service messages do not count towards or against the cap
    assert gate.decide(person, "sms", "transactional", at).allowed
    # and: a week later the cap is free again
    assert gate.decide(person, "phone", "sales_outreach", at + dt.timedelta(days=7, hours=1)).allowed


def test_personal_cap_and_refused_channel_and_unsubscribed_topic(make_person, grant, staff_user):
    # given
    person = make_person(emails=["ann@example.com"], country="GB")
    grant(person)
    services.preferences_update(actor=staff_user, person=person, changes={"email_allowed": False,
                                                                          "max_per_week": 0},
                                topics={"newsletter": False})
    # when
    decision = gate.decide(person, "email", "newsletter", _at())
    # then
    assert _codes(decision) == ["preference", "preference", "frequency_cap"]


def test_quiet_hours_follow_the_persons_time_zone(make_person, staff_user):
    # given: a US person, the US list screened
    suppression.import_list(name="DNC", kind="us_dnc", screened_on=timezone.localdate(), values=[])
    person = make_person(phones=["+12125550123"], country="US", timezone_name="America/Los_Angeles")
    # when: 10:00 in London is 02:00 in Los Angeles
    night = gate.decide(person, "phone", "sales_outreach", _at(10, "Europe/London"))
    day = gate.decide(person, "phone", "sales_outreach", _at(12, "America/Los_Angeles"))
    # then
    assert _codes(night) == ["quiet_hours"] and day.allowed
    # when: the person sets their own quiet hours over lunch
    services.preferences_update(actor=staff_user, person=person,
                                changes={"quiet_start": dt.time(11, 30), "quiet_end": dt.time(13, 0)})
    # then
    assert _codes(gate.decide(person, "phone", "sales_outreach", _at(12, "America/Los_Angeles"))) == ["quiet_hours"]
    assert gate.decide(person, "phone", "sales_outreach", _at(2, "America/Los_Angeles")).allowed


def test_uk_phone_marketing_needs_a_tps_screening_within_28_days(make_person):
    # given
    person = make_person(phones=["+447911123456"], country="GB", timezone_name="Europe/London")
    # then: never screened
    decision = gate.decide(person, "phone", "sales_outreach", _at())
    assert _codes(decision) == ["dnc_list"] and "TPS" in decision.reasons[0].message
    # when: screened 30 days ago
    suppression.import_list(name="TPS March", kind="tps",
                            screened_on=timezone.localdate() - dt.timedelta(days=30), values=[])
    assert _codes(gate.decide(person, "phone", "sales_outreach", _at())) == ["dnc_list"]
    # when: screened today, and the number is on it
    suppression.import_list(name="TPS today", kind="tps", screened_on=timezone.localdate(),
                            values=["07911 123456"])
    decision = gate.decide(person, "phone", "sales_outreach", _at())
    assert _codes(decision) == ["dnc_list"] and "external" in decision.reasons[0].message
    # and: a service call is not marketing
    assert gate.decide(person, "phone", "transactional", _at()).allowed


def test_restriction_and_erasure_deny_even_service_messages(make_person, staff_user):
    # given
    from rapport.privacy.erasure import erase_person

    restricted = make_person(emails=["r@example.com"], country="US")
    erased = make_person(emails=["e@example.com"], country="US")
    services.restrict_processing(actor=staff_user, person=restricted, reason="accuracy contested")
    erase_person(actor=staff_user, person=erased)
    # then
    assert _codes(gate.decide(restricted, "email", "security_notice", _at())) == ["restricted"]
    assert _codes(gate.decide(erased, "email", "security_notice", _at())) == ["erased", "no_contact_point"]


def test_service_messages_skip_marketing_consent_and_preferences(make_person, staff_user, withdraw):
    # given
    person = make_person(emails=["ann@example.com"], country="GB")
    withdraw(person)
    services.record_objection(actor=staff_user, person=person)
    services.preferences_update(actor=staff_user, person=person, changes={"email_allowed": False})
    # then
    assert gate.decide(person, "email", "security_notice", _at()).allowed
    assert not gate.decide(person, "email", "newsletter", _at()).allowed


def test_every_decision_is_logged_and_batches_in_bulk(make_person, grant, staff_user):
    # given
    people = [make_person(emails=[f"p{i}@example.com"], country="US") for i in range(5)]
    # when
    gate.decide(people[0], "email", "newsletter", _at(), actor=staff_user, context="test")
    decisions = gate.decide_batch(Person.objects.all(), "email", "newsletter", _at(), actor=staff_user)
    # then
    assert len(decisions) == 5
    single, batch = DecisionBatch.objects.order_by("id")
    assert (single.size, batch.size, batch.allowed_count) == (1, 5, 5)
    assert sum(DecisionPack.objects.filter(batch=batch).values_list("size", flat=True)) == 5
    assert all([e["batch"] for e in gate.decisions_about(p)][:1] == [batch.pk] for p in people)
    assert len(gate.decisions_about(people[0])) == 2 and len(gate.decisions_about(people[1])) == 1


def test_batch_accepts_ids_people_and_long_id_lists(make_person, monkeypatch):
    # given
    people = [make_person(emails=[f"p{i}@example.com"], country="GB" if i % 2 else "US") for i in range(6)]
    monkeypatch.setattr(gate, "INLINE_IDS", 3)  # force the temporary-table path
    # when
    by_ids = gate.decide_batch([p.pk for p in people], "email", "newsletter", _at())
    by_strs = gate.decide_batch([str(p.pk) for p in people[:2]], "email", "newsletter", _at())
    by_objs = gate.decide_batch(people[:2], "email", "newsletter", _at())
    # then
    assert {p.pk for p in people} == set(by_ids)
    assert [by_ids[p.pk].allowed for p in people] == [i % 2 == 0 for i in range(6)]
    assert by_strs == by_objs == {p.pk: by_ids[p.pk] for p in people[:2]}


def test_unknown_channel_or_purpose_is_an_error(make_person):
    person = make_person(emails=["a@example.com"])
    with pytest.raises(ValueError, match="channel"):
        gate.decide(person, "pigeon", "newsletter")
    with pytest.raises(ValueError, match="purpose"):
        gate.decide_batch([person.pk], "email", "gossip")


def test_batch_uses_a_fixed_number_of_queries(make_person, django_assert_max_num_queries):
    # given
    for i in range(30):
        make_person(emails=[f"p{i}@example.com"], phones=[f"+1212555{i:04d}"], country="US")
    # when / then: the same count for 30 people as for 3
    with django_assert_max_num_queries(30):
        gate.decide_batch(Person.objects.all(), "phone", "newsletter", _at())


# ----------------------------------------------------------------------- property tests


@dataclass
class PersonSpec:
    country: str
    zone: str
    email: bool
    phone: bool
    events: list[tuple[bool, str, bool, int]]  # granted, basis, double opt-in, days ago (distinct)
    objected: bool
    restricted: bool
    email_suppressed: bool
    phone_on_list: bool
    refused: bool
    cap: int | None
    quiet: tuple[int, int] | None
    topic_off: bool | None
    touches: list[tuple[int, bool]] = field(default_factory=list)  # hours before `at`, marketing?


COUNTRIES = ["GB", "US", "CA", "FR", "BR", ""]
ZONES = ["Europe/London", "America/New_York", "Asia/Tokyo", "", "Not/AZone"]
BASES = [ConsentBasis.CONSENT, ConsentBasis.SOFT_OPT_IN, ConsentBasis.IMPLIED_PURCHASE,
         ConsentBasis.IMPLIED_ENQUIRY, ConsentBasis.LEGITIMATE_INTERESTS]


def person_specs() -> st.SearchStrategy[PersonSpec]:
    events = st.lists(st.tuples(st.booleans(), st.sampled_from(BASES), st.booleans(), st.integers(1, 900)),
                      max_size=4, unique_by=lambda e: e[3])
    return st.builds(
        PersonSpec, country=st.sampled_from(COUNTRIES), zone=st.sampled_from(ZONES), email=st.booleans(),
        phone=st.booleans(), events=events, objected=st.booleans(), restricted=st.booleans(),
        email_suppressed=st.booleans(), phone_on_list=st.booleans(), refused=st.booleans(),
        cap=st.one_of(st.none(), st.integers(0, 3)),
        quiet=st.one_of(st.none(), st.tuples(st.integers(0, 23), st.integers(0, 23))),
        topic_off=st.one_of(st.none(), st.booleans()),
        touches=st.lists(st.tuples(st.integers(1, 240), st.booleans()), max_size=5))


def _build(i: int, spec: PersonSpec, purpose: str, channel: str, at: dt.datetime, actor, staff) -> Person:
    person = testing.make_person(
        actor=actor, given_name=f"P{i}", family_name="Test", country=spec.country, timezone_name=spec.zone,
        emails=[f"p{i}@example.com"] if spec.email else [], phones=[f"+1212555{i:04d}"] if spec.phone else [])
    purpose_def = PURPOSES[purpose]
    if purpose_def.is_marketing:
        for granted, basis, doi, days in spec.events:
            if basis == ConsentBasis.SOFT_OPT_IN and not purpose_def.soft_opt_in:
                basis = ConsentBasis.CONSENT
            services.record_consent(
                person=person, purpose=purpose, channel=channel, granted=granted,
                lawful_basis=basis if granted else ConsentBasis.CONSENT, source="staff",
                proof={"refusal_offered": True}, double_opt_in=doi,
                occurred_at=timezone.now() - dt.timedelta(days=days))
    changes = {"email_allowed": not spec.refused, "phone_allowed": not spec.refused,
               "sms_allowed": not spec.refused, "max_per_week": spec.cap}
    if spec.quiet:
        changes.update(quiet_start=dt.time(spec.quiet[0]), quiet_end=dt.time(spec.quiet[1]))
    topics = {purpose: not spec.topic_off} if spec.topic_off is not None and purpose_def.is_marketing else None
    services.preferences_update(actor=actor, person=person, changes=changes, topics=topics)
    for hours, marketing in spec.touches:
        services.record_touch(person=person, channel=channel, purpose="offers" if marketing else "transactional",
                              sent_by=staff[hours % len(staff)], occurred_at=at - dt.timedelta(hours=hours))
    if spec.email and spec.email_suppressed:
        suppression.suppress(emails=[f"p{i}@example.com"], reason="complaint")
    if spec.objected:
        services.record_objection(actor=actor, person=person)
    if spec.restricted:
        services.restrict_processing(actor=actor, person=person, reason="contested")
    return person


def _expected(spec: PersonSpec, purpose: str, channel: str, at: dt.datetime, list_age: int | None,
              on_list: bool) -> list[str]:
    """The rules, stated independently of the gate's code."""
    purpose_def = PURPOSES[purpose]
    codes = []
    if spec.restricted:
        codes.append("restricted")
    reachable = {"email": spec.email, "phone": spec.phone, "sms": spec.phone, "post": False, "social": False}
    if not reachable[channel]:
        codes.append("no_contact_point")
    if not purpose_def.is_marketing:
        return codes
    if spec.objected:
        codes.append("objection")
    regime = regime_for(spec.country)
    state = None  # (status, basis, since)
    for granted, basis, doi, days in sorted(spec.events, key=lambda e: -e[3]):
        if basis == ConsentBasis.SOFT_OPT_IN and not purpose_def.soft_opt_in:
            basis = ConsentBasis.CONSENT
        since = timezone.now() - dt.timedelta(days=days)
        if not granted:
            state = ("withdrawn", "consent", since)
        elif doi and channel == "email" and basis == ConsentBasis.CONSENT:
            if state is None or state[0] != "granted":
                state = ("pending", basis, since)
        else:
            state = ("granted", basis, since)
    if spec.objected and state is not None:
        state = ("withdrawn", "consent", timezone.now())
    rule = regime.rule(channel)
    if state is not None and state[0] == "withdrawn":
        codes.append("withdrawn")
    elif rule.mode == OPT_IN:
        ok = (state is not None and state[0] == "granted" and rule.accepts(state[1])
              and not (state[1] == ConsentBasis.SOFT_OPT_IN and not purpose_def.soft_opt_in))
        expiry = implied_consent_expiry(state[1], state[2]) if ok else None
        if not ok or (expiry is not None and expiry <= at):
            codes.append("no_consent")
    if channel == "email" and spec.email and spec.email_suppressed:
        codes.append("suppressed")
    if channel == "phone" and spec.phone and on_list and spec.phone_on_list:
        codes.append("dnc_list")
    phone_list = phone_list_for(spec.country)
    if channel == "phone" and phone_list is not None and (
            list_age is None or (timezone.localdate(at) - (timezone.localdate() - dt.timedelta(days=list_age))).days
            > phone_list.screening_days):
        codes.append("dnc_list")
    if spec.refused and channel in ("email", "phone", "sms"):
        codes.append("preference")
    if spec.topic_off:
        codes.append("preference")
    cap = spec.cap if spec.cap is not None else 3
    recent = sum(1 for hours, marketing in spec.touches if marketing and hours < 168)
    if recent >= cap:
        codes.append("frequency_cap")
    if channel in ("phone", "sms"):
        try:
            zone = zoneinfo.ZoneInfo(spec.zone) if spec.zone else zoneinfo.ZoneInfo(django_settings.TIME_ZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo(django_settings.TIME_ZONE)
        local = at.astimezone(zone).time()
        start, end = (dt.time(spec.quiet[0]), dt.time(spec.quiet[1])) if spec.quiet else (dt.time(21), dt.time(8))
        if start != end and ((start < end and start <= local < end) or (start > end and (local >= start or local < end))):
            codes.append("quiet_hours")
    return codes


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(specs=st.lists(person_specs(), min_size=1, max_size=5),
       channel=st.sampled_from(["email", "phone", "sms", "post"]),
       purpose=st.sampled_from(["newsletter", "offers", "events", "transactional"]),
       hour=st.integers(0, 23), list_age=st.one_of(st.none(), st.integers(0, 40)))
@pytest.mark.parametrize("strategy", ["join", "join-unhashed", "scan", "scan-hashing", "ordered"])
def test_gate_follows_the_rules_and_batch_equals_single(staff_user, admin_user, specs, channel, purpose, hour,
                                                         list_age, strategy, monkeypatch):
    # the batch's ways to its codes (one join — contact points as a hashed IN, or joined as a
    # sub-select for tables too large to hash —; a scan per table; one walk in id order probing
    # each table), each on this database, and its two ways to suppression (stored digests
    # joined; every address hashed here)
    monkeypatch.setattr(gate, "STRATEGY", strategy.split("-")[0])
    if strategy == "join-unhashed":
        monkeypatch.setattr(gate, "HASHED_POINTS", -2)
    if strategy == "scan-hashing":
        monkeypatch.setattr(gate, "SUPPRESSION_BY", "hashing")
    with transaction.atomic():
        at = _at(0, "UTC") + dt.timedelta(hours=hour)
        if list_age is not None:
            numbers = [f"+1212555{i:04d}" for i, s in enumerate(specs) if s.phone and s.phone_on_list]
            for kind in ("tps", "us_dnc", "ca_dncl"):  # every national list, screened the same day
                suppression.import_list(name="DNC", kind=kind, values=numbers,
                                        screened_on=timezone.localdate() - dt.timedelta(days=list_age))
        people = [_build(i, spec, purpose, channel, at, staff_user, [staff_user, admin_user])
                  for i, spec in enumerate(specs)]
        # when
        singles = {p.pk: gate.decide(p, channel, purpose, at) for p in people}
        batch = gate.decide_batch(Person.objects.filter(pk__in=[p.pk for p in people]), channel, purpose, at)
        # then
        for person, spec in zip(people, specs, strict=True):
            expected = _expected(spec, purpose, channel, at, list_age, list_age is not None)
            assert singles[person.pk].codes == expected, (spec, channel, purpose, at)
            assert singles[person.pk].allowed == (not expected)
            assert batch[person.pk] == singles[person.pk]
        transaction.set_rollback(True)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(st.tuples(st.booleans(), st.sampled_from(BASES), st.booleans(), st.integers(1, 900)),
                       min_size=1, max_size=4, unique_by=lambda e: e[3]),
       country=st.sampled_from(["CA", "GB", "US", "FR"]), channel=st.sampled_from(["email", "sms"]),
       purpose=st.sampled_from(["newsletter", "events"]), objected=st.booleans())
def test_consent_histories_across_jurisdictions(staff_user, events, country, channel, purpose, objected):
    """Focus on the ledger: grants, withdrawals, pending double opt-ins, implied consents that lapse."""
    with transaction.atomic():
        spec = PersonSpec(country=country, zone="Europe/London", email=True, phone=True, events=events,
                          objected=objected, restricted=False, email_suppressed=False, phone_on_list=False,
                          refused=False, cap=None, quiet=None, topic_off=None)
        at = _at(12, "Europe/London")
        person = _build(0, spec, purpose, channel, at, staff_user, [staff_user])
        decision = gate.decide(person, channel, purpose, at)
        assert decision.codes == _expected(spec, purpose, channel, at, None, False)
        assert gate.decide_batch([person.pk], channel, purpose, at)[person.pk] == decision
        transaction.set_rollback(True)
