"""I3 — the batch path over arrays gives exactly what the per-pair engine gives."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.identity import batch, engine
from rapport.identity.engine import Prepared, RowPreparer, candidate_pairs, levels, prepare

# Small alphabets, so that exact values, one-edit typos, swapped names and shared blocks are
# common among random records.
NAMES = ["ann", "anne", "bob", "robert", "lee", "leigh", "smith", "smyth", "novak", "ivan", ""]
DATES = ["1980-02-03", "1980-03-02", "1980-02-04", "1981-02-03", "1975-12-01", ""]
EMAILS = ["a@x.org", "b@x.org", "ab@x.org", "a@y.org", "anne.lee@gmail.com"]
PHONES = ["+447700900123", "+447700900124", "+447700900213", "+441614960000"]
STREETS = ["1 high street", "1 high stret", "12 baker street", "21 baker street", ""]
POSTCODES = ["SW1A1AA", "SW1A1AB", "M11AA", ""]
NIDS = ["ab123456c", "ab123465c", "zz999999a", ""]


def _record(draw: st.DrawFn, index: int) -> Prepared:
    given = draw(st.sampled_from(NAMES))
    canonical = {"bob": "robert", "anne": "ann"}.get(given, given)
    return Prepared(
        record_id=f"r{index}", given=given, given_canonical=canonical,
        family=draw(st.sampled_from(NAMES)), birth_date=draw(st.sampled_from(DATES)),
        emails=frozenset(draw(st.lists(st.sampled_from(EMAILS), max_size=6))),
        phones=frozenset(draw(st.lists(st.sampled_from(PHONES), max_size=2))),
        address=draw(st.sampled_from(STREETS)), postcode=draw(st.sampled_from(POSTCODES)),
        national_id=draw(st.sampled_from(NIDS)))


@st.composite
def populations(draw: st.DrawFn) -> list[Prepared]:
    size = draw(st.integers(2, 30))
    return [_record(draw, k) for k in range(size)]


@settings(max_examples=60, deadline=None)
@given(populations())
def test_array_comparison_patterns_equal_the_per_pair_levels(records: list[Prepared]) -> None:
    # given: every pair of the population
    cols = batch.columns_of(records)
    pairs = [(i, j) for i in range(len(records)) for j in range(i + 1, len(records))]
    left = np.array([i for i, _ in pairs], dtype=np.int32)
    right = np.array([j for _, j in pairs], dtype=np.int32)
    # when
    patterns = batch.compare(cols, left, right)
    # then
    assert [batch.pattern_levels(int(p)) for p in patterns] == [levels(records[i], records[j]) for i, j in pairs]


@settings(max_examples=60, deadline=None)
@given(populations(), st.integers(2, 6))
def test_array_blocking_finds_the_pairs_of_candidate_pairs(records: list[Prepared], max_block: int) -> None:
    # given
    cols = batch.columns_of(records)
    # when
    blocked = batch.block(cols, max_block=max_block)
    # then: the same pairs, and each pair's session bits say which training blocks found it
    found = list(zip(blocked.left.tolist(), blocked.right.tolist(), strict=True))
    assert found == sorted(candidate_pairs(records, max_block=max_block))
    for s, (kinds, _) in enumerate(engine.TRAINING_SESSIONS):
        in_session = {pair for pair, bits in zip(found, blocked.sessions.tolist(), strict=True) if bits & (1 << s)}
        assert in_session == candidate_pairs(records, max_block=max_block, kinds=kinds)


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 12), st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11), st.floats(-20, 20)),
                                    max_size=40))
def test_array_clustering_equals_the_greedy_clustering(n: int, edges: list) -> None:
    # given: pairs with weights; ≥ 1 joins, < -1 forbids
    pairs = {}
    for a, b, w in edges:
        if a < n and b < n and a != b:
            pairs[(min(a, b), max(a, b))] = w
    ordered = sorted(pairs)
    left = np.array([a for a, _ in ordered], dtype=np.int32)
    right = np.array([b for _, b in ordered], dtype=np.int32)
    weights = np.array([pairs[p] for p in ordered], dtype=float)
    records = [Prepared(record_id=f"id{k}") for k in range(n)]
    cols = batch.columns_of(records)
    # when
    labels = batch.cluster(cols, left, right, weights, strong_at=1.0, weak_at=-1.0)
    # then
    strong = sorted((k for k in range(len(ordered)) if weights[k] >= 1.0), key=lambda k: -weights[k])
    expected = engine._cluster([f"id{k}" for k in range(n)],
                               ((f"id{ordered[k][0]}", f"id{ordered[k][1]}") for k in strong),
                               ((f"id{a}", f"id{b}") for (a, b) in ordered if pairs[(a, b)] < -1.0))
    assert labels == [expected[f"id{k}"] for k in range(n)]


ROW_ROLES = ("given_name", "family_name", "full_name", "email", "phone", "house_number", "street",
             "address_line2", "locality", "postcode", "birth_date", "national_id")
CELLS = {
    "given_name": ["", " Bob ", "Dr Anne", "José", "Mary Jane", "Liz"],
    "family_name": ["", "Smith", "van der Berg", "O'Neil Jr", "SMITH "],
    "full_name": ["", "Smith, Bob", "Mrs Ann Lee", "Ivan Novak"],
    "email": ["", "Bob.Smith+news@GoogleMail.com", "not an email", " a@x.org "],
    "phone": ["", "07700 900123", "+44 7700 900123", "0044 161 496 0000", "(0)20 7946 0000", "12"],
    "house_number": ["", "12", "12a"],
    "street": ["", "Baker St.", "High Rd", "Flat 3, The Crescent"],
    "address_line2": ["", "Apt 4"],
    "locality": ["", "London", "St. Albans"],
    "postcode": ["", "sw1a 1aa", "M1 1AA"],
    "birth_date": ["", "1980-02-03", "19800203", "03/02/1980", "1980-02-30"],
    "national_id": ["", "AB 12 34 56 C", "ab123456c", "Ñ123"],
}


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({role: st.sampled_from(values) for role, values in CELLS.items()}))
def test_row_preparer_gives_the_match_keys_of_prepare(cells: dict[str, str]) -> None:
    # given
    row = [" 7 ", *(cells[role] for role in ROW_ROLES)]
    # when
    columns = RowPreparer(ROW_ROLES).columns([row])
    # then
    p = prepare("7", cells)
    assert {k: v[0] for k, v in columns.items()} == {
        "ids": "7", "given": p.given, "canonical": p.given_canonical, "family": p.family,
        "birth": p.birth_date, "email": next(iter(p.emails), ""), "phone": next(iter(p.phones), ""),
        "address": p.address, "postcode": p.postcode, "national_id": p.national_id}


def test_values_with_one_hash_are_still_told_apart(monkeypatch) -> None:
    # given: every string hashes alike
    monkeypatch.setattr(batch, "hash", lambda value: 1, raising=False)
    # when
    (codes,), vocabulary = batch._factorize(["b", "a", "", "b", "c"])
    # then
    assert vocabulary[0] == ""
    assert [vocabulary[c] for c in codes] == ["b", "a", "", "b", "c"]


def test_records_with_more_emails_than_slots_are_compared_in_full() -> None:
    # given: the shared address is the sixth of one record's emails
    many = frozenset(f"m{k}@x.org" for k in range(6))
    a = Prepared(record_id="a", emails=many)
    b = Prepared(record_id="b", emails=frozenset({"m5@x.org"}))
    c = Prepared(record_id="c", emails=frozenset({"m9@y.org"}))
    cols = batch.columns_of([a, b, c])
    # when
    patterns = batch.compare(cols, np.array([0, 0, 1], dtype=np.int32), np.array([1, 2, 2], dtype=np.int32))
    # then
    email = engine.FIELDS.index("email")
    assert [batch.pattern_levels(int(p))[email] for p in patterns] == [engine.EXACT, engine.DIFFERENT, engine.DIFFERENT]
    assert [batch.pattern_levels(int(p))[email] for p in patterns] == [
        levels(a, b)[email], levels(a, c)[email], levels(b, c)[email]]
    assert cols.record(0) == a


def test_a_large_random_population_gives_the_same_patterns_with_threads() -> None:
    # given
    rng = random.Random(2)
    records = [prepare(k, {"given_name": rng.choice(NAMES), "family_name": rng.choice(NAMES),
                           "street": rng.choice(STREETS), "birth_date": rng.choice(DATES)})
               for k in range(400)]
    cols = batch.columns_of(records)
    blocked = batch.block(cols)
    # when
    one, two = (batch.compare(cols, blocked.left, blocked.right, workers=w) for w in (1, 2))
    # then
    assert blocked.left.size > 1000
    assert np.array_equal(one, two)
    assert [batch.pattern_levels(int(p)) for p in one[:500]] == [
        levels(records[i], records[j]) for i, j in zip(blocked.left[:500], blocked.right[:500], strict=True)]


@st.composite
def _edited(draw: st.DrawFn) -> tuple[str, str]:
    """A string and a copy with zero to two random edits (insert, delete, substitute, swap)."""
    text = draw(st.text("abc", min_size=0, max_size=12))
    other = text
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(other)))
        kind = draw(st.sampled_from("idst"))
        letter = draw(st.sampled_from("abcd"))
        if kind == "i":
            other = other[:at] + letter + other[at:]
        elif kind == "d" and at < len(other):
            other = other[:at] + other[at + 1:]
        elif kind == "s" and at < len(other):
            other = other[:at] + letter + other[at + 1:]
        elif kind == "t" and at + 1 < len(other):
            other = other[:at] + other[at + 1] + other[at] + other[at + 2:]
    return text, other


@settings(max_examples=200, deadline=None)
@given(st.lists(_edited(), min_size=1, max_size=20))
def test_within_one_edit_over_arrays_equals_the_per_pair_test(pairs: list[tuple[str, str]]) -> None:
    # given
    values = sorted({v for pair in pairs for v in pair} | {""})
    codes = {v: k for k, v in enumerate(values)}
    a = np.array([codes[x] for x, _ in pairs], dtype=np.int32)
    b = np.array([codes[y] for _, y in pairs], dtype=np.int32)
    # when
    close = batch._close(batch.Vocabulary(values), a, b, jw=2.0, dl=1, workers=1)
    # then
    assert close.tolist() == [engine._within_one(x, y) for x, y in pairs]
