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
    resolve,
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


def test_batch_resolve_gives_the_same_model_scores_and_clusters_as_link() -> None:
    # given
    records, _ = _population(120, seed=5)
    pairs = candidate_pairs(records)
    model = estimate(records, pairs)
    matches = [score(model, records[i], records[j]) for i, j in sorted(pairs)]
    expected = cluster([r.record_id for r in records], matches, threshold=0.9)
    # when: the batch path, sequential and with two forked workers (chunks of 100 pairs)
    import rapport.identity.engine as engine
    chunk, engine._CHUNK = engine._CHUNK, 100
    try:
        results = [resolve(records, threshold=0.9, workers=workers) for workers in (1, 2)]
    finally:
        engine._CHUNK = chunk
    # then
    strong = {(m.left, m.right): round(m.probability, 9) for m in matches if m.probability >= 0.9}
    for result in results:
        assert result.labels == expected
        assert result.pairs_scored == len(pairs)
        assert {(m.left, m.right): round(m.probability, 9) for m in result.matches} == strong
        assert abs(result.model.prior - model.prior) < 1e-12
        assert all(m.evidence for m in result.matches)
    assert results[0].labels["0a"] == results[0].labels["0b"]


def test_sharing_a_household_is_not_being_the_same_person() -> None:
    # given: households of a parent and a child (same surname, address, landline; different
    # given name and birth date), and people with one duplicate record each
    rng = random.Random(11)
    records = []
    for h in range(120):
        family = rng.choice(LAST) + str(h % 7)
        home = {"family_name": family, "street": f"{h} High Street", "postcode": f"AB{h} 1CD",
                "phone": f"0161 496 {h:04d}"}
        records.append(prepare(f"p{h}", {**home, "given_name": "Alice", "birth_date": "1960-01-02"}))
        records.append(prepare(f"c{h}", {**home, "given_name": "Tom", "birth_date": "1990-05-06"}))
        records.append(prepare(f"d{h}", {**home, "given_name": "Alice", "birth_date": "1960-01-02",
                                         "email": f"alice{h}@example.org"}))
    for e in range(300):
        person = {"given_name": rng.choice(FIRST), "family_name": rng.choice(LAST),
                  "email": f"p{e}@example.net", "birth_date": f"19{rng.randint(40, 99)}-03-0{e % 9 + 1}"}
        records.append(prepare(f"x{e}a", person))
        records.append(prepare(f"x{e}b", {**person, "email": ""}))
    # when
    result = resolve(records, threshold=0.9)
    # then: a parent's two records match, the child does not join them
    labels = result.labels
    together = sum(labels[f"p{h}"] == labels[f"d{h}"] for h in range(120))
    child_joined = sum(labels[f"c{h}"] == labels[f"p{h}"] for h in range(120))
    assert together >= 115
    assert child_joined == 0
    assert result.model.u_family["address"][EXACT] > result.model.u["address"][EXACT]


def test_swapped_names_with_a_typo_compare_close_and_share_a_block() -> None:
    # given
    a = prepare(1, {"given_name": "Neil", "family_name": "Shah", "birth_date": "1970-01-02"})
    b = prepare(2, {"given_name": "Shah", "family_name": "Neel", "birth_date": "1970-01-02"})
    c = prepare(3, {"given_name": "Shaw", "family_name": "Neel"})  # two names off: not swapped
    # when / then
    assert (compare(a, b)["given"], compare(a, b)["family"]) == (CLOSE, CLOSE)
    assert compare(a, c)["given"] == DIFFERENT
    assert blocking_keys(a) & blocking_keys(b)


def test_agreeing_on_what_found_the_pair_is_not_counted_twice() -> None:
    # given: people with a duplicate each, and many strangers who share only a given name
    # and a postcode with someone (found by the postcode + given name block)
    rng = random.Random(8)
    records = []
    for e in range(300):
        person = {"given_name": rng.choice(FIRST), "family_name": f"{rng.choice(LAST)}{e}",
                  "email": f"p{e}@example.net", "postcode": f"AB{e % 40} 1CD",
                  "birth_date": f"19{rng.randint(40, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"}
        records.append(prepare(f"{e}a", person))
        records.append(prepare(f"{e}b", {**person, "email": ""}))
        stranger = {"given_name": person["given_name"], "family_name": f"Other{e}",
                    "postcode": person["postcode"], "email": f"s{e}@example.org",
                    "birth_date": f"18{rng.randint(10, 99)}-0{rng.randint(1, 9)}-2{rng.randint(0, 9)}"}
        records.append(prepare(f"s{e}", stranger))
    # when
    result = resolve(records, threshold=0.9)
    # then: duplicates found, strangers left alone
    labels = result.labels
    assert sum(labels[f"{e}a"] == labels[f"{e}b"] for e in range(300)) >= 290
    assert sum(labels[f"s{e}"] != f"s{e}" for e in range(300)) <= 3
    assert result.model.prior < 0.01  # a random pair of records, not a blocked one
