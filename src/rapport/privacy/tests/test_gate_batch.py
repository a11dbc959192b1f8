"""C4 — the batch form's own mechanisms: text-keyed answers, the bulk log, digest matching.

``test_gate.py`` checks the rules and batch == single; these check what ``decide_batch`` does
for speed (ids as text, one bit per reason, the log written per distinct decision, digests
matched in memory or through the database) on whichever database the run uses.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from rapport.people.models import Person
from rapport.privacy import gate, suppression
from rapport.privacy.models import ContactDecision, DecisionBatch

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
    with pytest.raises(KeyError):
        decisions["not-a-uuid"]
    with pytest.raises(KeyError):
        decisions[uuid.uuid4()]


def test_the_log_holds_one_row_per_person_with_the_answer_and_its_reasons(make_person, staff_user):
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
    logged = {row.person_id: (row.allowed, row.reasons) for row in ContactDecision.objects.filter(batch=batch)}
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
