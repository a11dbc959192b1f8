"""I1–I3 — the matching engine: blocking, graded comparison, Fellegi–Sunter weights, clustering.

Pure Python (no Django models), so the same engine serves the database (``find_candidates``,
``rapport dedupe``) and files (``rapport identity cluster``). The flow:

1. ``prepare`` turns a record of roles (given_name, email, …) into match keys (I1).
2. ``candidate_pairs`` unions several blocking keys; a pair must share at least one.
3. ``compare`` grades each field: exact, close (Jaro-Winkler / Damerau-Levenshtein via
   rapidfuzz), different or missing.
4. ``estimate`` learns the model from the data: u by random sampling of pairs (almost all
   random pairs are non-matches), m by expectation maximisation over the blocked pairs.
5. ``score`` adds the log2 Bayes factor of each field's level to the prior, with a
   term-frequency adjustment on exact name matches (a shared rare surname counts more than
   "Smith"), and keeps each field's contribution as evidence.
6. ``cluster`` joins pairs above the threshold into entities, best pairs first, and refuses
   a join when any compared pair across the two groups scored as a clear non-match, so one
   weak link cannot chain unrelated people.
"""

from __future__ import annotations

import math
import multiprocessing
import random
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from rapport.core.search import fold
from rapport.identity.normalise import (
    InvalidIdentifier,
    address_match_key,
    email_match_key,
    name_parts,
    normalise_date,
    phone_match_key,
    postcode_match_key,
)

ROLES = ("given_name", "family_name", "full_name", "email", "phone", "house_number", "street",
         "address_line2", "locality", "postcode", "region", "country", "birth_date", "national_id",
         "organisation")

# Comparison levels, best first. MISSING adds no weight either way.
EXACT, CLOSE, DIFFERENT, MISSING = "exact", "close", "different", "missing"
LEVELS = (EXACT, CLOSE, DIFFERENT)

# Field → (kind of comparison); the fields the model weighs.
FIELDS = ("given", "family", "birth_date", "email", "phone", "address", "postcode", "national_id")

# Blocks larger than this are skipped (they say little and cost n² comparisons).
MAX_BLOCK = 200


@dataclass(frozen=True, slots=True)
class Prepared:
    """Match keys of one record; sets hold every email/phone a record has."""

    record_id: Any
    given: str = ""
    given_canonical: str = ""
    family: str = ""
    birth_date: str = ""
    emails: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()
    address: str = ""
    postcode: str = ""
    national_id: str = ""


def prepare(record_id: Any, record: Mapping[str, Any], *, date_format: str | None = None,
            region: str | None = None) -> Prepared:
    """Match keys from a mapping of roles to values (strings or lists of strings)."""

    def values(role: str) -> list[str]:
        raw = record.get(role)
        if raw is None or raw == "":
            return []
        if isinstance(raw, str):  # the common case (files): one value
            text = raw.strip()
            return [text] if text else []
        items = raw if isinstance(raw, (list, tuple, set, frozenset)) else [raw]
        return [str(v).strip() for v in items if v is not None and str(v).strip()]

    given_text = " ".join(values("given_name"))
    family_text = " ".join(values("family_name"))
    if given_text or family_text:
        parts = name_parts(given_name=given_text, family_name=family_text)
    else:
        parts = name_parts(" ".join(values("full_name")))
    emails = set()
    for email in values("email"):
        try:
            emails.add(email_match_key(email))
        except InvalidIdentifier:
            continue
    phones = {key for key in (phone_match_key(p, region) for p in values("phone")) if len(key) >= 6}
    birth = ""
    for text in values("birth_date"):
        try:
            date = normalise_date(text, date_format)
        except InvalidIdentifier:
            continue
        birth = date.isoformat() if date else ""
    street = " ".join(values("house_number") + values("street") + values("address_line2"))
    address = address_match_key(" ".join([street, *values("locality")]))
    return Prepared(
        record_id=record_id, given=parts.given, given_canonical=parts.given_canonical,
        family=parts.family, birth_date=birth, emails=frozenset(emails), phones=frozenset(phones),
        address=address, postcode=postcode_match_key(" ".join(values("postcode"))),
        national_id=fold(" ".join(values("national_id"))),
    )


# ---------------------------------------------------------------------------------- blocking


def blocking_keys(p: Prepared) -> set[str]:
    """Keys under which two records are compared; a pair needs one in common (union)."""
    keys = {f"e:{e}" for e in p.emails} | {f"p:{ph}" for ph in p.phones}
    if p.national_id:
        keys.add(f"n:{p.national_id}")
    if p.family and p.given_canonical:
        keys.add(f"nm:{p.given_canonical}:{p.family}")
        keys.add(f"nm:{p.family}:{p.given_canonical}")  # first/last swapped
    if p.birth_date:
        if p.family:
            keys.add(f"bf:{p.birth_date}:{p.family[:3]}")
        if p.given_canonical:
            keys.add(f"bg:{p.birth_date}:{p.given_canonical[:3]}")
    if p.postcode and p.family:
        keys.add(f"pf:{p.postcode}:{p.family[:2]}")
    if p.postcode and p.given_canonical:
        keys.add(f"pg:{p.postcode}:{p.given_canonical[:2]}")
    return keys


def candidate_pairs(records: Sequence[Prepared], *, max_block: int = MAX_BLOCK,
                    kinds: Iterable[str] | None = None) -> set[tuple[int, int]]:
    """Index pairs (i < j) sharing at least one blocking key (of ``kinds``, default all)."""
    wanted = tuple(f"{kind}:" for kind in kinds) if kinds is not None else None
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        for key in blocking_keys(record):
            if wanted is None or key.startswith(wanted):
                blocks[key].append(index)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if len(members) < 2 or len(members) > max_block:
            continue
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                pairs.add((members[a], members[b]))
    return pairs


# -------------------------------------------------------------------------------- comparison


def compare(a: Prepared, b: Prepared) -> dict[str, str]:
    """Graded level of every field for one pair."""
    return dict(zip(FIELDS, levels(a, b), strict=True))


def levels(a: Prepared, b: Prepared) -> tuple[str, ...]:
    """The levels of ``compare`` as a tuple in ``FIELDS`` order (a hashable comparison pattern)."""
    address = _compare_text(a.address, b.address, jw=0.9)
    return (
        _compare_given(a, b),
        _compare_text(a.family, b.family, swap=(a.given, b.given)),
        _compare_date(a.birth_date, b.birth_date),
        _compare_sets(a.emails, b.emails),
        _compare_sets(a.phones, b.phones),
        address,
        # The postcode says nothing more once the whole address agrees (counting both would
        # weigh one fact twice); it speaks when an address is missing or mistyped.
        MISSING if address == EXACT else _compare_text(a.postcode, b.postcode, jw=2.0, dl=1),
        _compare_text(a.national_id, b.national_id, jw=2.0, dl=1),
    )


def _compare_given(a: Prepared, b: Prepared) -> str:
    if not a.given or not b.given:
        return MISSING
    if a.given == b.given or a.given_canonical == b.given_canonical:
        return EXACT
    if a.given == b.family and a.family == b.given:  # swapped first/last
        return CLOSE
    return _grade(a.given, b.given, 0.88, 1)


def _compare_text(x: str, y: str, *, jw: float = 0.88, dl: int = 1,
                  swap: tuple[str, str] | None = None) -> str:
    if not x or not y:
        return MISSING
    if x == y:
        return EXACT
    if swap is not None and x == swap[1] and y == swap[0]:
        return CLOSE
    return _grade(x, y, jw, dl)


def _grade(x: str, y: str, jw: float, dl: int) -> str:
    if DamerauLevenshtein.distance(x, y) <= dl or JaroWinkler.similarity(x, y) >= jw:
        return CLOSE
    return DIFFERENT


def _compare_date(x: str, y: str) -> str:
    if not x or not y:
        return MISSING
    if x == y:
        return EXACT
    # One typo, or day and month transposed.
    if DamerauLevenshtein.distance(x, y) <= 1 or (x[:4] == y[:4] and x[5:7] == y[8:10] and x[8:10] == y[5:7]):
        return CLOSE
    return DIFFERENT


def _compare_sets(x: frozenset[str], y: frozenset[str]) -> str:
    if not x or not y:
        return MISSING
    if x & y:
        return EXACT
    if any(DamerauLevenshtein.distance(i, j) <= 1 for i in x for j in y):
        return CLOSE
    return DIFFERENT


# --------------------------------------------------------------------------------- the model


@dataclass
class Model:
    """Fellegi–Sunter parameters: per field and level, P(level | match) and P(level | non-match)."""

    m: dict[str, dict[str, float]]
    u: dict[str, dict[str, float]]
    prior: float  # P(match) for a blocked pair
    # Term frequencies of exact values, for the adjustment: field → value → share of records.
    tf: dict[str, dict[str, float]] = field(default_factory=dict)
    # u of the household fields among non-matches whose family names agree (see HOUSEHOLD).
    u_family: dict[str, dict[str, float]] = field(default_factory=dict)

    def bayes_factor(self, name: str, level: str, family_exact: bool = False) -> float:
        u = self.u_family if family_exact and name in self.u_family else self.u
        return self.m[name][level] / u[name][level]


# Fields that people of one household share: address, postcode, a landline. Fellegi–Sunter
# takes fields as independent given the match status, but among non-matches with the same
# family name they are not (parents and children), so when the family name agrees their u is
# the one measured among random pairs sharing a family name, not among all random pairs.
# Without this, surname + address + landline add up to a certain match for two siblings.
HOUSEHOLD = ("address", "postcode", "phone")
GIVEN_AT, FAMILY_AT, BIRTH_AT = 0, 1, 2  # positions in FIELDS
AGREE = frozenset({EXACT, CLOSE})  # a family name "agrees" when equal or one typo apart


DEFAULT_M = {EXACT: 0.90, CLOSE: 0.07, DIFFERENT: 0.03}
DEFAULT_U = {EXACT: 0.01, CLOSE: 0.02, DIFFERENT: 0.97}


# EM sessions in the way of Splink: pairs found by one kind of blocking key agree on that
# key's fields by construction, so those fields are left out of that session's likelihood and
# their m comes from the other sessions.
# Blocks that gather people of one household (postcode + surname, a shared landline) are kept
# out of training: EM would take "same household" for "same person" there, learning that a
# different birth date or national id is normal for a match.
TRAINING_SESSIONS = (
    (("e", "n"), {"email", "national_id"}),
    (("nm",), {"given", "family"}),
    (("bf", "bg"), {"birth_date", "given", "family"}),
)


def estimate(records: Sequence[Prepared], pairs: Iterable[tuple[int, int]] | None = None, *,
             u_samples: int = 20000, em_iterations: int = 15, seed: int = 7) -> Model:
    """Learn the model from the data itself (no labels).

    u: level frequencies over random pairs, which are nearly all non-matches. m: EM with u
    held fixed, one session per kind of blocking key (see ``TRAINING_SESSIONS``); then the
    share of matches among all blocked ``pairs`` (the prior) with m and u fixed.
    """
    sessions = [Counter(levels(records[i], records[j]) for i, j in candidate_pairs(records, kinds=kinds))
                for kinds, _ in TRAINING_SESSIONS]
    pairs = candidate_pairs(records) if pairs is None else pairs
    pairs = list(pairs)
    found = [levels(records[i], records[j]) for i, j in pairs]
    model = estimate_from_patterns(records, sessions, Counter(found), u_samples=u_samples,
                                   em_iterations=em_iterations, seed=seed)
    adjust = _tf_adjustments(model)
    return refine_prior(model, (pattern_weight(model, pattern) + _tf_weight(adjust, pattern, records[i])
                                for (i, _), pattern in zip(pairs, found, strict=True)))


def estimate_from_patterns(records: Sequence[Prepared], sessions: Sequence[Mapping[tuple[str, ...], int]],
                           overall: Mapping[tuple[str, ...], int], *, u_samples: int = 20000,
                           em_iterations: int = 15, seed: int = 7) -> Model:
    """``estimate`` from counted comparison patterns: one counter per training session (in
    ``TRAINING_SESSIONS`` order) and one over all blocked pairs, so that a caller which has
    compared every pair once (``resolve``) does not compare them again."""
    u = _estimate_u(records, u_samples, seed)
    u_family = _estimate_u_family(records, u_samples, seed, u)
    sums = {name: dict.fromkeys(LEVELS, 0.0) for name in FIELDS}
    counted = {name: 0 for name in FIELDS}
    for (_kinds, excluded), patterns in zip(TRAINING_SESSIONS, sessions, strict=True):
        if sum(patterns.values()) < 10:
            continue
        used = [name for name in FIELDS if name not in excluded]
        m, _ = _em(patterns, u, u_family, used, em_iterations)
        for name in used:
            for level in LEVELS:
                sums[name][level] += m[name][level]
            counted[name] += 1
    m = {name: (_normalised(sums[name]) if counted[name] else dict(DEFAULT_M)) for name in FIELDS}
    for name in FIELDS:
        # A match agrees on a field at least as often as a random pair does.
        if m[name][EXACT] < u[name][EXACT]:
            m[name] = dict(DEFAULT_M)
    _, prior = _em(overall, u, u_family, list(FIELDS), em_iterations, m=m, fixed_m=True)
    tf = {"family": _frequencies(r.family for r in records),
          "given": _frequencies(r.given_canonical for r in records)}
    return Model(m=m, u=u, prior=prior, tf=tf, u_family=u_family)


MIN_PAIRS_FOR_PRIOR = 100


def refine_prior(model: Model, weights: Iterable[float], iterations: int = 30) -> Model:
    """Re-estimate the prior from the pairs' full weights (term frequencies included).

    The prior of ``estimate_from_patterns`` sees each pattern's average weight, so "same
    common name, nothing else agrees" looks like a match there. This EM runs over a histogram
    of the per-pair weights (0.1 bit buckets), so it is cheap for millions of pairs.
    """
    histogram = Counter(round(w, 1) for w in weights)
    total = sum(histogram.values())
    if total < MIN_PAIRS_FOR_PRIOR:
        return model  # a handful of pairs cannot tell how many matches there are
    prior = model.prior
    for _ in range(iterations):
        odds = (1.0 - prior) / prior
        matched = sum(count / (1.0 + odds * 2.0 ** -min(max(w, -60.0), 60.0))
                      for w, count in histogram.items())
        prior = min(max(matched / total, 1e-6), 1 - 1e-6)
    model.prior = prior
    return model


def pattern_weight(model: Model, pattern: Sequence[str]) -> float:
    """Sum of the log2 Bayes factors of a comparison pattern, without prior or term frequencies."""
    family_exact = pattern[FAMILY_AT] in AGREE
    capped = _household_only(pattern)
    total = 0.0
    for name, level in zip(FIELDS, pattern, strict=True):
        if level != MISSING:
            weight = math.log2(model.bayes_factor(name, level, family_exact))
            total += min(weight, 0.0) if capped and name in HOUSEHOLD else weight
    return total


def _household_only(pattern: Sequence[str]) -> bool:
    """Same family name, a different given name and no agreeing birth date: what the pair
    shares is a household. Their address, postcode and phone then add no positive weight —
    the conditional u of ``u_family`` shrinks as families grow with the data (among a
    million records most same-surname pairs are strangers), so it cannot hold siblings apart
    on its own at scale."""
    return (pattern[FAMILY_AT] in AGREE and pattern[GIVEN_AT] == DIFFERENT
            and pattern[BIRTH_AT] in (DIFFERENT, MISSING))


def _estimate_u(records: Sequence[Prepared], samples: int, seed: int) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    counts = {name: dict.fromkeys(LEVELS, 1.0) for name in FIELDS}  # add-one smoothing
    n = len(records)
    if n >= 2:
        for _ in range(samples):
            i, j = rng.randrange(n), rng.randrange(n)
            if i == j:
                continue
            for name, level in zip(FIELDS, levels(records[i], records[j]), strict=True):
                if level != MISSING:
                    counts[name][level] += 1
    return {name: _normalised(c) for name, c in counts.items()}


def _estimate_u_family(records: Sequence[Prepared], samples: int, seed: int,
                       u: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """u of the HOUSEHOLD fields over random pairs of records with the same family name.

    Pairs are drawn uniformly among all same-family pairs (a family of k records holds
    k(k-1)/2 of them), so common surnames dominate and the few true matches in the sample
    barely count. Falls back to ``u`` when no two records share a family name.
    """
    families: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        if record.family:
            families[record.family].append(index)
    groups = [members for members in families.values() if len(members) > 1]
    if not groups:
        return {name: dict(u[name]) for name in HOUSEHOLD}
    rng = random.Random(seed + 1)
    weights = [len(g) * (len(g) - 1) for g in groups]
    counts = {name: dict.fromkeys(LEVELS, 1.0) for name in HOUSEHOLD}
    positions = [(FIELDS.index(name), name) for name in HOUSEHOLD]
    for members in rng.choices(groups, weights=weights, k=samples):
        i, j = rng.sample(members, 2)
        pattern = levels(records[i], records[j])
        for position, name in positions:
            if pattern[position] != MISSING:
                counts[name][pattern[position]] += 1
    return {name: _normalised(c) for name, c in counts.items()}


def _em(patterns: Mapping[tuple[str, ...], int], u: Mapping[str, Mapping[str, float]],
        u_family: Mapping[str, Mapping[str, float]], used: Sequence[str], iterations: int, *,
        m: Mapping[str, Mapping[str, float]] | None = None,
        fixed_m: bool = False) -> tuple[dict[str, dict[str, float]], float]:
    """Expectation maximisation of m (over ``used`` fields) and the prior, u fixed."""
    m = {name: dict(m[name]) if m else dict(DEFAULT_M) for name in FIELDS}
    index = [FIELDS.index(name) for name in used]
    household = {FIELDS.index(name) for name in HOUSEHOLD if name in u_family}
    prior = 0.1  # start low: most blocked pairs are not matches
    for _ in range(iterations):
        expected = {name: dict.fromkeys(LEVELS, 0.01) for name in FIELDS}
        total_match, total = 0.0, 0
        for pattern, count in patterns.items():
            lm, lu = prior, 1.0 - prior
            family_exact = pattern[FAMILY_AT] in AGREE
            for position in index:
                level = pattern[position]
                if level != MISSING:
                    lm *= m[FIELDS[position]][level]
                    lu *= (u_family if family_exact and position in household else u)[FIELDS[position]][level]
            weight = lm / (lm + lu) if lm + lu > 0 else 0.0
            total_match += weight * count
            total += count
            for position in index:
                level = pattern[position]
                if level != MISSING:
                    expected[FIELDS[position]][level] += weight * count
        if not fixed_m:
            m.update({name: _normalised(expected[name]) for name in used})
        prior = min(max(total_match / total, 1e-6), 1 - 1e-6) if total else prior
    return m, prior


def _normalised(counts: Mapping[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {level: max(value / total, 1e-6) for level, value in counts.items()}


def _frequencies(values: Iterable[str]) -> dict[str, float]:
    counts = Counter(v for v in values if v)
    total = sum(counts.values()) or 1
    return {value: count / total for value, count in counts.items()}


# ----------------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Match:
    """A scored pair with its evidence: each field's level and the weight (log2 factor) it added."""

    left: Any
    right: Any
    probability: float
    evidence: list[dict] = field(default_factory=list)


def score(model: Model, a: Prepared, b: Prepared) -> Match:
    found = compare(a, b)
    family_exact = found["family"] in AGREE
    capped = _household_only(tuple(found.values()))
    total = math.log2(model.prior / (1.0 - model.prior))
    evidence = []
    for name, level in found.items():
        if level == MISSING:
            evidence.append({"field": name, "level": level, "weight": 0.0})
            continue
        factor = model.bayes_factor(name, level, family_exact)
        if level == EXACT and name in model.tf:
            value = a.family if name == "family" else a.given_canonical
            share = model.tf[name].get(value)
            # u of an exact match on this value is its frequency, not the field's average.
            if share:
                factor = model.m[name][EXACT] / max(share, 1e-6)
        weight = math.log2(factor)
        if capped and name in HOUSEHOLD:
            weight = min(weight, 0.0)
        total += weight
        evidence.append({"field": name, "level": level, "weight": round(weight, 2)})
    probability = 1.0 / (1.0 + 2.0 ** (-total))
    return Match(a.record_id, b.record_id, probability, evidence)


def score_pairs(model: Model, records: Sequence[Prepared],
                pairs: Iterable[tuple[int, int]]) -> Iterator[Match]:
    for i, j in pairs:
        yield score(model, records[i], records[j])


# -------------------------------------------------------------------------------- clustering


def cluster(record_ids: Iterable[Any], matches: Iterable[Match], *, threshold: float = 0.9,
            cannot_link_below: float = 0.05) -> dict[Any, Any]:
    """Entity id (the smallest member id as text) for every record id.

    Pairs at or above ``threshold`` join, strongest first. A join is refused when any compared
    pair across the two groups scored below ``cannot_link_below``: A–B strong, B–C strong but
    A–C clearly different leaves C out rather than chaining A to C through B.
    """
    matches = list(matches)
    weak = [(m.left, m.right) for m in matches if m.probability < cannot_link_below]
    strong = sorted((m for m in matches if m.probability >= threshold), key=lambda m: -m.probability)
    return _cluster(record_ids, ((m.left, m.right) for m in strong), weak)


def _cluster(record_ids: Iterable[Any], strong: Iterable[tuple[Any, Any]],
             weak: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    """``cluster`` over pairs already split: ``strong`` ones to join (best first), ``weak`` ones
    that forbid a join of their two groups."""
    cannot: dict[Any, set[Any]] = defaultdict(set)
    for left, right in weak:
        cannot[left].add(right)
        cannot[right].add(left)
    members: dict[Any, set[Any]] = {rid: {rid} for rid in record_ids}
    group: dict[Any, Any] = {rid: rid for rid in members}
    empty: set[Any] = set()
    for left, right in strong:
        ga, gb = group[left], group[right]
        if ga == gb:
            continue
        small, large = (ga, gb) if len(members[ga]) < len(members[gb]) else (gb, ga)
        if any(not cannot.get(rid, empty).isdisjoint(members[large]) for rid in members[small]):
            continue
        for rid in members[small]:
            group[rid] = large
        members[large] |= members.pop(small)
    labels = {root: min(str(rid) for rid in ids) for root, ids in members.items()}
    return {rid: labels[root] for rid, root in group.items()}


# ------------------------------------------------------------------------- the batch path


@dataclass
class Blocked:
    """Every blocked pair compared once: ``codes[k]`` is ``i * n + j`` (i < j, indexes into the
    records) and ``patterns[k]`` its levels; pattern counts per training session and overall."""

    n: int
    codes: list[int]
    patterns: list[tuple[str, ...]]
    sessions: list[Counter]
    overall: Counter


def block_and_compare(records: Sequence[Prepared], *, max_block: int = MAX_BLOCK, workers: int = 1,
                      progress: Callable[[str, int, int], None] | None = None) -> Blocked:
    """The blocked pairs of ``candidate_pairs`` with their comparison patterns, in one pass.

    ``estimate`` compares the pairs of each training session and then all pairs, and scoring
    compares them again; for a million records that is most of the time, so the batch path
    remembers for each pair which training sessions' keys found it and compares it once.
    Pairs are packed into one int each (a tuple costs three objects).
    """
    report = progress or (lambda stage, done, total: None)
    n = len(records)
    session_bit = {kind: 1 << s for s, (kinds, _) in enumerate(TRAINING_SESSIONS) for kind in kinds}
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        for key in blocking_keys(record):
            blocks[key].append(index)
    masks: dict[int, int] = {}
    for key, members in blocks.items():
        size = len(members)
        if size < 2 or size > max_block:
            continue
        bit = session_bit.get(key.partition(":")[0], 0)
        for a in range(size - 1):
            base = members[a] * n
            for b in range(a + 1, size):
                code = base + members[b]
                masks[code] = masks.get(code, 0) | bit
    del blocks
    codes = sorted(masks)
    patterns: list[tuple[str, ...]] = []
    interned: dict[tuple[str, ...], tuple[str, ...]] = {}
    sessions: list[Counter] = [Counter() for _ in TRAINING_SESSIONS]
    overall: Counter = Counter()
    bits = [(s, 1 << s) for s in range(len(TRAINING_SESSIONS))]
    total = len(codes)
    done = 0
    for chunk in _compared(records, codes, workers):
        for pattern in chunk:
            pattern = interned.setdefault(pattern, pattern)
            patterns.append(pattern)
            overall[pattern] += 1
            mask = masks[codes[done]]
            done += 1
            if mask:
                for s, bit in bits:
                    if mask & bit:
                        sessions[s][pattern] += 1
        report("comparing", done, total)
    report("comparing", total, total)
    return Blocked(n, codes, patterns, sessions, overall)


_CHUNK = 100_000
_SHARED: list[Sequence[Prepared]] = []  # the records, inherited by forked workers


def _compared(records: Sequence[Prepared], codes: list[int],
              workers: int) -> Iterator[list[tuple[str, ...]]]:
    """Comparison patterns of ``codes``, chunk by chunk in order; with ``workers`` > 1 the
    chunks are compared in forked processes (the records are inherited, not copied; only
    pair codes go out and small pattern numbers come back)."""
    n = len(records)
    chunks = [codes[k:k + _CHUNK] for k in range(0, len(codes), _CHUNK)]
    if workers <= 1 or len(chunks) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for chunk in chunks:
            yield [levels(records[code // n], records[code % n]) for code in chunk]
        return
    _SHARED[:] = [records]
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for numbers in pool.imap(_compare_chunk, chunks):
                yield [_PATTERNS[number] for number in numbers]
    finally:
        _SHARED.clear()


_LEVEL_NUMBER = {level: k for k, level in enumerate((EXACT, CLOSE, DIFFERENT, MISSING))}
_PATTERNS = [tuple((EXACT, CLOSE, DIFFERENT, MISSING)[number // 4 ** k % 4] for k in range(len(FIELDS)))
             for number in range(4 ** len(FIELDS))]


def _compare_chunk(chunk: list[int]) -> array:
    records = _SHARED[0]
    n = len(records)
    out = array("H")  # a pattern as a base-4 number: 8 fields fit in 16 bits
    for code in chunk:
        pattern = levels(records[code // n], records[code % n])
        out.append(sum(_LEVEL_NUMBER[level] * 4 ** k for k, level in enumerate(pattern)))
    return out


@dataclass
class Resolution:
    labels: dict[Any, Any]   # record id → cluster id
    matches: list[Match]     # pairs at or above the threshold, best first
    pairs_scored: int
    model: Model


def _logit2(probability: float) -> float:
    return math.log2(probability / (1.0 - probability))


def resolve(records: Sequence[Prepared], *, threshold: float = 0.9, cannot_link_below: float = 0.05,
            model: Model | None = None, evidence: bool = True, max_block: int = MAX_BLOCK,
            workers: int = 1, progress: Callable[[str, int, int], None] | None = None) -> Resolution:
    """``link`` for large inputs (file mode): the same blocking, model, scores and clusters,
    with each pair compared once and weights summed per comparison pattern.

    A pattern's weight is the same for every pair showing it except for the term-frequency
    adjustment of exact names, which is added per pair; evidence is built (with ``score``)
    only for the pairs that matched, and only when asked.
    """
    report = progress or (lambda stage, done, total: None)
    blocked = block_and_compare(records, max_block=max_block, workers=workers, progress=progress)
    n = blocked.n
    fit_prior = model is None
    model = model or estimate_from_patterns(records, blocked.sessions, blocked.overall)
    base: dict[tuple[str, ...], float] = {}
    adjust = _tf_adjustments(model)
    weights = array("d")
    for pattern, code in zip(blocked.patterns, blocked.codes, strict=True):
        weight = base.get(pattern)
        if weight is None:
            weight = base[pattern] = pattern_weight(model, pattern)
        if pattern[FAMILY_AT] == EXACT or pattern[GIVEN_AT] == EXACT:
            weight += _tf_weight(adjust, pattern, records[code // n])
        weights.append(weight)
    if fit_prior:
        refine_prior(model, weights)
    strong_at = _logit2(threshold) - _logit2(model.prior)
    weak_at = _logit2(cannot_link_below) - _logit2(model.prior)
    strong: list[tuple[float, int]] = []
    weak: list[tuple[Any, Any]] = []
    total = len(blocked.codes)
    for done, (code, weight) in enumerate(zip(blocked.codes, weights, strict=True), start=1):
        if weight >= strong_at:
            strong.append((weight + _logit2(model.prior), code))
        elif weight < weak_at:
            i, j = divmod(code, n)
            weak.append((records[i].record_id, records[j].record_id))
        if done % 200_000 == 0:
            report("scoring", done, total)
    report("scoring", total, total)
    del blocked, weights
    strong.sort(key=lambda item: -item[0])
    pairs = [divmod(code, n) for _, code in strong]
    labels = _cluster([r.record_id for r in records],
                      ((records[i].record_id, records[j].record_id) for i, j in pairs), weak)
    if evidence:
        matches = [score(model, records[i], records[j]) for i, j in pairs]
    else:
        matches = [Match(records[i].record_id, records[j].record_id, 1.0 / (1.0 + 2.0 ** -w))
                   for (w, _), (i, j) in zip(strong, pairs, strict=True)]
    return Resolution(labels, matches, total, model)


def _tf_weight(adjust: Mapping[str, Mapping[str, float]], pattern: Sequence[str], left: Prepared) -> float:
    weight = 0.0
    if pattern[FAMILY_AT] == EXACT:
        weight += adjust["family"].get(left.family, 0.0)
    if pattern[GIVEN_AT] == EXACT:
        weight += adjust["given"].get(left.given_canonical, 0.0)
    return weight


def _tf_adjustments(model: Model) -> dict[str, dict[str, float]]:
    """Per exact name value, the log2 change ``score`` makes to the field's average weight
    (u of an exact match on a value is that value's frequency)."""
    out: dict[str, dict[str, float]] = {}
    for name, shares in model.tf.items():
        average = math.log2(model.bayes_factor(name, EXACT))
        m_exact = model.m[name][EXACT]
        out[name] = {value: math.log2(m_exact / max(share, 1e-6)) - average
                     for value, share in shares.items() if share}
    return out


def link(records: Sequence[Prepared], *, threshold: float = 0.9,
         model: Model | None = None) -> tuple[dict[Any, Any], list[Match]]:
    """The whole flow over a list of prepared records: (record id → cluster id, scored pairs)."""
    pairs = candidate_pairs(records)
    model = model or estimate(records, pairs)
    matches = list(score_pairs(model, records, pairs))
    return cluster([r.record_id for r in records], matches, threshold=threshold), matches
