"""I2 — the real-time check in the large, common-name blocks of a million-person database.

A crowd of namesakes (more than ``PER_KEY`` people called Robert Smith, a surname block full
beyond the cap) stands for the blocks of a 1,000,000-person table; the real duplicate must
still be found through its more selective keys, and a common name must not make a lookup
score or read more than the caps allow (counted, never timed).
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.identity import services
from rapport.identity.services import MAX_SCORED, PER_KEY, find_candidates

CROWD = 3 * PER_KEY


@pytest.fixture
def smiths(db):
    """3 × PER_KEY Robert/Bob/Rob Smiths and as many other Smiths, each with an email of their own."""
    from rapport.people.models import ContactPoint, Person
    from rapport.people.services import set_name_keys

    people, points = [], []
    for n in range(CROWD):
        for given in ("Robert", "Bob", "Rob", f"Other{n}"):
            person = Person(given_name=given, family_name="Smith", country="GB")
            set_name_keys(person)
            people.append(person)
            email = f"{given.lower()}.smith.{n}@example.org"
            points.append(ContactPoint(person=person, kind="email", value=email, normalised=email,
                                       search_key=email.replace(".", "").replace("@", "")))
    Person.objects.bulk_create(people)
    ContactPoint.objects.bulk_create(points)
    return people


def _scored(monkeypatch) -> list[int]:
    calls = [0]
    real = services.score

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "score", counting)
    return calls


def test_a_nickname_with_the_phone_in_another_layout_is_found_among_namesakes(smiths, make_person, settings):
    # given
    settings.RAPPORT_DEFAULT_REGION = "GB"
    robert = make_person(given_name="Robert", family_name="Smith", phones=["+44 20 7946 0018"])
    # when
    found = find_candidates(given_name="Bob", family_name="Smith", phones=["(020) 7946 0018"])
    # then: the phone's block comes before the crowded name block
    assert found[0].person_id == robert.pk
    assert {e["field"]: e["level"] for e in found[0].evidence}["phone"] == "exact"
    assert found[0].score > 0.99


def test_a_typo_in_the_surname_and_another_layout_of_the_mailbox_are_found(smiths, make_person):
    # given
    margaret = make_person(given_name="Margaret", family_name="Smithson", emails=["m.smithson@gmail.com"])
    # when: dots dropped, googlemail.com, a +tag, and a transposed letter in the surname
    found = find_candidates(given_name="Margaret", family_name="Smtihson", emails=["MSmithson+shop@googlemail.com"])
    # then
    [candidate] = found
    assert candidate.person_id == margaret.pk
    levels = {e["field"]: e["level"] for e in candidate.evidence}
    assert levels == {"given": "exact", "family": "close", "email": "exact"}


def test_a_reformatted_phone_of_a_common_name_beats_the_name_block(smiths, make_person, settings):
    # given: the duplicate was stored last, so the name block (capped) may not contain it
    settings.RAPPORT_DEFAULT_REGION = "GB"
    robert = make_person(given_name="Robert", family_name="Smith", emails=["bob@smith.example"],
                         phones=["020 7946 0321"])
    # when
    found = find_candidates(given_name="Robert", family_name="Smith", emails=["robert@elsewhere.example"],
                            phones=["+44 20 7946 0321"])
    # then
    assert found[0].person_id == robert.pk


def test_a_common_name_scores_at_most_the_cap_in_one_query(smiths, monkeypatch):
    # given
    scored = _scored(monkeypatch)
    # when
    with CaptureQueriesContext(connection) as queries:
        find_candidates(given_name="Robert", family_name="Smith", emails=["new.person@example.com"],
                        phones=["+44 20 7946 0999"])
    # then: 3 × CROWD people share the name key; one round trip, capped
    assert len(queries) == 1
    assert scored[0] == PER_KEY <= MAX_SCORED


def test_a_full_surname_block_alone_is_dropped(smiths, monkeypatch):
    # given
    scored = _scored(monkeypatch)
    # when
    with CaptureQueriesContext(connection) as queries:
        found = find_candidates(family_name="Smith")
    # then: 4 × CROWD Smiths; the block says nothing, nobody is read or scored
    assert found == [] and len(queries) == 1 and scored[0] == 0


def test_a_small_surname_block_alone_is_still_looked_at(make_person):
    # given
    ivana = make_person(given_name="Ivana", family_name="Quarshie")
    # when
    found = find_candidates(family_name="Quarshie", threshold=0)
    # then
    assert [c.person_id for c in found] == [ivana.pk]


def test_every_key_keeps_its_own_cap_and_the_selective_ones_come_first(smiths, make_person, monkeypatch):
    # given: two emails of one person, each with its own arm, before the name block
    ada = make_person(given_name="Robert", family_name="Smith", emails=["ada1@example.com", "ada2@example.com"])
    scored = _scored(monkeypatch)
    # when
    found = find_candidates(given_name="Robert", family_name="Smith", emails=["ada2@example.com", "ADA1@example.com"])
    # then: ada once, then at most PER_KEY namesakes
    assert found[0].person_id == ada.pk
    assert scored[0] <= 1 + PER_KEY


def test_exclude_person_id_accepts_a_uuid_or_its_text(make_person):
    # given
    ada = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    # when / then
    assert find_candidates(emails=["ada@example.com"], exclude_person_id=ada.pk) == []
    assert find_candidates(emails=["ada@example.com"], exclude_person_id=str(ada.pk)) == []
    assert find_candidates(emails=["ada@example.com"], exclude_person_id=uuid.uuid4())[0].person_id == ada.pk


def _sales_rep():
    from rapport.access.models import Role, SharingDefault
    from rapport.access.policy import access_changed
    from rapport.core import testing

    SharingDefault.objects.update_or_create(object_type="people.person", defaults={"access": "private"})
    access_changed()
    return testing.make_user("rep", role=Role.objects.get(key="sales-rep"))


def test_a_full_surname_block_is_full_for_a_reader_who_sees_little_of_it(smiths, make_person):
    # given: the rep sees one Smith and one Quarshie
    from rapport.people.models import Person

    rep = _sales_rep()
    smith = make_person(given_name="Ada", family_name="Smith", owner=rep)
    quarshie = make_person(given_name="Kofi", family_name="Quarshie", owner=rep)
    among = Person.objects.visible_to(rep)
    # when
    smiths_found = find_candidates(family_name="Smith", threshold=0, among=among)
    quarshies_found = find_candidates(family_name="Quarshie", threshold=0, among=among)
    # then: the Smith block is full whoever looks (as for the administrator), the other is not
    assert smiths_found == [] and find_candidates(family_name="Smith", threshold=0) == []
    assert [c.person_id for c in quarshies_found] == [quarshie.pk]
    assert [c.person_id for c in find_candidates(given_name="Ada", family_name="Smith", among=among,
                                                 threshold=0)] == [smith.pk]


def test_hidden_people_are_not_scored_and_do_not_crowd_out_visible_ones(make_person, staff_user):
    # given: a sales rep sees only their own people; PER_KEY hidden people share the email
    from rapport.identity.selectors import visible_candidates

    rep = _sales_rep()
    for _ in range(PER_KEY + 2):
        make_person(given_name="Hidden", family_name="Person", emails=["shared@example.com"])
    mine = make_person(given_name="Sam", family_name="Okoro", emails=["shared@example.com"], owner=rep)
    # when
    found = visible_candidates(user=rep, emails=["shared@example.com"])
    everyone = visible_candidates(user=staff_user, emails=["shared@example.com"], threshold=0)
    # then: the rep's own person, stored last, beyond the email block's cap of all people
    assert [c["id"] for c in found] == [str(mine.pk)]
    assert found[0]["display_name"] == "Sam Okoro"
    assert len(everyone) == 5


def test_the_unrestricted_query_text_is_kept_per_shape_and_bound_in_its_order(make_person):
    # given: one person, then lookups whose arms differ in shape (IN sizes, arms present)
    person = make_person(given_name="Kate", family_name="Lyon", emails=["kate.lyon@gmail.com"],
                         phones=["+442079460031"])
    lookups = [dict(given_name="Kate", family_name="Lyon", emails=["Kate.Lyon@gmail.com"], phones=[]),
               dict(given_name="", family_name="Lyon", emails=[], phones=["020 7946 0031"]),
               dict(given_name="Kate", family_name="Lyon", emails=["kate.lyon@example.com", "k@gmail.com"],
                    phones=["+44 20 7946 0031"])]
    for lookup in lookups * 2:  # the second time from the kept text
        arms = services._arms(**lookup)
        # when
        sql, params = services._blocked_sql(arms, None)
        # then: one placeholder per value, and the text is what the arms' own SQL spells
        assert sql.count("%s") == len(params)
        for arm in arms:
            arm_sql, arm_params = services._arm_sql(arm)
            assert arm_sql in sql and all(value in params for value in arm_params)
        found = find_candidates(**lookup, threshold=0)
        assert [c.person_id for c in found] == [person.pk]
