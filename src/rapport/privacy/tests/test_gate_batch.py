"""C4 — the batch form's own mechanisms: text-keyed answers, the packed log, digest matching.

``test_gate.py`` checks the rules and batch == single; these check what ``decide_batch`` does
for speed (ids as text, one code per person, the log packed per distinct outcome and id
prefix, digests matched in memory or through the database) on whichever database the run uses.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from django.utils import timezone

from rapport.people.models import Person
from rapport.privacy import gate, services, suppression
from rapport.privacy.models import (
    ConsentState,
    ContactPreference,
    DecisionBatch,
    DecisionOutcome,
    DecisionPack,
    PersonPrivacy,
    Touch,
)

pytestmark = pytest.mark.django_db


def _at() -> dt.datetime:
    return timezone.now() + dt.timedelta(days=1)


def test_answers_are_looked_up_by_uuid_or_string_and_iterate_as_uuids(make_person):
    # given
    people = [make_person(emails=[f"p{i}@example.com"], country="US") for i in range(3)]
    # when
    decisions = gate.decide_batch(Person.objects.all(), "email", "newsletter", _at(), log=False)
    # then
    assert all(isinstance(key, uuid.UUID) for key in decisions)
    assert set(decisions) == {p.pk for p in people}
    assert all(decisions[p.pk] is decisions[str(p.pk)] for p in people)
    assert dict(decisions.items()) == {p.pk: decisions[p.pk] for p in people}
    assert list(decisions.values()) == [decisions[k] for k in decisions]
    with pytest.raises(KeyError):
        decisions["not-a-uuid"]
    with pytest.raises(KeyError):
        decisions[uuid.uuid4()]


def test_the_log_tells_each_persons_answer_and_its_reasons(make_person, staff_user):
    # given: allowed (US opt-out), no email, suppressed, and two with the same answer
    allowed = make_person(emails=["ok@example.com"], country="US")
    unreachable = make_person(country="US")
    suppressed = make_person(emails=["gone@example.com"], country="US")
    twins = [make_person(emails=[f"gb{i}@example.com"], country="GB") for i in range(2)]
    suppression.suppress(emails=["gone@example.com"], reason="complaint")
    # when
    decisions = gate.decide_batch(Person.objects.all(), "email", "newsletter", _at(), actor=staff_user)
    # then
    batch = DecisionBatch.objects.get()
    assert (batch.size, batch.allowed_count) == (5, 1)
    assert sorted(DecisionOutcome.objects.filter(batch=batch).values_list("reasons", "count")) == [
        ("", 1), ("no_consent", 2), ("no_contact_point", 1), ("suppressed", 1)]
    assert sum(DecisionPack.objects.filter(batch=batch).values_list("size", flat=True)) == 5
    logged = {}
    for p in (allowed, unreachable, suppressed, *twins):
        (entry,) = gate.decisions_about(p)
        assert (entry["batch"], entry["channel"], entry["purpose"]) == (batch.pk, "email", "newsletter")
        assert entry["messages"] == [r.message for r in decisions[p.pk].reasons]
        logged[p.pk] = (entry["allowed"], ",".join(entry["reasons"]))
    assert logged == {p.pk: (decisions[p.pk].allowed, ",".join(decisions[p.pk].codes))
                      for p in (allowed, unreachable, suppressed, *twins)}
    assert logged[allowed.pk] == (True, "")
    assert logged[unreachable.pk] == (False, "no_contact_point")
    assert logged[suppressed.pk] == (False, "suppressed")
    assert logged[twins[0].pk] == logged[twins[1].pk] == (False, "no_consent")
    assert decisions[twins[0].pk] is decisions[twins[1].pk]  # one shared answer


@pytest.mark.parametrize("in_memory", [True, False])
def test_suppressed_and_listed_people_match_in_memory_or_through_the_database(make_person, monkeypatch,
                                                                               in_memory):
    # given: a Gmail address suppressed under its canonical form, a plain-SHA-256 listed one,
    # and two people sharing one suppressed address
    if not in_memory:
        monkeypatch.setattr(gate, "IN_MEMORY_DIGESTS", 0)
    dotted = make_person(emails=["ann.lee+news@gmail.com"], country="US")
    listed = make_person(emails=["bob@example.com"], country="US")
    sharing = [make_person(emails=["shared@example.com"], country="US") for _ in range(2)]
    clear = make_person(emails=["clear@example.com"], country="US")
    suppression.suppress(emails=["annlee@gmail.com", "shared@example.com"], reason="complaint")
    suppression.import_list(name="Email DNC", kind="email_dnc", screened_on=timezone.localdate(),
                            values=[suppression.plain_digest("bob@example.com")], hashed=True)
    # when
    decisions = gate.decide_batch(Person.objects.all(), "email", "newsletter", _at(), log=False)
    # then
    assert decisions[dotted.pk].codes == ["suppressed"]
    assert decisions[listed.pk].codes == ["dnc_list"]
    assert [decisions[p.pk].codes for p in sharing] == [["suppressed"], ["suppressed"]]
    assert decisions[clear.pk].allowed
    for person in (dotted, listed, *sharing, clear):
        assert gate.decide(person, "email", "newsletter", _at(), log=False) == decisions[person.pk]


@pytest.mark.parametrize("size", [1, 40, 1500])
def test_packs_find_every_person_whatever_the_batch_size(make_person, monkeypatch, size):
    # given: a batch large enough for packs by 0, 1 or 2 hex digits (a few people per pack here)
    monkeypatch.setattr(gate, "PACK_PEOPLE", 4)
    ids = [uuid.uuid4() for _ in range(size)]
    codes = {gate._db_text(pk): i % 3 for i, pk in enumerate(ids)}
    table = {0: gate.ALLOWED, 1: gate._decision((gate._r_erased(),)),
             2: gate._decision((gate._r_restricted(), gate._r_erased()))}
    # when
    batch = gate._log(dict(sorted(codes.items())), table, channel="email", purpose="newsletter", at=_at(),
                      actor=None, context="test")
    # then: every id is in exactly one pack, under its own prefix, with its own outcome
    packs = list(DecisionPack.objects.filter(batch=batch))
    assert sum(p.size for p in packs) == size and len({p.prefix for p in packs}) == len(packs)
    width = {len(p.prefix) for p in packs}
    assert len(width) == 1 and (size < 5 or width != {0})
    outcomes = {o.index: o for o in DecisionOutcome.objects.filter(batch=batch)}
    assert sum(o.count for o in outcomes.values()) == size
    for i, pk in enumerate(ids[:60]):
        person = Person(pk=pk)
        (entry,) = gate.decisions_about(person)
        assert entry["reasons"] == table[i % 3].codes, i


def test_a_persons_decisions_are_found_across_batches_and_not_anyone_elses(make_person):
    # given
    ann, bob = make_person(emails=["ann@example.com"], country="US"), make_person(country="US")
    gate.decide(ann, "email", "newsletter", _at())
    gate.decide_batch(Person.objects.all(), "email", "offers", _at())
    gate.decide_batch([bob.pk], "email", "events", _at())
    # when
    ann_log, bob_log = gate.decisions_about(ann), gate.decisions_about(bob)
    # then
    assert sorted(e["purpose"] for e in ann_log) == ["newsletter", "offers"]
    assert all(e["allowed"] and e["reasons"] == [] for e in ann_log)
    assert sorted((e["purpose"], tuple(e["reasons"])) for e in bob_log) == [
        ("events", ("no_contact_point",)), ("offers", ("no_contact_point",))]


@pytest.mark.django_db(transaction=True)  # committed: the helper process reads on its own connection
def test_a_helper_process_reads_a_large_audiences_marketing_facts_with_the_same_answers_and_one_log(
        make_person, staff_user, monkeypatch, tmp_path):
    # given: people across the key space, some denied for several reasons
    from django.db import connection

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("an in-memory SQLite database is not visible to the helper process "
                    "(set RAPPORT_TEST_SQLITE_NAME to run this case)")
    people = [make_person(emails=[f"r{i}@example.com"] if i % 3 else [], country=("GB", "US", "DE")[i % 3])
              for i in range(12)]
    suppression.suppress(emails=["r1@example.com"], reason="complaint")
    services.restrict_processing(actor=staff_user, person=people[4], reason="disputed")
    services.record_objection(actor=staff_user, person=people[7])
    services.record_touch(person=people[2], channel="email", purpose="newsletter", sent_by=staff_user)
    services.preferences_update(actor=staff_user, person=people[5], changes={"email_allowed": False})
    monkeypatch.setattr(gate, "STRATEGY", "scan")  # the helper serves the scans (SQLite's way)
    serial = {p.pk: gate.decide_batch(Person.objects.all(), "email", "newsletter", _at(), log=False)[p.pk]
              for p in people}
    ran = tmp_path / "ran"
    helper = gate._read_marketing_facts

    def marking(*args):  # type: ignore[no-untyped-def]
        ran.write_text("yes")  # in the child: the parent sees the file
        helper(*args)

    monkeypatch.setattr(gate, "_read_marketing_facts", marking)
    monkeypatch.setattr(gate, "PARALLEL_FROM", 2)
    # when
    split = gate.decide_batch(Person.objects.all(), "email", "newsletter", _at(), context="split")
    # then: the helper ran, the answers are the serial ones and each person's decision is
    # logged once, in one batch
    assert ran.read_text() == "yes"
    assert len(split) == len(people) and list(split) == sorted(split)
    assert {p.pk: split[p.pk] for p in people} == serial
    assert DecisionBatch.objects.filter(context="split").count() == 1
    for person in people:
        (entry,) = gate.decisions_about(person)
        assert entry["reasons"] == serial[person.pk].codes
        assert gate.decide(person, "email", "newsletter", _at(), log=False) == serial[person.pk]


@pytest.mark.django_db(transaction=True)
def test_a_failing_helper_process_fails_the_batch_and_logs_nothing(make_person, monkeypatch):
    from django.db import connection

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("an in-memory SQLite database is not visible to the helper process")
    for i in range(4):
        make_person(emails=[f"f{i}@example.com"], country="US")
    parent, facts = os.getpid(), gate._marketing_facts

    def failing_in_the_child(*args, **kwargs):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            raise ValueError("lost the database")
        return facts(*args, **kwargs)

    monkeypatch.setattr(gate, "STRATEGY", "scan")
    monkeypatch.setattr(gate, "PARALLEL_FROM", 2)
    monkeypatch.setattr(gate, "_marketing_facts", failing_in_the_child)
    # when / then: the parent raises the child's error and its transaction (the log) rolls back
    with pytest.raises(RuntimeError, match="helper process failed: ValueError: lost the database"):
        gate.decide_batch(Person.objects.all(), "email", "newsletter", _at())
    assert not DecisionBatch.objects.exists()


def test_sqlite_walks_the_gate_indexes_in_id_order_and_postgres_joins(make_person):
    # given: the indexes of migration 0007 (SQLite only)
    from django.db import connection

    make_person(emails=["a@example.com"], country="GB")
    # when
    strategy, hints = gate._strategy(), gate._ordered_hints()
    # then
    if connection.vendor == "sqlite":
        assert strategy == "ordered"
        assert hints == {table: f" INDEXED BY {name}" for table, name in gate.ORDERED_INDEXES.items()}
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN SELECT p.id FROM people_person p INDEXED BY privacy_gate_person "
                           "ORDER BY p.id")
            assert "COVERING INDEX privacy_gate_person" in " ".join(str(r) for r in cursor.fetchall())
    else:
        assert strategy == "join"
        assert hints == dict.fromkeys(gate.ORDERED_INDEXES, "")


@pytest.mark.parametrize("audience", ["everyone", "queryset", "ids"])
def test_the_ordered_walk_gives_the_scans_answers_and_falls_back_without_its_indexes(make_person, monkeypatch,
                                                                                      audience):
    # given: people with every kind of fact (caps of their own, refusals, status, consent, touches)
    at = _at()
    people = [make_person(emails=[f"w{i}@example.com"] if i % 4 else [], country=("GB", "US", "CA", "JP")[i % 4])
              for i in range(12)]
    for i, person in enumerate(people):
        if i % 3 == 0:  # refused email (odd i); caps of their own, above and below the touches (i % 4)
            ContactPreference.objects.create(person=person, email_allowed=i % 2 == 0,
                                             max_per_week={0: 0, 3: 5, 6: 2, 9: 1}[i])
        if i % 5 == 0:
            PersonPrivacy.objects.create(person=person, objected_at=at - dt.timedelta(days=3))
        if i % 6 == 1:
            ConsentState.objects.create(person=person, purpose="newsletter", channel="email", status="granted",
                                        lawful_basis="consent", since=at - dt.timedelta(days=30))
        for _ in range(i % 4):  # 0–3 touches this week: the site-wide cap is 3
            Touch.objects.create(person=person, channel="email", purpose="newsletter", marketing=True,
                                 occurred_at=at - dt.timedelta(days=1))
    chosen = {
        "everyone": Person.objects.all(),
        "queryset": Person.objects.filter(pk__in=[p.pk for p in people[:7]]),
        "ids": [p.pk for p in people[3:]],
    }[audience]
    monkeypatch.setattr(gate, "INLINE_IDS", 2)  # the id list goes through the temporary table
    monkeypatch.setattr(gate, "STRATEGY", "scan")
    expected = dict(gate.decide_batch(chosen, "email", "newsletter", at, log=False).items())
    # when: the walk, and the walk with one of its indexes gone
    monkeypatch.setattr(gate, "STRATEGY", "ordered")
    walked = dict(gate.decide_batch(chosen, "email", "newsletter", at, log=False).items())
    monkeypatch.setattr(gate, "ORDERED_INDEXES", {**gate.ORDERED_INDEXES, "touch": "privacy_no_such_index"})
    fallen_back = dict(gate.decide_batch(chosen, "email", "newsletter", at, log=False).items())
    # then
    assert walked == expected == fallen_back
    assert len(walked) == (12 if audience == "everyone" else 7 if audience == "queryset" else 9)
    assert any(not d.allowed for d in walked.values()) and {c for d in walked.values() for c in d.codes} >= {
        "no_contact_point", "objection", "no_consent", "preference", "frequency_cap"}
