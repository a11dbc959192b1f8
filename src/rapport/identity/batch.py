"""I3 — the engine's batch path as arrays: blocking, comparison, weights and clustering of
many records at once (file mode, ``rapport dedupe``, model estimation).

A million records as Python objects, and ten million candidate pairs as tuples, cost
gigabytes and most of the run time in the interpreter. Here every match key is a small
integer (its index in a per-field vocabulary, 0 for "missing"), a pair is two int32 record
indexes, a field's level is a uint8 and a comparison pattern a base-4 number; blocks come
from sorting keys, string similarities come from rapidfuzz's element-wise ``cpdist`` (in C,
across ``workers`` threads) over the *distinct* value pairs only, weights are a table
looked up by pattern, and entities are connected components (scipy) with the non-chaining
rule applied only inside the components that hold a cannot-link pair.

Every result equals the per-pair Python of ``engine`` (``levels``, ``blocking_keys``,
``score``, ``cluster``); the tests compare them on random records.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.process import cpdist
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from rapport.identity import engine
from rapport.identity.engine import FIELDS, Model, Prepared

Progress = Callable[[str, int, int], None]

EXACT_N, CLOSE_N, DIFFERENT_N, MISSING_N = 0, 1, 2, 3  # level numbers (engine._LEVEL_NUMBER)
LEVEL_NAMES = (engine.EXACT, engine.CLOSE, engine.DIFFERENT, engine.MISSING)
SLOTS = 4  # emails/phones compared as arrays; a record with more is compared in Python
_F = {name: k for k, name in enumerate(FIELDS)}


def _factorize(*columns: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """Integer codes of the values of ``columns`` in one shared vocabulary (code 0 is "",
    missing). A million records give ten million values: they are told apart by their
    (cached) string hashes, uniqued as int64 in numpy; a hash collision, which a check
    catches, falls back to a dictionary."""
    total = 1 + sum(len(c) for c in columns)
    values = np.empty(total, dtype=object)
    values[0] = ""
    at = 1
    for column in columns:
        values[at:at + len(column)] = column
        at += len(column)
    hashes = np.fromiter(map(hash, values), dtype=np.int64, count=total)
    _, first, codes = np.unique(hashes, return_index=True, return_inverse=True)
    del hashes
    codes = codes.reshape(-1)
    if not all(values[first[codes]] == values):  # two strings with one hash: code them by dict
        seen: dict[str, int] = {}
        codes = np.fromiter((seen.setdefault(v, len(seen)) for v in values), dtype=np.int64, count=total)
        first = np.unique(codes, return_index=True)[1]
    empty = codes[0]
    if empty:  # "" takes code 0
        swap = np.arange(first.size)
        swap[0], swap[empty] = empty, 0
        codes, first = swap[codes], first[swap]
    vocabulary = list(values[first])
    del values
    out, at = [], 1
    for column in columns:
        out.append(codes[at:at + len(column)].astype(np.int32))
        at += len(column)
    return out, vocabulary


class Vocabulary:
    """The distinct values of one kind of match key as arrays: the values (objects, for
    rapidfuzz), their lengths, and (on first use) hashes of their ends."""

    def __init__(self, values: list[str]) -> None:
        self.values = np.array(values, dtype=object)
        self.lengths = np.fromiter(map(len, values), dtype=np.int32, count=len(values))
        self._halves: np.ndarray | None = None

    def halves(self) -> np.ndarray:
        """Per value of length L, hashes of its first and of its last k characters for
        k = (L - 2) // 2, then the same for k = (L - 3) // 2.

        Two strings within one edit of each other share their first or their last k
        characters, k = (shorter length - 2) // 2: a single edit leaves one of those ends
        alone. Comparing these hashes rules out most pairs before any edit distance.
        """
        if self._halves is None:
            self._halves = np.empty((self.values.size, 4), dtype=np.int64)
            for start in range(0, self.values.size, 100_000):  # bounds the character matrix
                stop = min(start + 100_000, self.values.size)
                self._halves[start:stop] = _end_hashes(self.values[start:stop], self.lengths[start:stop])
        return self._halves


_P = 1_000_003  # odd, so invertible modulo 2**64
_P_INVERSE = pow(_P, -1, 2 ** 64)


def _end_hashes(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``Vocabulary.halves`` of some values: polynomial hashes (mod 2**64) of prefixes and
    suffixes, from one character matrix, the suffixes shifted back to start at power 0."""
    width = int(lengths.max()) if lengths.size else 0
    out = np.zeros((values.size, 4), dtype=np.int64)
    if width == 0:
        return out
    chars = np.array(values.tolist(), dtype=f"<U{width}").view(np.uint32).reshape(values.size, width)
    powers = np.ones(width + 1, dtype=np.uint64)
    inverse = np.ones(width + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(1, width + 1):
            powers[k] = powers[k - 1] * np.uint64(_P)
            inverse[k] = inverse[k - 1] * np.uint64(_P_INVERSE)
        prefix = np.zeros((values.size, width + 1), dtype=np.uint64)  # prefix[:, j]: first j chars
        np.cumsum(chars.astype(np.uint64) * powers[None, :width], axis=1, out=prefix[:, 1:])
        rows = np.arange(values.size)
        for column, shift in enumerate((2, 2, 3, 3)):
            k = np.maximum((lengths.astype(np.int64) - shift) // 2, 0)
            if column % 2 == 0:
                found = prefix[rows, k]
            else:
                start = lengths - k
                found = (prefix[rows, lengths] - prefix[rows, start]) * inverse[start]
            out[:, column] = found.view(np.int64)
    return out


@dataclass
class Columns:
    """Prepared records as integer-coded columns (see the module docstring)."""

    ids: list[Any]
    names: list[str]          # vocabulary shared by given, canonical and family names
    given: np.ndarray
    canonical: np.ndarray
    family: np.ndarray
    dates: list[str]
    birth: np.ndarray
    emails_vocab: list[str]
    emails: np.ndarray        # (n, k) codes, 0 = no value
    phones_vocab: list[str]
    phones: np.ndarray
    addresses: list[str]
    address: np.ndarray
    postcodes: list[str]
    postcode: np.ndarray
    nids: list[str]
    national_id: np.ndarray
    overflow: dict[int, tuple[frozenset[str], frozenset[str]]]  # records with > SLOTS emails/phones
    _values: dict[str, Vocabulary] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def values(self, vocabulary: str) -> Vocabulary:
        """A vocabulary (``"names"``, ``"emails_vocab"``, …) as arrays, kept: every chunk of
        pairs uses it."""
        found = self._values.get(vocabulary)
        if found is None:
            found = self._values[vocabulary] = Vocabulary(getattr(self, vocabulary))
        return found

    def record(self, index: int) -> Prepared:
        """The record at ``index`` as the engine's ``Prepared`` (for ``score`` and evidence)."""
        if index in self.overflow:
            emails, phones = self.overflow[index]
        else:
            emails = frozenset(self.emails_vocab[c] for c in self.emails[index] if c)
            phones = frozenset(self.phones_vocab[c] for c in self.phones[index] if c)
        names = self.names
        return Prepared(
            record_id=self.ids[index], given=names[self.given[index]],
            given_canonical=names[self.canonical[index]], family=names[self.family[index]],
            birth_date=self.dates[self.birth[index]], emails=emails, phones=phones,
            address=self.addresses[self.address[index]], postcode=self.postcodes[self.postcode[index]],
            national_id=self.nids[self.national_id[index]])


class ColumnsBuilder:
    """Collects match keys record by record (``add``) or column by column (``add_columns``)
    into ``Columns``; the strings are coded once, at ``build``."""

    _TEXT = ("given", "canonical", "family", "birth", "address", "postcode", "national_id")

    def __init__(self) -> None:
        self.ids: list[Any] = []
        self._text: dict[str, list[str]] = {k: [] for k in self._TEXT}
        self._slots: dict[str, list[list[str]]] = {"email": [], "phone": []}
        self.overflow: dict[int, tuple[frozenset[str], frozenset[str]]] = {}

    def add_prepared(self, p: Prepared) -> None:
        self.add(p.record_id, p.given, p.given_canonical, p.family, p.birth_date,
                 sorted(p.emails), sorted(p.phones), p.address, p.postcode, p.national_id)

    def add(self, record_id: Any, given: str, canonical: str, family: str, birth: str,
            emails: Sequence[str], phones: Sequence[str], address: str, postcode: str,
            national_id: str) -> None:
        index = len(self.ids)
        self.ids.append(record_id)
        for name, value in zip(self._TEXT, (given, canonical, family, birth, address, postcode, national_id),
                               strict=True):
            self._text[name].append(value)
        if len(emails) > SLOTS or len(phones) > SLOTS:
            self.overflow[index] = (frozenset(emails), frozenset(phones))
        for kind, values in (("email", emails), ("phone", phones)):
            slots = self._slots[kind]
            values = [v for v in values if v][:SLOTS]
            while len(slots) < len(values):
                slots.append([""] * index)
            for k, slot in enumerate(slots):
                slot.append(values[k] if k < len(values) else "")

    def add_columns(self, columns: dict[str, list]) -> None:
        """A chunk from ``engine.RowPreparer.columns`` (one email and one phone key a record)."""
        count = len(columns["ids"])
        before = len(self.ids)
        self.ids.extend(columns["ids"])
        for name, values in self._text.items():
            values.extend(columns[name])
        for kind, slots in self._slots.items():
            if not slots:
                slots.append([""] * before)
            slots[0].extend(columns[kind])
            for slot in slots[1:]:
                slot.extend([""] * count)

    def build(self) -> Columns:
        text = self._text
        (given, canonical, family), names = _factorize(text.pop("given"), text.pop("canonical"), text.pop("family"))
        coded = {name: _factorize(text.pop(name)) for name in list(text)}
        slots = {}
        for kind, columns in self._slots.items():
            codes, vocabulary = _factorize(*columns) if columns else ([], [""])
            matrix = np.zeros((len(self.ids), max(len(codes), 1)), dtype=np.int32)
            for k, column in enumerate(codes):
                matrix[:, k] = column
            slots[kind] = (matrix, vocabulary)
            columns.clear()
        return Columns(
            ids=self.ids, names=names, given=given, canonical=canonical, family=family,
            dates=coded["birth"][1], birth=coded["birth"][0][0],
            emails_vocab=slots["email"][1], emails=slots["email"][0],
            phones_vocab=slots["phone"][1], phones=slots["phone"][0],
            addresses=coded["address"][1], address=coded["address"][0][0],
            postcodes=coded["postcode"][1], postcode=coded["postcode"][0][0],
            nids=coded["national_id"][1], national_id=coded["national_id"][0][0], overflow=self.overflow)


def columns_of(records: Iterable[Prepared]) -> Columns:
    builder = ColumnsBuilder()
    for record in records:
        builder.add_prepared(record)
    return builder.build()


# ---------------------------------------------------------------------------------- blocking

# Blocking rules of ``engine.blocking_keys``, by key kind, and the training session (bit)
# whose pairs each kind counts for (``engine.TRAINING_SESSIONS``).
SESSION_BITS = {kind: 1 << s for s, (kinds, _) in enumerate(engine.TRAINING_SESSIONS) for kind in kinds}
assert len(engine.TRAINING_SESSIONS) <= 3, "block() packs the session bits in 3 bits"


def _prefix_codes(values: list[str], length: int) -> np.ndarray:
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(v[:length], len(seen)) for v in values], dtype=np.int64)


def _rule_entries(cols: Columns) -> Iterable[tuple[str, np.ndarray, np.ndarray]]:
    """(kind, record indexes, key) of every blocking key, rule by rule."""
    n = len(cols)
    index = np.arange(n, dtype=np.int32)

    def slots(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rec = np.tile(index, matrix.shape[1])
        key = matrix.T.reshape(-1).astype(np.int64)
        keep = key != 0
        return rec[keep], key[keep]

    for kind, matrix, vocabulary, at in (("e", cols.emails, cols.emails_vocab, 0),
                                         ("p", cols.phones, cols.phones_vocab, 1)):
        rec, key = slots(matrix)
        if cols.overflow:  # the values beyond the slots are keys too
            codes = {value: code for code, value in enumerate(vocabulary)}
            extra = [(record, codes.setdefault(value, len(codes)))
                     for record, sets in cols.overflow.items() for value in sets[at]]
            rec = np.concatenate([rec, np.array([r for r, _ in extra], dtype=np.int32)])
            key = np.concatenate([key, np.array([k for _, k in extra], dtype=np.int64)])
        yield kind, rec, key
    has = cols.national_id != 0
    yield "n", index[has], cols.national_id[has].astype(np.int64)
    width = np.int64(len(cols.names))
    family, canonical = cols.family.astype(np.int64), cols.canonical.astype(np.int64)
    has = (family != 0) & (canonical != 0)
    yield ("nm", np.concatenate([index[has], index[has]]),
           np.concatenate([canonical[has] * width + family[has], family[has] * width + canonical[has]]))
    birth, postcode = cols.birth.astype(np.int64), cols.postcode.astype(np.int64)
    prefixes = _prefix_codes(cols.names, 3)
    recs, keys = [], []
    for name in (family, canonical):  # one namespace: swapped names meet
        has = (birth != 0) & (name != 0)
        recs.append(index[has])
        keys.append(birth[has] * width + prefixes[name[has]])
    yield "b", np.concatenate(recs), np.concatenate(keys)
    prefixes = _prefix_codes(cols.names, 2)
    for kind, name in (("pf", family), ("pg", canonical)):
        has = (postcode != 0) & (name != 0)
        yield kind, index[has], postcode[has] * width + prefixes[name[has]]


def _block_pairs(rec: np.ndarray, key: np.ndarray, n: int, max_block: int) -> np.ndarray:
    """Pair codes ``i * n + j`` (i < j) of records sharing a key, blocks over ``max_block`` left out."""
    if rec.size < 2:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((rec, key))
    key, rec = key[order], rec[order]
    fresh = np.ones(key.size, dtype=bool)
    fresh[1:] = (key[1:] != key[:-1]) | (rec[1:] != rec[:-1])  # a record once per block
    key, rec = key[fresh], rec[fresh]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, key.size])
    kept = (sizes >= 2) & (sizes <= max_block)
    member = np.repeat(kept, sizes)
    rec = rec[member].astype(np.int64)
    ends = np.repeat(np.cumsum(sizes[kept]), sizes[kept])
    out = []
    active = np.arange(rec.size)
    step = 1
    while active.size:
        active = active[active + step < ends[active]]
        out.append(rec[active] * n + rec[active + step])
        step += 1
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


@dataclass
class Blocked:
    """Every blocked pair once: record indexes ``left < right`` (sorted by ``left * n + right``)
    and, per pair, the bits of the training sessions whose keys found it."""

    left: np.ndarray
    right: np.ndarray
    sessions: np.ndarray


def block(cols: Columns, *, max_block: int = engine.MAX_BLOCK, kinds: Iterable[str] | None = None) -> Blocked:
    """The pairs of ``engine.candidate_pairs`` (union of blocking keys)."""
    n = len(cols)
    wanted = set(kinds) if kinds is not None else None
    codes, bits = [], []
    for kind, rec, key in _rule_entries(cols):
        if wanted is not None and kind not in wanted:
            continue
        found = _block_pairs(rec, key, n, max_block)
        codes.append(found)
        bits.append(np.full(found.size, SESSION_BITS.get(kind, 0), dtype=np.uint8))
    if not codes:
        empty = np.empty(0, dtype=np.int32)
        return Blocked(empty, empty, np.empty(0, dtype=np.uint8))
    # One sort of (pair code, session bit) packed in an int64 (the bits take 3 bits).
    packed = np.concatenate([c * 8 + b for c, b in zip(codes, bits, strict=True)])
    del codes, bits
    packed.sort()
    code, bit = packed >> 3, (packed & 7).astype(np.uint8)
    del packed
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if code.size else np.empty(0, dtype=np.int64)
    sessions = np.bitwise_or.reduceat(bit, starts) if code.size else bit
    code = code[starts]
    return Blocked((code // n).astype(np.int32), (code % n).astype(np.int32), sessions.astype(np.uint8))


# -------------------------------------------------------------------------------- comparison


def _close(vocabulary: Vocabulary, a: np.ndarray, b: np.ndarray, *, jw: float, dl: int,
           workers: int) -> np.ndarray:
    """``engine._grade`` is CLOSE for each (a, b) pair of codes (``dl`` ≤ 1: within one edit,
    or Jaro-Winkler ≥ ``jw``), computed once per distinct pair of values."""
    if a.size == 0:
        return np.zeros(0, dtype=bool)
    values, lengths, halves = vocabulary.values, vocabulary.lengths, vocabulary.halves()
    width = np.int64(values.size)
    unique, inverse = np.unique(a.astype(np.int64) * width + b, return_inverse=True)
    ua, ub = unique // width, unique % width
    close = np.zeros(unique.size, dtype=bool)
    la, lb = lengths[ua], lengths[ub]
    near = np.flatnonzero(np.abs(la - lb) <= dl)  # more edits otherwise
    if near.size:
        # Within one edit, the pair shares its first or last k characters (Columns.halves).
        ha, hb, shorter, longer = halves[ua[near]], halves[ub[near]], la[near] < lb[near], la[near] > lb[near]
        pa = np.where(longer[:, None], ha[:, 2:], ha[:, :2])
        pb = np.where(shorter[:, None], hb[:, 2:], hb[:, :2])
        near = near[(pa[:, 0] == pb[:, 0]) | (pa[:, 1] == pb[:, 1])]
    if near.size:
        close[near] = cpdist(values[ua[near]], values[ub[near]], scorer=OSA.distance, score_cutoff=dl,
                             dtype=np.int32, workers=workers) <= dl
    if jw <= 1.0:
        rest = np.flatnonzero(~close)
        if rest.size:
            close[rest] = cpdist(values[ua[rest]], values[ub[rest]], scorer=JaroWinkler.similarity,
                                 score_cutoff=jw, dtype=np.float64, workers=workers) >= jw
    return close[inverse.reshape(-1)]


def _text_levels(values: Vocabulary, a: np.ndarray, b: np.ndarray, *, jw: float, dl: int,
                 workers: int, swapped: np.ndarray | None = None) -> np.ndarray:
    """``engine._compare_text`` over code arrays."""
    out = np.full(a.size, DIFFERENT_N, dtype=np.uint8)
    missing = (a == 0) | (b == 0)
    exact = ~missing & (a == b)
    out[missing] = MISSING_N
    out[exact] = EXACT_N
    todo = ~missing & ~exact
    if swapped is not None:
        out[todo & swapped] = CLOSE_N
        todo &= ~swapped
    where = np.flatnonzero(todo)
    out[where[_close(values, a[where], b[where], jw=jw, dl=dl, workers=workers)]] = CLOSE_N
    return out


def _set_levels(values: Vocabulary, a: np.ndarray, b: np.ndarray, workers: int) -> np.ndarray:
    """``engine._compare_sets`` over (pairs, slots) code matrices."""
    has_a, has_b = (a != 0).any(axis=1), (b != 0).any(axis=1)
    out = np.full(a.shape[0], DIFFERENT_N, dtype=np.uint8)
    exact = np.zeros(a.shape[0], dtype=bool)
    for s in range(a.shape[1]):
        for t in range(b.shape[1]):
            exact |= (a[:, s] == b[:, t]) & (a[:, s] != 0)
    out[~(has_a & has_b)] = MISSING_N
    out[exact] = EXACT_N
    close = np.zeros(a.shape[0], dtype=bool)
    todo = np.flatnonzero(has_a & has_b & ~exact)
    for s in range(a.shape[1]):
        for t in range(b.shape[1]):
            rows = todo[(a[todo, s] != 0) & (b[todo, t] != 0) & ~close[todo]]
            close[rows] = _close(values, a[rows, s], b[rows, t], jw=2.0, dl=1, workers=workers)
    out[close] = CLOSE_N
    return out


def _date_levels(cols: Columns, a: np.ndarray, b: np.ndarray, workers: int) -> np.ndarray:
    """``engine._compare_date``: exact, one typo or day and month transposed, different."""
    values = cols.dates
    part: dict[str, int] = {}
    year = np.array([part.setdefault(v[:4], len(part)) for v in values], dtype=np.int32)
    month = np.array([part.setdefault(v[5:7], len(part)) for v in values], dtype=np.int32)
    day = np.array([part.setdefault(v[8:10], len(part)) for v in values], dtype=np.int32)
    swapped = (year[a] == year[b]) & (month[a] == day[b]) & (day[a] == month[b])
    # The transposition counts only after the typo test fails; both give CLOSE, so the order
    # does not matter here.
    return _text_levels(cols.values("dates"), a, b, jw=2.0, dl=1, workers=workers, swapped=swapped)


def compare(cols: Columns, left: np.ndarray, right: np.ndarray, *, workers: int = 1) -> np.ndarray:
    """The comparison pattern of each pair as a base-4 number (``engine.levels`` in
    ``FIELDS`` order, level k of field f counting ``k * 4 ** f``)."""
    names = cols.values("names")
    patterns = np.zeros(left.size, dtype=np.uint32)

    def put(name: str, found: np.ndarray) -> None:
        patterns[:] += found.astype(np.uint32) * np.uint32(4 ** _F[name])

    ga, gb = cols.given[left], cols.given[right]
    fa, fb = cols.family[left], cols.family[right]
    # First and last names swapped, one possibly with a typo (engine._swapped).
    named = (ga != 0) & (fa != 0) & (gb != 0) & (fb != 0)
    crossed, back = named & (ga == fb), named & (fa == gb)
    swapped = crossed & back
    for where, x, y in ((np.flatnonzero(crossed & ~back), fa, gb), (np.flatnonzero(back & ~crossed), ga, fb)):
        swapped[where[_close(names, x[where], y[where], jw=2.0, dl=1, workers=workers)]] = True
    del named, crossed, back
    # given: exact also when the canonical names agree (Bob = Robert); swapped names close.
    given = np.full(left.size, DIFFERENT_N, dtype=np.uint8)
    missing = (ga == 0) | (gb == 0)
    exact = ~missing & ((ga == gb) | (cols.canonical[left] == cols.canonical[right]))
    swap = ~missing & ~exact & swapped
    given[missing], given[exact], given[swap] = MISSING_N, EXACT_N, CLOSE_N
    where = np.flatnonzero(~missing & ~exact & ~swap)
    given[where[_close(names, ga[where], gb[where], jw=0.88, dl=1, workers=workers)]] = CLOSE_N
    put("given", given)
    del given, missing, exact, swap, where
    put("family", _text_levels(names, fa, fb, jw=0.88, dl=1, workers=workers, swapped=swapped))
    del ga, gb, fa, fb, swapped
    put("birth_date", _date_levels(cols, cols.birth[left], cols.birth[right], workers))
    emails = _set_levels(cols.values("emails_vocab"), cols.emails[left], cols.emails[right], workers)
    phones = _set_levels(cols.values("phones_vocab"), cols.phones[left], cols.phones[right], workers)
    if cols.overflow:  # records with more values than slots: those pairs in Python
        big = np.fromiter(cols.overflow, dtype=np.int64)
        rows = np.flatnonzero(np.isin(left, big) | np.isin(right, big))
        for row in rows:
            a, b = cols.record(int(left[row])), cols.record(int(right[row]))
            emails[row] = engine._LEVEL_NUMBER[engine._compare_sets(a.emails, b.emails)]
            phones[row] = engine._LEVEL_NUMBER[engine._compare_sets(a.phones, b.phones)]
    put("email", emails)
    put("phone", phones)
    del emails, phones
    address = _text_levels(cols.values("addresses"), cols.address[left], cols.address[right],
                           jw=0.9, dl=1, workers=workers)
    put("address", address)
    postcode = _text_levels(cols.values("postcodes"), cols.postcode[left], cols.postcode[right],
                            jw=2.0, dl=1, workers=workers)
    postcode[address == EXACT_N] = MISSING_N  # weighed once, with the address (engine.levels)
    put("postcode", postcode)
    del address, postcode
    put("national_id", _text_levels(cols.values("nids"), cols.national_id[left],
                                    cols.national_id[right], jw=2.0, dl=1, workers=workers))
    return patterns


def pattern_levels(number: int) -> tuple[str, ...]:
    return tuple(LEVEL_NAMES[number // 4 ** k % 4] for k in range(len(FIELDS)))


def level_of(patterns: np.ndarray, name: str) -> np.ndarray:
    return (patterns // np.uint32(4 ** _F[name])) % np.uint32(4)


# --------------------------------------------------------------------------------- the model


def _pattern_counts(patterns: np.ndarray) -> dict[tuple[str, ...], int]:
    unique, counts = np.unique(patterns, return_counts=True)
    return {pattern_levels(int(p)): int(c) for p, c in zip(unique, counts, strict=True)}


def _u_counts(cols: Columns, pairs: list[tuple[int, int]], names: Sequence[str],
              workers: int) -> dict[str, dict[str, float]]:
    counts = {name: dict.fromkeys(engine.LEVELS, 1.0) for name in names}  # add-one smoothing
    if pairs:
        left = np.array([i for i, _ in pairs], dtype=np.int32)
        right = np.array([j for _, j in pairs], dtype=np.int32)
        patterns = compare(cols, left, right, workers=workers)
        for name in names:
            found = np.bincount(level_of(patterns, name).astype(np.int64), minlength=4)
            for number, level in enumerate(engine.LEVELS):
                counts[name][level] += float(found[number])
    return {name: engine._normalised(c) for name, c in counts.items()}


def estimate_u(cols: Columns, samples: int, seed: int, workers: int = 1) -> dict[str, dict[str, float]]:
    """u: level frequencies over random pairs (nearly all non-matches)."""
    rng = random.Random(seed)
    n = len(cols)
    pairs = []
    if n >= 2:
        for _ in range(samples):
            i, j = rng.randrange(n), rng.randrange(n)
            if i != j:
                pairs.append((i, j))
    return _u_counts(cols, pairs, FIELDS, workers)


def estimate_u_family(cols: Columns, samples: int, seed: int, u: dict[str, dict[str, float]],
                      workers: int = 1) -> dict[str, dict[str, float]]:
    """u of the household fields over random pairs of records with the same family name
    (``engine.HOUSEHOLD``): drawn uniformly among all same-family pairs."""
    family = cols.family
    order = np.argsort(family, kind="stable")
    ordered = family[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if ordered.size else np.empty(0, int)
    sizes = np.diff(np.r_[starts, ordered.size])
    keep = (sizes > 1) & (ordered[starts] != 0) if ordered.size else np.empty(0, bool)
    groups = [(int(s), int(z)) for s, z in zip(starts[keep], sizes[keep], strict=True)]
    if not groups:
        return {name: dict(u[name]) for name in engine.HOUSEHOLD}
    rng = random.Random(seed + 1)
    weights = [z * (z - 1) for _, z in groups]
    pairs = []
    for start, size in rng.choices(groups, weights=weights, k=samples):
        a, b = rng.sample(range(size), 2)
        pairs.append((int(order[start + a]), int(order[start + b])))
    return _u_counts(cols, pairs, engine.HOUSEHOLD, workers)


def estimate(cols: Columns, blocked: Blocked, patterns: np.ndarray, *,
             overall: tuple[np.ndarray, np.ndarray] | None = None, u_samples: int = 20000,
             em_iterations: int = 15, seed: int = 7, workers: int = 1) -> Model:
    """``engine.estimate`` over arrays: u by sampling, m by EM per training session (the
    blocked pairs' session bits), the prior over every pair (``overall``: left indexes and
    patterns, default the blocked pairs), then refined from the pairs' full weights."""
    u = estimate_u(cols, u_samples, seed, workers)
    u_family = estimate_u_family(cols, u_samples, seed, u, workers)
    sessions = [_pattern_counts(patterns[(blocked.sessions & (1 << s)) != 0])
                for s in range(len(engine.TRAINING_SESSIONS))]
    left, found = overall if overall is not None else (blocked.left, patterns)
    model = engine.model_from_patterns(sessions, _pattern_counts(found), u, u_family,
                                       em_iterations=em_iterations)
    model.tf = name_shares(cols)
    refine_prior(model, pair_weights(model, cols, left, found))
    # So far the prior is the share of matches among the blocked pairs. A pair's weight,
    # though, counts every agreement, also the one its blocking key made certain (a pair found
    # by postcode agrees on the postcode), so over blocked pairs that evidence would count
    # twice. Spread over all pairs of records (Splink's λ) it does not: the expected number of
    # matches is the same, and blocking only leaves out pairs that would have scored low.
    n = len(cols)
    if n >= 2:
        model.prior = min(max(model.prior * found.size / (n * (n - 1) / 2), 1e-15), 1 - 1e-6)
    return model


def name_shares(cols: Columns) -> dict[str, dict[str, float]]:
    """Term frequencies of family and (canonical) given names: value → share of records."""
    return {"family": _shares(cols.names, cols.family), "given": _shares(cols.names, cols.canonical)}


def _shares(values: list[str], codes: np.ndarray) -> dict[str, float]:
    counts = np.bincount(codes, minlength=len(values))
    counts[0] = 0
    total = int(counts.sum()) or 1
    present = np.flatnonzero(counts)
    return {values[k]: int(counts[k]) / total for k in present}


def refine_prior(model: Model, weights: np.ndarray, iterations: int = 30) -> Model:
    """``engine.refine_prior`` over an array of weights (a histogram of 0.1-bit buckets)."""
    if weights.size < engine.MIN_PAIRS_FOR_PRIOR:
        return model
    buckets, counts = np.unique(np.round(weights, 1), return_counts=True)
    clipped = np.exp2(-np.clip(buckets, -60.0, 60.0))
    prior = model.prior
    for _ in range(iterations):
        odds = (1.0 - prior) / prior
        matched = float(np.sum(counts / (1.0 + odds * clipped)))
        prior = min(max(matched / weights.size, 1e-6), 1 - 1e-6)
    model.prior = prior
    return model


def pair_weights(model: Model, cols: Columns, left: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """Each pair's log2 weight without the prior: its pattern's weight (a table lookup) plus
    the term-frequency adjustment of exact names, taken from the left record's values."""
    unique, inverse = np.unique(patterns, return_inverse=True)
    table = np.array([engine.pattern_weight(model, pattern_levels(int(p))) for p in unique])
    weights = table[inverse.reshape(-1)]
    adjust = engine._tf_adjustments(model)
    tf = np.zeros(patterns.size)
    for name, codes, at in (("family", cols.family, "family"), ("given", cols.canonical, "given")):
        if not adjust.get(name):
            continue
        per_code = np.array([adjust[name].get(value, 0.0) for value in cols.names])
        exact = level_of(patterns, at) == EXACT_N
        tf[exact] += per_code[codes[left[exact]]]
    return weights + tf


# -------------------------------------------------------------------------------- clustering


def cluster(cols: Columns, left: np.ndarray, right: np.ndarray, weights: np.ndarray, *,
            strong_at: float, weak_at: float) -> list[str]:
    """``engine._cluster`` over arrays: the label (smallest member id as text) of each record.

    ``weights``: any score that grows with the match probability (the probability itself in
    ``resolve``). Pairs with weight ≥ ``strong_at`` join, strongest first; pairs below ``weak_at`` forbid
    their two groups to join. A connected component of strong pairs without a forbidden pair
    inside is exactly what the greedy joins give, so only components holding one are joined
    pair by pair.
    """
    n = len(cols)
    strong = np.flatnonzero(weights >= strong_at)
    graph = coo_matrix((np.ones(strong.size, dtype=np.int8), (left[strong], right[strong])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    weak = np.flatnonzero(weights < weak_at)
    inside = weak[component[left[weak]] == component[right[weak]]]
    group = component.astype(np.int64)
    if inside.size:
        troubled = np.unique(component[left[inside]])
        in_trouble = np.isin(component[left[strong]], troubled)
        edges = strong[in_trouble]
        edges = edges[np.argsort(-weights[edges], kind="stable")]
        ids = cols.ids
        labels = engine._cluster(
            [int(k) for k in np.flatnonzero(np.isin(component, troubled))],
            ((int(left[k]), int(right[k])) for k in edges),
            ((int(left[k]), int(right[k])) for k in inside))
        base = int(component.max()) + 1
        roots: dict[Any, int] = {}
        for record, root in labels.items():
            group[record] = base + roots.setdefault(root, len(roots))
        del ids
    # The label of a group is its smallest member id as text.
    texts = [str(rid) for rid in cols.ids]
    rank = np.empty(n, dtype=np.int64)
    rank[np.array(sorted(range(n), key=texts.__getitem__), dtype=np.int64)] = np.arange(n)
    _, dense = np.unique(group, return_inverse=True)
    dense = dense.reshape(-1)
    best = np.full(int(dense.max()) + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(best, dense, rank)
    by_rank = np.empty(n, dtype=np.int64)
    by_rank[rank] = np.arange(n)
    return [texts[k] for k in by_rank[best[dense]]]
