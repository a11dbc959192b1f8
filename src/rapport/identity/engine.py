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
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz.distance import OSA, JaroWinkler

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
# Below this many records the weights are not learnt (EM has too little to learn from): the
# batch adapters (file mode, ``rapport dedupe``) score with the fixed real-time model.
MIN_TRAINING = 500


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


class RowPreparer:
    """``prepare`` for many rows holding one value per role (file mode), column by column.

    The same match keys as ``prepare`` (a test compares them), computed once per distinct
    value: a million records hold a few tens of thousands of distinct names, dates, streets,
    towns and postcodes; the default region is read from the settings once, not per phone.
    """

    def __init__(self, roles: Sequence[str], *, date_format: str | None = None, region: str | None = None) -> None:
        from django.conf import settings

        self.at = {role: k for k, role in enumerate(roles)}
        self.date_format = date_format
        self.region = (region or settings.RAPPORT_DEFAULT_REGION or "GB").upper()
        self._given: dict[str, tuple[str, str]] = {}
        self._family: dict[str, str] = {"": ""}
        self._full: dict[str, tuple[str, str, str]] = {}
        self._dates: dict[str, str] = {"": ""}
        self._address: dict[str, str] = {"": ""}
        self._postcode: dict[str, str] = {"": ""}

    def columns(self, rows: Sequence[Sequence[str]]) -> dict[str, list]:
        """Match keys of ``rows`` (``[record id, value of roles[0], …]``) as columns: ``ids``,
        ``given``, ``canonical``, ``family``, ``birth``, ``email``, ``phone`` (one key or ""),
        ``address``, ``postcode``, ``national_id``."""
        n = len(rows)

        def column(role: str) -> list[str]:
            k = self.at.get(role)
            if k is None:
                return [""] * n
            return [row[k + 1].strip() for row in rows]

        given_of, family_of = self._given_of, self._family_of
        given, family = column("given_name"), column("family_name")
        if "full_name" in self.at:
            names = [(*given_of(g), family_of(f)) if g or f else self._full_of(t)
                     for g, f, t in zip(given, family, column("full_name"), strict=True)]
        else:
            names = [(*given_of(g), family_of(f)) for g, f in zip(given, family, strict=True)]
        dates, date_of = self._dates, self._date_of
        postcodes, postcode_of = self._postcode, self._postcode_of
        addresses, address_of = self._address, self._address_of
        parts = [[addresses[t] if t in addresses else address_of(t) for t in column(role)]
                 for role in ("house_number", "street", "address_line2", "locality")]
        return {
            "ids": [row[0].strip() for row in rows],
            "given": [x[0] for x in names], "canonical": [x[1] for x in names],
            "family": [x[2] for x in names],
            "birth": [dates[t] if t in dates else date_of(t) for t in column("birth_date")],
            "email": [self._email_of(t) if t else "" for t in column("email")],
            "phone": [self._phone_of(t) if t else "" for t in column("phone")],
            "address": [" ".join(filter(None, four)) for four in zip(*parts, strict=True)],
            "postcode": [postcodes[t] if t in postcodes else postcode_of(t) for t in column("postcode")],
            "national_id": [(t.lower() if t.isascii() and t.isalnum() else fold(t)) if t else ""
                            for t in column("national_id")],
        }

    def _given_of(self, text: str) -> tuple[str, str]:
        found = self._given.get(text)
        if found is None:
            parts = name_parts(given_name=text, family_name="") if text else None
            found = self._given[text] = (parts.given, parts.given_canonical) if parts else ("", "")
        return found

    def _family_of(self, text: str) -> str:
        found = self._family.get(text)
        if found is None:
            found = self._family[text] = name_parts(given_name="", family_name=text).family
        return found

    def _full_of(self, text: str) -> tuple[str, str, str]:
        found = self._full.get(text)
        if found is None:
            parts = name_parts(text)
            found = self._full[text] = (parts.given, parts.given_canonical, parts.family)
        return found

    def _date_of(self, text: str) -> str:
        try:
            date = normalise_date(text, self.date_format)
        except InvalidIdentifier:
            date = None
        found = self._dates[text] = date.isoformat() if date else ""
        return found

    def _address_of(self, text: str) -> str:
        # address_match_key works word by word, so the key of a whole address is the keys of
        # its parts joined, and each part (house number, street, town) repeats a lot.
        found = self._address[text] = address_match_key(text)
        return found

    def _postcode_of(self, text: str) -> str:
        found = self._postcode[text] = postcode_match_key(text)
        return found

    @staticmethod
    def _email_of(text: str) -> str:
        try:
            return email_match_key(text)
        except InvalidIdentifier:
            return ""

    def _phone_of(self, text: str) -> str:
        key = phone_match_key(text, self.region)
        return key if len(key) >= 6 else ""


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
        # One namespace for both name prefixes, so that swapped first/last names meet too.
        if p.family:
            keys.add(f"b:{p.birth_date}:{p.family[:3]}")
        if p.given_canonical:
            keys.add(f"b:{p.birth_date}:{p.given_canonical[:3]}")
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
        _compare_family(a, b),
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
    if _swapped(a, b):
        return CLOSE
    return _grade(a.given, b.given, 0.88, 1)


def _compare_family(a: Prepared, b: Prepared) -> str:
    if not a.family or not b.family:
        return MISSING
    if a.family == b.family:
        return EXACT
    if _swapped(a, b):
        return CLOSE
    return _grade(a.family, b.family, 0.88, 1)


def _swapped(a: Prepared, b: Prepared) -> bool:
    """First and last names swapped, one of them possibly with a typo ("Shah, Neil" and
    "Neil O'Neil" are not; "Neil Shah" and "Shah Neel" are)."""
    if not (a.given and a.family and b.given and b.family):
        return False
    crossed, back = a.given == b.family, a.family == b.given
    return ((crossed and back) or (crossed and _within_one(a.family, b.given))
            or (back and _within_one(a.given, b.family)))


def _compare_text(x: str, y: str, *, jw: float = 0.88, dl: int = 1) -> str:
    if not x or not y:
        return MISSING
    if x == y:
        return EXACT
    return _grade(x, y, jw, dl)


def _grade(x: str, y: str, jw: float, dl: int) -> str:
    # Within one edit, Damerau-Levenshtein and optimal string alignment (OSA) distances
    # agree, and rapidfuzz computes OSA bit-parallel (its Damerau-Levenshtein is ten times
    # slower); ``dl`` is never more than 1 here.
    if _within_one(x, y) or JaroWinkler.similarity(x, y) >= jw:
        return CLOSE
    return DIFFERENT


def _within_one(x: str, y: str) -> bool:
    """Damerau-Levenshtein distance ≤ 1: one insertion, deletion, substitution or
    transposition of neighbours."""
    return abs(len(x) - len(y)) <= 1 and OSA.distance(x, y, score_cutoff=1) <= 1


def _compare_date(x: str, y: str) -> str:
    if not x or not y:
        return MISSING
    if x == y:
        return EXACT
    # One typo, or day and month transposed.
    if _within_one(x, y) or (x[:4] == y[:4] and x[5:7] == y[8:10] and x[8:10] == y[5:7]):
        return CLOSE
    return DIFFERENT


def _compare_sets(x: frozenset[str], y: frozenset[str]) -> str:
    if not x or not y:
        return MISSING
    if x & y:
        return EXACT
    if any(_within_one(i, j) for i in x for j in y):
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
    (("b",), {"birth_date", "given", "family"}),
)


def estimate(records: Sequence[Prepared], pairs: Iterable[tuple[int, int]] | None = None, *,
             u_samples: int = 20000, em_iterations: int = 15, seed: int = 7, workers: int = 1) -> Model:
    """Learn the model from the data itself (no labels).

    u: level frequencies over random pairs, which are nearly all non-matches. m: EM with u
    held fixed, one session per kind of blocking key (see ``TRAINING_SESSIONS``); then the
    share of matches among all blocked ``pairs`` (the prior) with m and u fixed, refined from
    the pairs' full weights. Computed over arrays (``batch``), like ``resolve``.
    """
    import numpy as np

    from rapport.identity import batch

    cols = batch.columns_of(records)
    blocked = batch.block(cols)
    patterns = batch.compare(cols, blocked.left, blocked.right, workers=workers)
    overall = None
    if pairs is not None:
        ordered = sorted(pairs)
        left = np.array([i for i, _ in ordered], dtype=np.int32)
        right = np.array([j for _, j in ordered], dtype=np.int32)
        if not (np.array_equal(left, blocked.left) and np.array_equal(right, blocked.right)):
            overall = (left, batch.compare(cols, left, right, workers=workers))
    return batch.estimate(cols, blocked, patterns, overall=overall, u_samples=u_samples,
                          em_iterations=em_iterations, seed=seed, workers=workers)


def model_from_patterns(sessions: Sequence[Mapping[tuple[str, ...], int]], overall: Mapping[tuple[str, ...], int],
                        u: dict[str, dict[str, float]], u_family: dict[str, dict[str, float]], *,
                        em_iterations: int = 15) -> Model:
    """m by EM per training session (``TRAINING_SESSIONS`` order) from counted comparison
    patterns, u given; then the prior over ``overall`` (every blocked pair)."""
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
    return Model(m=m, u=u, prior=prior, u_family=u_family)


MIN_PAIRS_FOR_PRIOR = 100


def refine_prior(model: Model, weights: Iterable[float], iterations: int = 30) -> Model:
    """Re-estimate the prior from the pairs' full weights (term frequencies included).

    The prior of ``model_from_patterns`` sees each pattern's average weight, so "same
    common name, nothing else agrees" looks like a match there. This EM runs over a histogram
    of the per-pair weights (0.1 bit buckets), so it is cheap for millions of pairs.
    """
    import numpy as np

    from rapport.identity import batch

    return batch.refine_prior(model, np.fromiter(weights, dtype=float), iterations)


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

_LEVEL_NUMBER = {level: k for k, level in enumerate((EXACT, CLOSE, DIFFERENT, MISSING))}


@dataclass
class Resolution:
    labels: dict[Any, Any]   # record id → cluster id
    matches: list[Match]     # pairs at or above the threshold, best first (when asked)
    pairs_scored: int
    model: Model
    pairs_matched: int = 0


def resolve(records: Sequence[Prepared] | Any, *, threshold: float = 0.9, cannot_link_below: float = 0.05,
            model: Model | None = None, evidence: bool = True, matches: bool = True,
            max_block: int = MAX_BLOCK, workers: int = 1, progress: Callable[[str, int, int], None] | None = None) -> Resolution:
    """``link`` for large inputs (file mode): the same blocking, model, scores and clusters,
    computed over arrays (``batch``; ``records`` may already be ``batch.Columns``).

    A pattern's weight is the same for every pair showing it except for the term-frequency
    adjustment of exact names, which is added per pair; evidence is built (with ``score``)
    only for the pairs that matched, and only when asked (``matches=False``: only counted).
    ``workers``: threads for the string comparisons.
    """
    import numpy as np

    from rapport.identity import batch

    report = progress or (lambda stage, done, total: None)
    cols = records if isinstance(records, batch.Columns) else batch.columns_of(records)
    report("blocking", 0, 1)
    blocked = batch.block(cols, max_block=max_block)
    total = int(blocked.left.size)
    report("blocking", 1, 1)
    patterns = np.empty(total, dtype=np.uint32)
    for start in range(0, total, _CHUNK):
        stop = min(start + _CHUNK, total)
        patterns[start:stop] = batch.compare(cols, blocked.left[start:stop], blocked.right[start:stop],
                                             workers=workers)
        report("comparing", stop, total)
    report("comparing", total, total)
    if model is None:
        model = batch.estimate(cols, blocked, patterns, workers=workers)
    weights = batch.pair_weights(model, cols, blocked.left, patterns)
    left, right = blocked.left, blocked.right
    del blocked, patterns
    # Probabilities as ``score`` gives them, so thresholds mean the same on both paths.
    probability = 1.0 / (1.0 + np.exp2(-(weights + math.log2(model.prior / (1.0 - model.prior)))))
    del weights
    report("clustering", 0, 1)
    labels = batch.cluster(cols, left, right, probability, strong_at=threshold, weak_at=cannot_link_below)
    report("clustering", 1, 1)
    strong = np.flatnonzero(probability >= threshold)
    strong = strong[np.argsort(-probability[strong], kind="stable")]
    ids = cols.ids
    if not matches:
        found = []
    elif evidence:
        found = [score(model, cols.record(int(left[k])), cols.record(int(right[k]))) for k in strong]
    else:
        found = [Match(ids[int(left[k])], ids[int(right[k])], float(probability[k])) for k in strong]
    return Resolution(dict(zip(ids, labels, strict=True)), found, total, model, pairs_matched=int(strong.size))


_CHUNK = 2_000_000  # pairs compared at a time (bounds the temporary arrays)



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
