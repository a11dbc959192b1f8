"""I2 — the real-time check: candidates through indexed blocks, scored, with evidence."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.identity.services import find_candidates


def _levels(candidate) -> dict[str, str]:
    return {e["field"]: e["level"] for e in candidate.evidence}


def test_same_email_finds_the_person_even_with_another_surname(make_person) -> None:
    # given
    ada = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    make_person(given_name="Grace", family_name="Hopper", emails=["grace@example.com"])
    # when
    [candidate] = find_candidates(given_name="Ada", family_name="King", emails=["ADA@example.com"])
    # then
    assert candidate.person_id == ada.pk
    assert candidate.score > 0.5
    assert _levels(candidate) == {"given": "exact", "family": "different", "email": "exact"}
    assert all(isinstance(e["weight"], float) for e in candidate.evidence)


def test_nickname_and_phone_in_another_format_are_found(make_person, settings) -> None:
    # given
    settings.RAPPORT_DEFAULT_REGION = "GB"
    robert = make_person(given_name="Robert", family_name="Lindqvist", phones=["+44 20 7946 0018"])
    # when
    [candidate] = find_candidates(given_name="Bob", family_name="Lindqvist", phones=["020 7946 0018"])
    # then
    assert candidate.person_id == robert.pk
    assert _levels(candidate) == {"given": "exact", "family": "exact", "phone": "exact"}
    assert candidate.score > 0.99


def test_swapped_names_are_found_as_a_weaker_candidate(make_person) -> None:
    # given
    ivan = make_person(given_name="Ivan", family_name="Novak")
    # when
    found = find_candidates(given_name="Novak", family_name="Ivan", threshold=0.1)
    straight = find_candidates(given_name="Ivan", family_name="Novak", threshold=0.1)
    # then
    assert [c.person_id for c in found] == [ivan.pk]
    assert _levels(found[0]) == {"given": "close", "family": "close"}
    assert found[0].score < straight[0].score


def test_name_alone_on_a_different_person_with_other_identifiers_is_not_shown(make_person) -> None:
    # given: same name, but a different email on each side
    make_person(given_name="John", family_name="Smith", emails=["john.smith@example.com"])
    # when
    found = find_candidates(given_name="Jane", family_name="Smith", emails=["jane@example.org"])
    # then
    assert found == []


def test_best_first_limit_and_exclusion(make_person) -> None:
    # given
    strong = make_person(given_name="Fatima", family_name="Okafor", emails=["fatima@example.org"])
    weak = make_person(given_name="Fatima", family_name="Okafor")
    # when
    found = find_candidates(given_name="Fatima", family_name="Okafor", emails=["fatima@example.org"])
    only = find_candidates(given_name="Fatima", family_name="Okafor", emails=["fatima@example.org"],
                           exclude_person_id=strong.pk)
    # then
    assert [c.person_id for c in found] == [strong.pk, weak.pk]
    assert found[0].score > found[1].score
    assert [c.person_id for c in only] == [weak.pk]
    assert len(find_candidates(given_name="Fatima", family_name="Okafor", limit=1)) == 1


def test_lookup_is_a_constant_number_of_queries(make_person) -> None:
    # given
    for n in range(6):
        make_person(given_name="Maria", family_name="Moreau", emails=[f"maria{n}@example.org"])
    # when
    with CaptureQueriesContext(connection) as queries:
        found = find_candidates(given_name="Maria", family_name="Moreau", emails=["maria0@example.org"])
    # then
    assert len(found) == 5
    assert len(queries) <= 4


def test_nothing_to_match_on_finds_nothing(db) -> None:
    # given / when / then
    assert find_candidates() == []


def test_a_create_with_no_candidates_costs_one_query(make_person) -> None:
    # given: someone who shares neither name nor contact point, and someone found by each
    make_person(given_name="Maria", family_name="Moreau", emails=["maria@example.org"])
    # when
    with CaptureQueriesContext(connection) as queries:
        found = find_candidates(given_name="Zed", family_name="Quist", emails=["zed@example.org"],
                                phones=["+44 20 7946 0555"])
    # then: email, phone and name blocks in one round trip
    assert found == [] and len(queries) == 1
    assert len(find_candidates(given_name="Maria", family_name="Moreau", emails=["other@example.org"], threshold=0)) == 1
    assert len(find_candidates(given_name="M", family_name="X", emails=["maria@example.org"], threshold=0)) == 1
