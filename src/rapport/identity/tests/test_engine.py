"""I1–I3 — the matching engine: levels, blocking, learned weights, evidence, clustering."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.identity.engine import (
    CLOSE,
    DIFFERENT,
    EXACT,
    MISSING,
    Match,
    Model,
    blocking_keys,
    candidate_pairs,
    cluster,
    compare,
    estimate,
    link,
    prepare,
    score,
)

FIRST = ["Alice", "Robert", "Chen", "Fatima", "Oliver", "Grace", "Ivan", "Maria", "Tom", "Nia"]
LAST = ["Smith", "Okafor", "Lindqvist", "Novak", "Brown", "Zielinski", "Patel", "Moreau"]


def _population(size: int, seed: int = 3) -> tuple[list, dict]:
    """People with a duplicate each (typo in the given name or a missing email)."""
    rng = random.Random(seed)
    records, truth = [], {}
    for entity in range(size):
        given_name, family = rng.choice(FIRST), rng.choice(LAST)
        base = {"given_name": given_name, "family_name": family,
                "email": f"{given_name}.{family}.{entity}@example.org",
                "birth_date": f"19{rng.randint(40, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                "postcode": f"AB{entity % 97} {rng.randint(1, 9)}XY"}
        twin = dict(base)
        if entity % 2:
            twin["given_name"] = given_name[:-1] + "q"
        else:
            twin["email"] = ""
        for suffix, record in (("a", base), ("b", twin)):
            rid = f"{entity}{suffix}"
            records.append(prepare(rid, record))
            truth[rid] = entity
    return records, truth


def test_compare_grades_exact_close_different_and_missing() -> None:
    # given
    a = prepare(1, {"given_name": "Bob", "family_name": "Smith", "email": "bob@example.org",
                    "birth_date": "1980-02-03", "postcode": "SW1A 1AA"})
    b = prepare(2, {"given_name": "Robert", "family_name": "Smtih", "email": "rob@example.com",
                    "birth_date": "1980-03-02"})
    # when
    levels = compare(a, b)
    # then
    assert levels["given"] == EXACT          # nickname
    assert levels["family"] == CLOSE         # transposition
    assert levels["email"] == DIFFERENT
    assert levels["birth_date"] == CLOSE     # day and month swapped
    assert levels["postcode"] == MISSING


def test_swapped_first_and_last_names_compare_close_and_share_a_block() -> None:
    # given
    a = prepare(1, {"given_name": "Novak", "family_name": "Ivan"})
    b = prepare(2, {"given_name": "Ivan", "family_name": "Novak"})
    # when / then
    assert compare(a, b)["given"] == CLOSE
    assert blocking_keys(a) & blocking_keys(b)


def test_blocking_is_a_union_of_keys() -> None:
    # given: same email only; same name and birth date only; nothing in common
    a = prepare(1, {"given_name": "Ann", "family_name": "Lee", "email": "a@x.org", "birth_date": "19900101"})
    b = prepare(2, {"given_name": "Zed", "family_name": "Quin", "email": "A@X.org"})
    c = prepare(3, {"given_name": "Ann", "family_name": "Leigh", "birth_date": "1990-01-01"})
    d = prepare(4, {"given_name": "Xu", "family_name": "Ma"})
    # when
    pairs = candidate_pairs([a, b, c, d])
    # then
    assert pairs == {(0, 1), (0, 2)}


def test_model_is_learned_and_separates_duplicates_from_strangers() -> None:
    # given
    records, _ = _population(150)
    # when
    clusters, matches = link(records, threshold=0.9)
    # then
    found = {frozenset((m.left, m.right)) for m in matches if m.probability >= 0.9}
    expected = {frozenset((f"{e}a", f"{e}b")) for e in range(150)}
    assert len(found & expected) >= 145
    assert len(found - expected) <= 3
    assert clusters["0a"] == clusters["0b"] != clusters["1a"]


def test_em_learns_that_emails_agree_more_often_among_matches() -> None:
    # given
    records, _ = _population(100)
    # when
    model = estimate(records, candidate_pairs(records))
    # then
    assert model.m["email"][EXACT] > 0.3
    assert model.u["email"][EXACT] < 0.05
    assert model.bayes_factor("email", EXACT) > 10 > model.bayes_factor("email", DIFFERENT)


def test_a_shared_rare_surname_counts_more_than_a_common_one() -> None:
    # given: a population where "Smith" is frequent and "Lindqvist" appears twice
    records = [prepare(i, {"given_name": f"P{i}", "family_name": "Smith"}) for i in range(50)]
    records += [prepare("r1", {"given_name": "Ann", "family_name": "Lindqvist"}),
                prepare("r2", {"given_name": "Ann", "family_name": "Lindqvist"}),
                prepare("s1", {"given_name": "Ann", "family_name": "Smith"}),
                prepare("s2", {"given_name": "Ann", "family_name": "Smith"})]
    model = estimate(records, candidate_pairs(records))
    by_id = {r.record_id: r for r in records}
    # when
    rare, common = score(model, by_id["r1"], by_id["r2"]), score(model, by_id["s1"], by_id["s2"])
    # then
    rare_w, common_w = (next(e["weight"] for e in m.evidence if e["field"] == "family")
                        for m in (rare, common))
    assert rare_w > common_w
    assert rare.probability > common.probability


def test_every_match_carries_evidence_per_field() -> None:
    # given
    records, _ = _population(60)
    model = estimate(records, candidate_pairs(records))
    # when
    match = score(model, records[0], records[1])
    # then
    fields = {e["field"]: e for e in match.evidence}
    assert {"given", "family", "email", "birth_date"} <= set(fields)
    assert fields["family"]["level"] == EXACT and fields["family"]["weight"] > 0
    assert fields["postcode"]["level"] == EXACT


def test_clustering_does_not_chain_through_one_weak_link() -> None:
    # given: A–B and B–C strong, but A and C compared as clearly different
    matches = [Match("A", "B", 0.99), Match("B", "C", 0.95), Match("A", "C", 0.001),
               Match("D", "E", 0.97)]
    # when
    clusters = cluster(["A", "B", "C", "D", "E", "F"], matches, threshold=0.9)
    # then
    assert clusters["A"] == clusters["B"]
    assert clusters["C"] != clusters["A"]
    assert clusters["D"] == clusters["E"] == "D"
    assert clusters["F"] == "F"


def test_clustering_joins_a_chain_when_no_pair_contradicts_it() -> None:
    # given
    matches = [Match("A", "B", 0.99), Match("B", "C", 0.95)]
    # when
    clusters = cluster(["A", "B", "C"], matches, threshold=0.9)
    # then
    assert clusters["A"] == clusters["B"] == clusters["C"] == "A"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABCDEFG"), st.sampled_from("ABCDEFG"),
                          st.floats(0, 1)), max_size=20))
def test_clusters_only_hold_pairs_above_threshold_or_their_closure(edges) -> None:
    # given
    matches = [Match(a, b, p) for a, b, p in edges if a != b]
    # when
    clusters = cluster(list("ABCDEFG"), matches, threshold=0.8, cannot_link_below=0.05)
    # then: every cross-cluster pair is fine, and no cluster holds a cannot-link pair
    for m in matches:
        if m.probability < 0.05:
            assert clusters[m.left] != clusters[m.right]
    groups: dict = {}
    for rid, label in clusters.items():
        groups.setdefault(label, set()).add(rid)
    strong = {frozenset((m.left, m.right)) for m in matches if m.probability >= 0.8}
    for members in groups.values():
        if len(members) > 1:
            assert all(any(frozenset((x, y)) in strong for y in members if y != x) for x in members)


def test_model_defaults_are_probabilities() -> None:
    # given
    model = Model(m={"email": {EXACT: 0.9}}, u={"email": {EXACT: 0.01}}, prior=0.1)
    # when / then
    assert round(model.bayes_factor("email", EXACT)) == 90
